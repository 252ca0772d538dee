"""benchmarks/steps_to_learn.py and device_pack.py: the learnt-at rule, a two-step curve on fixture data, and a
pack that holds only the frames the recipe reads (resized) and the warm-up backgrounds (byte for byte)."""
import gzip
import importlib.util
from pathlib import Path

import cv2
import pytest

from tests.fixtures_data import make_dataset
from mllm4d import common, models


def _load(name):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


stl, pack = _load("steps_to_learn"), _load("device_pack")


def test_wilson_matches_known_values():
    lo, hi = stl.wilson(0.5, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    assert stl.wilson(0.0, 10)[0] == pytest.approx(0.0, abs=1e-12) and stl.wilson(0.3, 0) == (0.0, 1.0)


def _eval(step, video, blind, n=80):
    return {"step": step, "video": video, "blind": blind, "n": {k: n for k in video}}


def test_learnt_needs_video_above_blind_and_chance():
    evals = [_eval(0, {"crd": 0.25, "ocrd": 0.40}, {"crd": 0.25, "ocrd": 0.40}),
             _eval(500, {"crd": 0.45, "ocrd": 0.52}, {"crd": 0.22, "ocrd": 0.45}),   # ocrd: blind too close
             _eval(1000, {"crd": 0.60, "ocrd": 0.70}, {"crd": 0.20, "ocrd": 0.40})]
    learnt, above = stl.first_steps(evals)
    assert learnt["crd"] == 500 and above["crd"] == 500
    # ocrd's chance is 1/3 (its fourth option is never right): 0.52 at n = 80 clears it, not the blind 0.45
    assert above["ocrd"] == 500 and learnt["ocrd"] == 1000
    assert learnt["cad"] is None and above["cad"] is None    # never evaluated


def test_curve_on_fixture_data(tmp_path, monkeypatch):
    make_dataset(tmp_path / "03_dataset" / "fx", n_clips=4, rows_per_clip=3)
    args = ["t", f"outputs_root={tmp_path}", "dataset_run=fx", "max_steps=4", "eval_every=2", "batch_size=2",
            "frame_size=[32,32]", "logging_steps=1", "warmup_max_steps=0", "warmup_mix=0.0", f"out={tmp_path / 'copy'}"]
    rec = stl.main(args)
    assert [e["step"] for e in rec["evals"]] == [0, 2, 4]
    assert all(e["video"]["overall"] is not None and e["n"] for e in rec["evals"])
    assert rec["evals"][-1]["loss"] is not None and rec["steps_per_s"] > 0
    saved = common.read_json(tmp_path / "copy" / "curve.json")
    assert saved["evals"] == rec["evals"] and set(saved["learnt_at"]) == set(rec["learnt_at"])


def test_pack_keeps_only_read_frames(tmp_path):
    src = make_dataset(tmp_path / "03_dataset" / "fx", n_clips=2, rows_per_clip=3, size=(96, 128))
    rows = common.read_jsonl(src / "sft.jsonl") + common.read_jsonl(src / "bench.jsonl")
    read = pack.needed_frames(rows, 2, "question")
    assert len(read) <= 2 * len(rows)
    for r in rows:   # the question window's two ends
        assert {r["frames"][r["frame_i"]], r["frames"][r["frame_j"]]} <= read
    rep = pack.pack_dataset(src, tmp_path / "dst", 2, 32, "question")
    files = {str(p.relative_to(tmp_path / "dst")) for p in (tmp_path / "dst" / "frames").rglob("*.jpg")}
    bgs = {f"frames/{c}/{t:02d}.jpg" for c in ("clip0000", "clip0001") for t in pack.BACKGROUND_FRAMES}
    blind = pack.blind_frames(common.read_jsonl(src / "bench.jsonl"), 2, "question")
    assert files == read | blind | bgs and rep["frames"] == len(read | blind)
    for rel in bgs:
        assert (tmp_path / "dst" / rel).read_bytes() == (src / rel).read_bytes()
    for rel in (read | blind) - bgs:
        assert cv2.imread(str(tmp_path / "dst" / rel)).shape == (32, 32, 3)
    assert gzip.open(tmp_path / "dst" / "sft.jsonl.gz", "rt").read() == (src / "sft.jsonl").read_text()
    # what the recipe reads from the pack: every row's frames decode at the recipe's size
    for r in rows:
        paths = [tmp_path / "dst" / p for p in models.window_frames(r["frames"], r, "question")]
        assert models.read_frames([str(p) for p in paths], 2, (32, 32)).shape == (2, 32, 32, 3)


def test_pinned_reads_requirements(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("trl==1.16.0\nhuggingface-hub==2.4.0\nopen3d-cpu==0.20.0; sys_platform == 'linux'\n")
    assert pack.pinned(("trl", "huggingface-hub", "open3d-cpu"), req) == \
        ["trl==1.16.0", "huggingface-hub==2.4.0", "open3d-cpu==0.20.0"]
