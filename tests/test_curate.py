"""curate: one clip end to end, the segmenter plug, the batch runner (files, metrics, resume, one bad clip
among good ones, worker pool) and the CLI on a real-format clip without ground truth or masks."""
import json

import cv2
import numpy as np
import pytest

from mllm4d import clips, common, curate, runner
from tests.fixtures_stereo import room_clip


def params(**over):
    values = {**runner.notebook_defaults("01_curation"), "num_clips": 2, "num_frames": 6, "image_height": 96,
              "image_width": 128, "fx": 104.0, "num_objects_max": 3, "sift_features": 400, "pose_refs": [1, 2, 4],
              "workers": 1, "render_backend": "numpy", **over}
    return common.validate(curate.CurationParams, values)


def write_folder_clip(path, clip, baseline=None):
    for side, stack in (("left", clip.left), ("right", clip.right)):
        (path / side).mkdir(parents=True)
        for t, im in enumerate(stack):
            cv2.imwrite(str(path / side / f"{t:02d}.png"), im[..., ::-1])
    cal = {"K": clip.K.tolist(), "baseline": clip.baseline if baseline is None else baseline, "fps": 10}
    (path / "calibration.json").write_text(json.dumps(cal))
    return path


@pytest.fixture(scope="module")
def small_room():
    return room_clip(T=6, H=120, W=160, f=130.0)


def test_curate_clip_accuracy_on_exact_room(small_room):
    cfg = params()
    meta, diag = curate.curate_clip(small_room, cfg)
    assert meta.source == "curated" and meta.camera2world.shape == (6, 3, 4) and meta.num_objects == 2
    assert np.allclose(meta.camera2world[0], small_room.gt["camera2world"][0]), "anchored at the given first pose"
    m = curate.evaluate(small_room, meta, diag["depth"])
    assert m["depth_absrel"] < 0.05 and m["depth_density"] > 0.6 and m["pose_ate_m"] < 0.02
    assert set(diag["seconds"]) == {"depth", "pose", "objects", "total"}


def test_segmenter_plug_and_bad_masks(small_room):
    cfg = params()
    seen = []

    def one_blob(clip):
        seen.append(clip.name)
        masks = np.full(clip.left.shape[:3], -1, np.int16)
        masks[:, 40:80, 60:100] = 0
        return masks, ["blob"], ["a blob in the middle"], ["thing"]

    meta, _ = curate.curate_clip(small_room, cfg, segmenter=one_blob)
    assert seen == [small_room.name] and meta.obj_names == ("blob",) and meta.obj_valid[0, 0]
    meta, _ = curate.curate_clip(small_room, cfg, segmenter=curate.SEGMENTERS["none"])
    assert meta.num_objects == 0 and meta.obj_centre.shape == (6, 0, 3)
    with pytest.raises(ValueError, match="segmenter masks shape"):
        curate.curate_clip(small_room, cfg, segmenter=lambda c: (np.zeros((1, 2, 2), np.int16), [], [], []))


