"""The parameter contract and atomic I/O in mllm4d.common."""
import dataclasses
import json
import os
import types

import numpy as np
import pytest

from mllm4d import common


@dataclasses.dataclass(frozen=True)
class P:
    run_name: str = common.field(help="run")
    seed: int = common.field(help="seed", ge=0)
    lr: float = common.field(help="learning rate", gt=0)
    reward: str = common.field(help="reward", choices=("st", "acc"))
    frames: tuple[int, ...] = common.field(help="sizes")
    init: str | None = common.field(help="optional")
    flag: bool = common.field(help="flag")


GOOD = dict(run_name="a", seed=1, lr=1e-4, reward="st", frames=[64, 64], init=None, flag=True)


def test_validate_accepts_and_coerces():
    cfg = common.validate(P, GOOD)
    assert cfg.frames == (64, 64) and isinstance(cfg.frames, tuple)
    assert common.validate(P, {**GOOD, "lr": 1}).lr == 1.0  # int -> float is lossless
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 2


@pytest.mark.parametrize("change, word", [
    ({"rewrad": "st"}, "unknown parameter"),
    ({"reward": "nope"}, "'reward'"),
    ({"seed": "1"}, "'seed' must be int"),
    ({"seed": -1}, "must be >= 0"),
    ({"lr": 0.0}, "must be > 0"),
    ({"flag": 1}, "'flag' must be bool"),
    ({"frames": [64, "x"]}, "'frames'"),
    ({"run_name": 7}, "pass strings with -r"),
])
def test_validate_rejects_naming_the_field(change, word):
    with pytest.raises(common.ParamError, match=word):
        common.validate(P, {**GOOD, **change})


def test_validate_reports_missing():
    with pytest.raises(common.ParamError, match="missing parameter"):
        common.validate(P, {k: v for k, v in GOOD.items() if k != "seed"})


def test_collect_ignores_modules_callables_and_private_names():
    ns = {**GOOD, "np": np, "common": common, "f": print, "_x": 1, "In": [], "get_ipython": lambda: None}
    assert common.collect(P, ns).seed == 1
    with pytest.raises(common.ParamError, match="typo"):
        common.collect(P, {**ns, "typo": 3})


def test_paths_resolve_against_repo_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert common.stage_dir("05_grpo", "x") == common.REPO_ROOT / "outputs" / "05_grpo" / "x"
    assert common.stage_dir("05_grpo", "x", tmp_path) == tmp_path / "05_grpo" / "x"
    with pytest.raises(FileNotFoundError, match="04_sft.ipynb"):
        common.upstream_dir("04_sft", "missing", tmp_path)


def test_start_run_writes_params_json(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class R:
        outputs_root: str = common.field()
        run_name: str = common.field()
        seed: int = common.field()
    d = common.start_run("99_x", R(str(tmp_path), "r1", 3))
    saved = common.read_json(d / "params.json")
    assert saved["params"] == {"outputs_root": str(tmp_path), "run_name": "r1", "seed": 3}
    assert saved["seed"] == 3 and "numpy" in saved["versions"] and saved["git_sha"]


def test_atomic_writes_leave_no_temp_files(tmp_path):
    common.write_json(tmp_path / "a.json", {"x": np.float32(1.5), "y": np.arange(3)})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1.5, "y": [0, 1, 2]}
    assert os.listdir(tmp_path) == ["a.json"]


def test_read_jsonl_drops_a_truncated_last_line_only(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}\n{"a": ')
    assert common.read_jsonl(p) == [{"a": 1}, {"a": 2}]
    p.write_text('{"a": 1}\n{"a"\n{"a": 3}\n')
    with pytest.raises(ValueError, match="line 2"):
        common.read_jsonl(p)
    common.append_jsonl(tmp_path / "y.jsonl", {"b": 1})
    common.append_jsonl(tmp_path / "y.jsonl", {"b": 2})
    assert common.read_jsonl(tmp_path / "y.jsonl") == [{"b": 1}, {"b": 2}]
