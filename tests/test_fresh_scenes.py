"""benchmarks/fresh_scenes.py: rows about new scenes, label-balanced, only the question-window frames rendered at
the recipe's size, deterministic."""
import importlib.util
import sys
from pathlib import Path

import cv2
import pytest

from mllm4d import common, dataset, solver

BENCH = Path(__file__).parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))
SPEC = importlib.util.spec_from_file_location("fresh_scenes", BENCH / "fresh_scenes.py")
fs = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(fs)


@pytest.fixture(scope="module")
def cfgs():
    scfg = solver.config_from(fs.stage_params("02_solver", "tiny", None))
    d = common.validate(dataset.DatasetParams, fs.stage_params("03_dataset", "tiny", None))
    return scfg, dataset.qa_config(d)


def test_intrinsics_match_a_resized_320x240_camera():
    K = fs.intrinsics_128()
    assert K[0, 0] == pytest.approx(104.0) and K[1, 1] == pytest.approx(260 * 128 / 240) and K[0, 2] == 63.5


def test_rows_and_frames(tmp_path, cfgs, monkeypatch):
    monkeypatch.setattr(fs, "BATCH", 6)
    rows = fs.fresh_rows(12, ("ocrd", "ocrdir"), 2, 3, *cfgs, tmp_path / "frames", workers=1)
    assert 0 < len(rows) <= 24 and {r["subtask"] for r in rows} <= {"ocrd", "ocrdir"}
    assert all(r["clip_id"].startswith("fresh") and len(r["frames"]) == 32 for r in rows)
    for r in rows:   # the two frames the recipe reads exist, at 128x128; no other frame was written
        for t in (r["frame_i"], r["frame_j"]):
            assert cv2.imread(str(tmp_path / r["frames"][t])).shape == (128, 128, 3)
    written = {str(p.relative_to(tmp_path)) for p in (tmp_path / "frames").rglob("*.jpg")}
    assert written == {r["frames"][t] for r in rows for t in (r["frame_i"], r["frame_j"])}
    again = fs.fresh_rows(12, ("ocrd", "ocrdir"), 2, 3, *cfgs, tmp_path / "frames2", workers=1)
    assert again == rows   # deterministic given the seed
