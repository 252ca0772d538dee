"""ST-CoT writer, teachers and the Alg. 1 filter (mllm4d/cot.py), scored with the real ST-reward."""
import json
import re

import numpy as np
import pytest

from mllm4d import clips, cot, reward


def _row(subtask="oad", cam=(None, None), obj=((0.1, 0.2, 3.0), (1.2, 0.2, 3.3)), answer="A", variant=""):
    as_list = lambda v: None if v is None else list(v)  # noqa: E731
    sol = {"answer": answer, "camera_center": [as_list(v) for v in cam], "object_center": [as_list(v) for v in obj]}
    return {"id": f"c-{subtask}-0", "clip_id": "c", "subtask": subtask, "variant": variant,
            "question": "Approximately how far (in meters) did the red box move between frame 3 and frame 26 of 31?",
            "options": {"A": "1.2", "B": "0.4", "C": "0.8", "D": "1.6"}, "answer": answer,
            "frames": [f"frames/c/{t:02d}.jpg" for t in range(32)], "frame_i": 3, "frame_j": 26, "solution": sol}


def _geom(cam=((0, 0, 0), (0.0, 0, 0.5)), obj=((0.1, 0.2, 3.0), (1.2, 0.2, 3.3))):
    return cot.Geometry(cam=np.array(cam, float), obj=None if obj is None else np.array(obj, float),
                        rot=np.stack([np.eye(3)] * 2))


CASES = [  # (subtask, solution camera, solution object, expected st_format)
    ("cad", ((0, 0, 0), (0, 0, 0.5)), (None, None), 0.0),
    ("crd", ((0, 0, 0), (0, 0, 0.5)), (None, None), 0.0),
    ("oad", (None, None), ((0.1, 0.2, 3.0), (1.2, 0.2, 3.3)), 0.0),
    ("ocad", ((0, 0, 0), None), (None, (1.2, 0.2, 3.3)), 1.0),
    ("ocrd", ((0, 0, 0), (0, 0, 0.5)), ((0.1, 0.2, 3.0), (1.2, 0.2, 3.3)), 1.0),
    ("ocrdir", ((0, 0, 0), (0, 0, 0.5)), ((0.1, 0.2, 3.0), (1.2, 0.2, 3.3)), 1.0),
]


@pytest.mark.parametrize("subtask,cam,obj,st_fmt", CASES)
def test_exact_cot_gets_full_reward_terms(subtask, cam, obj, st_fmt):
    row = _row(subtask, cam, obj, answer="C")
    text = cot.write_cot(row, _geom(obj=None if subtask in ("cad", "crd") else ((0.1, 0.2, 3.0), (1.2, 0.2, 3.3))))
    t = reward.reward_terms(text, [row["solution"]], row["options"])
    assert (t["accuracy"], t["accuracy_exact"], t["structure_format"]) == (1.0, 1.0, 1.0)
    assert t["st_format"] == st_fmt  # release rule: a null camera/object line loses the ST-format bonus
    assert t["camera"] == pytest.approx(1.0, abs=2e-3) and t["object"] == pytest.approx(1.0, abs=2e-3)
    assert text.endswith("<answer>C</answer>")


def test_five_steps_and_spatial_states_in_order():
    text = cot.write_cot(_row(), _geom())
    thinking = text[text.index("<thinking>"):text.index("</thinking>")]
    marks = ["**1. Objective.**", "**2. Start-frame", "**Spatial State (Initial Frame):**", "**3. Temporal",
             "**4. End-frame", "**Spatial State (Final Frame):**", "**5. Synthesis.**"]
    pos = [thinking.index(m) for m in marks]
    assert pos == sorted(pos)
    assert "- Camera Center: null\n- Object Center: [0.100, 0.200, 3.000]" in thinking
    assert "Object Center: [1.200, 0.200, 3.300]" in thinking
    assert "the only plausible value among the options is \"1.2\" (A)" in thinking
    assert "X-coordinate" not in thinking and "sensor log" not in thinking.lower()  # Fig. 11 rule 2


