"""Procedural warm-up clips (mllm4d/warmup.py): the picture moves the way the label says."""
import cv2
import numpy as np
import pytest

from mllm4d import prompts, warmup


@pytest.fixture(scope="module")
def background():
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.uniform(0, 255, (240, 320, 3)).astype(np.float32), (0, 0), 3)
    return np.clip((noise - noise.mean()) * 4 + 128, 0, 255).astype(np.uint8)


def _shift(a, b):
    """(dx, dy) image motion from frame a to frame b (phase correlation, pixels)."""
    g = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) for x in (a, b)]
    (dx, dy), _ = cv2.phaseCorrelate(g[0], g[1])
    return dx, dy


def _clip(background, task, label, seed=0):
    for s in range(seed, seed + 500):  # draw until the generator picks this label
        frames, row = warmup.make_clip(background, np.random.default_rng(s), task=task)
        if row["options"][row["answer"]] == label:
            return frames, row
    raise AssertionError(f"no {task} clip with answer {label}")


@pytest.mark.parametrize("label, sign", [("Right", -1), ("Left", 1)])
def test_camera_moving_right_slides_the_scene_left(background, label, sign):
    frames, row = _clip(background, "crd", label)
    dx, dy = _shift(frames[0], frames[-1])
    assert np.sign(dx) == sign and abs(dx) > 5 * abs(dy)


def test_camera_up_slides_the_scene_down(background):
    frames, _ = _clip(background, "crd", "Up")
    dx, dy = _shift(frames[0], frames[-1])
    assert dy > 5 and abs(dy) > 5 * abs(dx)


@pytest.mark.parametrize("label, grows", [("Closer", True), ("Farther", False)])
def test_object_closer_grows(background, label, grows):
    from mllm4d import scene
    frames, row = _clip(background, "ocrd", label)
    colour = next(c for c in scene.COLOURS if f"the {c} " in row["question"])
    rgb = np.array(scene.COLOURS[colour]) * 255
    area = [int((np.abs(f.astype(float) - rgb).max(-1) < 12).sum()) for f in (frames[0], frames[-1])]
    assert (area[1] > 1.5 * area[0]) if grows else (area[0] > 1.5 * area[1]), area
    assert row["subtask"] == "ocrd" and "Cannot be determined from the video" in row["options"].values()


def test_rows_follow_the_dataset_contract(background):
    rng = np.random.default_rng(1)
    for _ in range(30):
        frames, row = warmup.make_clip(background, rng, num_frames=6, size=64)
        assert frames.shape == (6, 64, 64, 3) and frames.dtype == np.uint8
        assert sorted(row["options"]) == list(prompts.LETTERS) and row["answer"] in row["options"]
        assert len(set(row["options"].values())) == 4 and "frame 0" in row["question"]


def test_multi_task_names_one_of_several_shapes_and_only_it_follows_the_label(background):
    from mllm4d import scene
    frames, row = _clip(background, "ocrd-multi", "Closer")
    assert row["subtask"] == "ocrd" and row["variant"] == ""
    named = next(c for c in scene.COLOURS if f"the {c} " in row["question"])

    def area(colour, f):
        return int((np.abs(f.astype(float) - np.array(scene.COLOURS[colour]) * 255).max(-1) < 12).sum())
    present = [c for c in scene.COLOURS if area(c, frames[0]) > 20]
    assert named in present and len(present) >= 2            # distractors of other colours are drawn too
    assert area(named, frames[-1]) > 1.5 * area(named, frames[0])
    assert warmup.parse_tasks("crd,ocrdir-lateral-multi") == ("crd", "ocrdir-lateral-multi")