def test_run_synthetic_writes_files_metrics_and_resumes(tmp_path, monkeypatch):
    cfg = params(num_clips=2)
    m = curate.run(cfg, tmp_path, progress=False)
    assert m["clips_ok"] == 2 and m["clips_failed"] == 0
    for cid in ("clip0000", "clip0001"):
        assert clips.load_meta(tmp_path / "meta" / f"{cid}.npz").source == "curated"
        assert clips.load_meta(tmp_path / "gt" / f"{cid}.npz").source == "gt"
        assert len(list((tmp_path / "frames" / cid).glob("*.jpg"))) == 6
    for k in ("depth_absrel", "depth_delta1", "depth_density", "pose_ate_m", "pose_rpe_rot_deg",
              "object_center_err_m", "seconds_per_clip"):
        assert m[k] is not None and np.isfinite(m[k]), k
    assert len(common.read_jsonl(tmp_path / "clips_metrics.jsonl")) == 2
    # resume: nothing is recomputed, metrics are rebuilt from the rows on disk
    monkeypatch.setattr(curate, "process", lambda *a: pytest.fail("a done clip was recomputed"))
    again = curate.run(cfg, tmp_path, progress=False)
    assert again["clips_ok"] == 2 and again["depth_absrel"] == m["depth_absrel"]
    assert len(common.read_jsonl(tmp_path / "index.jsonl")) == 2
    table = curate.metrics_table(tmp_path)
    assert list(table["clip_id"]) == ["clip0000", "clip0001", "(mean)", "(median)"]
    # a new scene generator samples other scenes from the same seeds: those clips are redone, not resumed
    from mllm4d import scene
    monkeypatch.setattr(scene, "GENERATOR_VERSION", scene.GENERATOR_VERSION + 1)
    redone = []
    monkeypatch.setattr(curate, "process", lambda job, *a: redone.append(job) or {
        "clip_id": curate.clip_id(job), "source": "synthetic", "input": "stub", "status": "failed", "reason": "stub"})
    curate.run(cfg, tmp_path, progress=False)
    assert sorted(j[1] for j in redone) == [0, 1]


def test_batch_with_one_bad_clip_in_worker_pool(tmp_path, small_room):
    src = tmp_path / "in"
    write_folder_clip(src / "a_good", small_room)
    write_folder_clip(src / "b_zero_baseline", small_room, baseline=0.0)
    write_folder_clip(src / "c_good", small_room)
    cfg = params(input_path=str(src), num_clips=10, workers=2)
    m = curate.run(cfg, tmp_path / "out", progress=False)
    assert m["clips_ok"] == 2 and m["clips_failed"] == 1
    bad = m["failed"][0]
    assert bad["clip_id"] == "b_zero_baseline" and "calibration.json" in bad["reason"] and "'baseline'" in bad["reason"]
    rows = {r["clip_id"]: r for r in common.read_jsonl(tmp_path / "out" / "index.jsonl")}
    assert rows["b_zero_baseline"]["status"] == "failed" and rows["a_good"]["status"] == "ok"
    # real clips carry no GT: no accuracy numbers, but timings
    assert m["depth_absrel"] is None and m["seconds_per_clip"] > 0


def test_cli_on_real_format_without_gt_or_masks(tmp_path, small_room, capsys):
    clip_dir = write_folder_clip(tmp_path / "walk", small_room)
    assert curate.main(["--input", str(clip_dir), "--out", str(tmp_path / "out")]) == 0
    meta = clips.load_meta(tmp_path / "out" / "meta" / "walk.npz")
    assert meta.camera2world.shape == (6, 3, 4) and meta.num_objects == 0
    assert np.allclose(meta.camera2world[0], np.eye(4)[:3]), "no reference pose: identity anchor"
    gt = small_room.gt["camera2world"]
    rel_est = np.linalg.norm(meta.camera2world[-1, :, 3] - meta.camera2world[0, :, 3])
    assert rel_est == pytest.approx(np.linalg.norm(gt[-1, :, 3] - gt[0, :, 3]), abs=0.02)
    assert "curated 1 clip(s), 0 failed" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no stereo clips found"):
        curate.main(["--input", str(tmp_path / "empty"), "--out", str(tmp_path / "o2")])


def test_object_never_in_view_keeps_the_gt_object_list():
    # the last GT object never appears: its mask id is absent, but the curated metadata must still list it
    # (02_solver's label agreement pairs curated and GT objects one to one)
    import dataclasses
    cfg = params()
    clip = curate.make_clip(("synthetic", 0), cfg)
    gt = clip.gt
    last = gt["meta"].num_objects - 1
    clip = dataclasses.replace(clip, gt={**gt, "instance": np.where(gt["instance"] == last, -1, gt["instance"])})
    masks, names, descs, cats = curate.given_masks(clip)
    assert names == list(gt["meta"].obj_names)
    meta, _ = curate.curate_clip(clip, cfg)
    assert meta.num_objects == gt["meta"].num_objects and not meta.obj_valid[:, last].any()