@pytest.mark.parametrize("cam_end,obj_end,expect", [
    ((0.0, 0, 0), (0.1, 0.2, 1.5), "grows in the frame"),          # object approaches: looms larger
    ((0.0, 0, 0), (0.1, 0.2, 6.0), "shrinks in the frame"),         # object recedes
    ((0.0, 0, 0), (0.1, 0.2, 3.0), "same apparent size"),
    ((1.0, 0, 0), (0.1, 0.2, 3.0), "slide left across the frame"),  # camera trucks right: parallax to the left
    ((-1.0, 0, 0), (0.1, 0.2, 3.0), "slide right across the frame"),
    ((0, 0, 1.0), (0.1, 0.2, 3.0), "scene expands outward"),        # camera dollies forward
    ((0, 0, -1.0), (0.1, 0.2, 3.0), "scene contracts"),
    ((0.0, 0, 0), (2.0, 0.2, 3.0), "drifts from near the centre of the frame to right of centre"),
])
def test_visual_cues_follow_the_geometry(cam_end, obj_end, expect):
    g = _geom(cam=((0, 0, 0), cam_end), obj=((0.1, 0.2, 3.0), obj_end))
    assert expect in cot.write_cot(_row("ocrd"), g)


def test_direction_words_use_opencv_axes():
    words = [cot.direction_word(np.array(v, float)) for v in
             [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1), (0.2, -0.1, 0.9)]]
    assert words == ["right", "left", "down", "up", "forward", "backward", "forward"]


def _meta(T=8):
    yaw = 0.3  # frame-0 camera rotated about its y axis, translated: the transform must undo both
    R = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    c2w = np.zeros((T, 3, 4))
    for t in range(T):
        c2w[t, :, :3] = R
        c2w[t, :, 3] = [1.0 + 0.1 * t, 2.0, 0.5]
    centre = np.zeros((T, 1, 3))
    centre[:, 0] = [[1.0 + 0.2 * t, 2.0, 4.0] for t in range(T)]
    z = np.zeros((T, 1))
    return clips.ClipMeta("m", "gt", np.arange(T) / 10, c2w, np.eye(3), 0.1, (32, 32), ("box",), ("the box",),
                          ("box",), centre, z.astype(np.int32), np.zeros((0, 3), np.float32),
                          np.ones((T, 1), np.float32), z.astype(bool), np.ones((T, 1), bool))


def test_geometry_from_meta_is_in_the_frame0_camera():
    meta = _meta()
    g = cot.geometry_from_meta(meta, 2, 5, 0)
    R0, t0 = meta.camera2world[0, :, :3], meta.camera2world[0, :, 3]
    np.testing.assert_allclose(g.cam[0], R0.T @ (meta.camera2world[2, :, 3] - t0))
    np.testing.assert_allclose(g.obj[1], R0.T @ (meta.obj_centre[5, 0] - t0))
    np.testing.assert_allclose(np.linalg.norm(g.cam[1] - g.cam[0]), 0.3)   # rigid transform keeps lengths
    np.testing.assert_allclose(g.rot, np.stack([np.eye(3)] * 2), atol=1e-12)  # no rotation relative to frame 0
    assert cot.geometry_from_meta(meta, 0, 1, None).obj is None
    np.testing.assert_allclose(cot.geometry_from_meta(meta, 0, 1, None).cam[0], 0, atol=1e-12)


def test_geometric_teacher_noise_and_wrong_answers():
    row, g = _row("ocrd", ((0, 0, 0), (0, 0, 0.5))), _geom()
    sol = [row["solution"]]
    exact = cot.candidates(row, g, np.random.default_rng(0), 4, "geometric", {"noise_m": 0.0, "wrong_prob": 0.0})
    assert all(reward.reward_terms(c, sol, row["options"])["total_st"] == pytest.approx(1.0, abs=2e-3) for c in exact)
    wrong = cot.candidates(row, g, np.random.default_rng(0), 20, "geometric", {"noise_m": 0.0, "wrong_prob": 1.0})
    letters = {reward.answer_block(c) for c in wrong}
    assert "A" not in letters and letters <= {"B", "C", "D"} and len(letters) > 1
    noisy = cot.candidates(row, g, np.random.default_rng(0), 20, "geometric", {"noise_m": 0.5, "wrong_prob": 0.0})
    cams = [reward.reward_terms(c, sol)["camera"] for c in noisy]
    assert max(cams) < 1.0 and np.std(cams) > 0.02  # per-candidate noise scale: candidates differ
    again = cot.candidates(row, g, np.random.default_rng(0), 20, "geometric", {"noise_m": 0.5, "wrong_prob": 0.0})
    assert again == noisy


