"""benchmarks/recipe_probe.py: the derived dataset keeps exactly the asked rows and links everything else."""
import importlib.util
from pathlib import Path

import pytest

from tests.fixtures_data import make_dataset
from mllm4d import common

SPEC = importlib.util.spec_from_file_location("recipe_probe",
                                              Path(__file__).parents[1] / "benchmarks" / "recipe_probe.py")
rp = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(rp)


def test_derive_dataset_filters_subtasks_and_clips(tmp_path):
    src = make_dataset(tmp_path / "03_dataset" / "fx", n_clips=8, rows_per_clip=4)
    rows = common.read_jsonl(src / "sft.jsonl")
    sub = rows[0]["subtask"]
    n = rp.derive_dataset(src, tmp_path / "03_dataset" / "d1", (sub,))
    kept = common.read_jsonl(tmp_path / "03_dataset" / "d1" / "sft.jsonl")
    assert n == len(kept) == sum(r["subtask"] == sub for r in rows)
    assert (tmp_path / "03_dataset" / "d1" / "bench.jsonl").read_text() == (src / "bench.jsonl").read_text()
    rp.derive_dataset(src, tmp_path / "03_dataset" / "d2", clip_fraction=0.5)
    half = common.read_jsonl(tmp_path / "03_dataset" / "d2" / "sft.jsonl")
    assert len({r["clip_id"] for r in half}) == 4
    assert all(r in rows for r in half) and len(half) == 4 * 4
    again = rp.derive_dataset(src, tmp_path / "03_dataset" / "d2", clip_fraction=0.5)   # seeded: same clips
    assert again == len(half) and common.read_jsonl(tmp_path / "03_dataset" / "d2" / "sft.jsonl") == half


def test_derive_dataset_rejects_empty_and_bad_fraction(tmp_path):
    src = make_dataset(tmp_path / "03_dataset" / "fx", n_clips=2, rows_per_clip=2)
    with pytest.raises(ValueError, match="no rows left"):
        rp.derive_dataset(src, tmp_path / "x", ("nope",))
    with pytest.raises(ValueError, match="clip_fraction"):
        rp.derive_dataset(src, tmp_path / "x", clip_fraction=0)


def test_sft_values_parse_overrides_and_derive_the_dataset(tmp_path):
    src = make_dataset(tmp_path / "03_dataset" / "fx", n_clips=2, rows_per_clip=6)
    sub = common.read_jsonl(src / "sft.jsonl")[0]["subtask"]
    pairs = {"subtasks": sub, "lr": "0.01", "outputs_root": str(tmp_path), "dataset_run": "fx"}
    values, derived = rp.sft_values("n1", "probe", pairs)
    assert values["run_name"] == "probe_n1" and values["stage"] == "sft" and values["lr"] == 0.01
    assert values["dataset_run"] == "fx-n1" and derived == {"subtasks": sub, "clip_fraction": 1.0}
    assert "subtasks" not in pairs   # taken out: the rest are 04_sft parameters
    rows = common.read_jsonl(tmp_path / "03_dataset" / "fx-n1" / "sft.jsonl")
    assert rows and {r["subtask"] for r in rows} == {sub}
    plain, _ = rp.sft_values("n2", "steps", {"outputs_root": str(tmp_path), "dataset_run": "fx"})
    assert plain["dataset_run"] == "fx" and plain["run_name"] == "steps_n2"