@pytest.mark.parametrize("scores,scen,keep,tau", [
    ([[0.2, 0.9], [0.5, 0.1], [0.0, 0.0]], ["a", "a", "b"], [1, None, None], {"a": 0.7, "b": 0.0}),
    ([[0.5, 0.5], [0.5]], ["a", "a"], [0, 0], {"a": 0.5}),                      # ties: first path; max == tau kept
    ([[0.3, 0.8, 0.8], [0.4]], ["a", "b"], [1, 0], {"a": 0.8, "b": 0.4}),      # thresholds are per scenario
    ([[0.1], [0.9], [0.2], [0.6]], ["s"] * 4, [None, 0, None, 0], {"s": 0.45}),
])
def test_alg1_select(scores, scen, keep, tau):
    k, t = cot.alg1_select(scores, scen)
    assert k == keep
    assert t == pytest.approx(tau)


def test_filter_prefers_correct_low_error_paths():
    row, g = _row("ocrd", ((0, 0, 0), (0, 0, 0.5))), _geom()
    rng = np.random.default_rng(1)
    cands = [cot.candidates(row, g, rng, 3, "geometric", {"noise_m": 0.3, "wrong_prob": 0.4}) for _ in range(60)]
    scores = [reward.REWARDS["st"](c, [[row["solution"]]] * 3) for c in cands]
    keep, tau = cot.alg1_select(scores, ["ocrd"] * 60)
    kept = [c[b] for c, b in zip(cands, keep) if b is not None]
    assert 0 < len(kept) < 60
    assert all(reward.answer_block(c) == "A" for c in kept)
    every = [reward.reward_terms(x, [row["solution"]])["accuracy"] for c in cands for x in c]
    assert np.mean(every) < 0.8


def test_openai_teacher_with_fake_transport(monkeypatch):
    seen = {}
    cotxt = "Objective... **Spatial State (Initial Frame):**\n- Camera Center: null\n- Object Center: [0, 0, 3]"

    def fake(url, headers, body, timeout):
        seen.update(url=url, headers=headers, body=json.loads(body), timeout=timeout)
        content = "```json\n" + json.dumps({"chain_of_thought": cotxt, "answer": "A"}) + "\n```"
        return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()

    monkeypatch.setenv("FAKE_KEY_VAR", "k123")
    cfg = {"url": "http://teacher.invalid/v1/", "model": "m", "api_key_env": "FAKE_KEY_VAR", "timeout_s": 5}
    out = cot.openai_teacher(_row(), _geom(), np.random.default_rng(0), cfg, transport=fake)
    assert seen["url"] == "http://teacher.invalid/v1/chat/completions" and seen["timeout"] == 5.0
    assert seen["headers"]["Authorization"] == "Bearer k123" and seen["body"]["model"] == "m"
    user = seen["body"]["messages"][1]["content"]
    assert "Internal Target: A" in user and '"camera_center": [null, null]' in user and "Options:" in user
    assert out == f"<thinking>\n{cotxt}\n</thinking><answer>A</answer>"
    t = reward.reward_terms(out, [_row()["solution"]])
    assert t["accuracy"] == 1.0 and t["structure_format"] == 1.0


@pytest.mark.parametrize("reply,expect", [
    ('{"chain_of_thought": "<thinking>x</thinking><answer>B</answer>"}', "<thinking>x</thinking><answer>B</answer>"),
    ('{"chain_of_thought": "x"}', "<thinking>\nx\n</thinking><answer></answer>"),
    ("not json at all", "not json at all"),
    ('{"other": 1}', '{"other": 1}'),
])
def test_parse_teacher_reply(reply, expect):
    assert cot.parse_teacher_reply(reply) == expect


def test_scenario_keys():
    assert cot.scenario("ocrdir", "lateral") == "ocrdir-lateral" and cot.scenario("cad", "") == "cad"
    assert len(cot.SCENARIOS) == 7 and all(re.fullmatch(r"[a-z-]+", s) for s in cot.SCENARIOS)


def test_compact_chain_keeps_the_states_and_the_answer():
    row, geom = _row(), _geom()
    full, compact = cot.write_cot(row, geom), cot.write_cot(row, geom, compact=True)
    assert len(compact) < len(full) / 2
    for text in (full, compact):
        assert "**Spatial State (Initial Frame):**" in text and "**Spatial State (Final Frame):**" in text
        assert text.endswith(f"<answer>{row['answer']}</answer>")
    sol = [[row["solution"]]]
    assert reward.REWARDS["st"]([compact], sol, options=[row["options"]])[0] == pytest.approx(
        reward.REWARDS["st"]([full], sol, options=[row["options"]])[0])
