"""Recipe probe for the tiny profile (issue 7): one 04_sft run with overrides, scored exactly as the main job's
Table 3 scores its SFT row (06_eval, option likelihood, the full benchmark), with the video and blind.

    .venv/bin/python benchmarks/recipe_probe.py NAME [key=value ...]
    # the tiny recipe with another learning rate:
    .venv/bin/python benchmarks/recipe_probe.py lr3e-3 lr=0.003
    # SFT on the object-direction rows only (the warm-up and its procedural mix unchanged), 1000 steps:
    .venv/bin/python benchmarks/recipe_probe.py only_ocrdir subtasks=ocrdir max_steps=1000
    # half of the training clips (the same 2000 steps: each real row is seen twice as often):
    .venv/bin/python benchmarks/recipe_probe.py frac50 clip_fraction=0.5
    # larger frames for training and for the evaluation:
    .venv/bin/python benchmarks/recipe_probe.py f256 frame_size=[256,256]

``key=value`` pairs override ``params/tiny/04_sft.yaml`` (values parsed as YAML; ``frame_size``, ``num_frames``,
``frame_window`` and ``fps`` are passed on to the evaluation). Extra keys, which derive a dataset run
``<dataset_run>-<NAME>`` from the tiny one (its ``sft.jsonl`` filtered, everything else linked, the benchmark
untouched): ``subtasks`` (comma list: keep only these SFT rows) and ``clip_fraction`` (keep the rows of a seeded
random share of the training clips). Run 01-03 of the tiny profile first.

Output: ``outputs/04_sft/probe_<NAME>/`` (the model; deleted first), ``outputs/06_eval/probe_<NAME>_{video,blind}/``,
and one ``PROBE {json}`` line (overall and per-subtask accuracy with and without the video, the warm-up's held-out
accuracy, train and total seconds), also written to ``outputs/04_sft/probe_<NAME>/recipe_probe.json``.
The runs behind docs/TRAINING.md ("Fourth round") are listed there; two ran at a time on the 2 cores.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mllm4d import common, evaluate, sft  # noqa: E402

SHARED_WITH_EVAL = ("frame_size", "num_frames", "frame_window", "fps")


def derive_dataset(src: Path, dst: Path, subtasks: tuple[str, ...] = (), clip_fraction: float = 1.0,
                   seed: int = 0) -> int:
    """Make ``dst``: ``src``'s files linked, ``sft.jsonl`` restricted to ``subtasks`` (all when empty) and to a
    seeded ``clip_fraction`` of the training clips. Returns the number of SFT rows kept."""
    if not 0 < clip_fraction <= 1:
        raise ValueError(f"clip_fraction must be in (0, 1], got {clip_fraction}")
    rows = common.read_jsonl(src / "sft.jsonl")
    clips = sorted({r["clip_id"] for r in rows})
    keep = set(np.random.default_rng(seed).permutation(clips)[:max(1, round(len(clips) * clip_fraction))])
    rows = [r for r in rows if r["clip_id"] in keep and (not subtasks or r["subtask"] in subtasks)]
    if not rows:
        raise ValueError(f"{src / 'sft.jsonl'}: no rows left for subtasks={subtasks} clip_fraction={clip_fraction}")
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name != "sft.jsonl" and not f.name.startswith("items-") and f.name != "export":
            os.symlink(f.resolve(), dst / f.name)
    common.write_jsonl(dst / "sft.jsonl", rows)
    return len(rows)


def eval_configs(run_prefix: str, sft_cfg: sft.SFTParams, **over) -> dict:
    """The tiny Table 3 SFT-row (``video``) and blind-control (``blind``) 06_eval settings for the model of
    ``sft_cfg``'s run, its frame settings shared (``over``: further 06_eval values), validated; by mode."""
    base = yaml.safe_load(common.resolve("params/tiny/06_eval.yaml").read_text())
    out = {}
    for mode, name in (("video", "06_eval@sft.yaml"), ("blind", "06_eval@blind.yaml")):
        values = {**base, **yaml.safe_load(common.resolve(f"params/tiny/{name}").read_text()),
                  "run_name": f"{run_prefix}_{mode}", "model_run": sft_cfg.run_name,
                  "outputs_root": sft_cfg.outputs_root, **{k: getattr(sft_cfg, k) for k in SHARED_WITH_EVAL}, **over}
        values["frame_size"] = int(values["frame_size"][0])  # 06_eval takes one side
        out[mode] = common.validate(evaluate.EvalParams, values, source=f"{run_prefix} {mode}")
    return out


def evaluate_both(name: str, sft_cfg: sft.SFTParams) -> dict:
    """06_eval of ``outputs/04_sft/probe_<name>/sft`` with the video and blind (the tiny @sft / @blind settings)."""
    res = {}
    for mode, cfg in eval_configs(f"probe_{name}", sft_cfg).items():
        out = common.stage_dir("06_eval", cfg.run_name, cfg.outputs_root)
        shutil.rmtree(out, ignore_errors=True)
        m = evaluate.run(cfg, out)
        res[mode] = {"overall": round(m["overall"], 3), **{k: round(v, 3) for k, v in m["per_subtask"].items()}}
    return res


def sft_values(name: str, prefix: str, pairs: dict[str, str]) -> tuple[dict, dict]:
    """The tiny 04_sft values for run ``<prefix>_<name>`` (stage ``sft``, no checkpoints) with ``pairs``
    (``key=value`` strings, parsed as YAML); ``subtasks`` / ``clip_fraction`` are taken out of ``pairs`` and,
    when set, train on a derived dataset run ``<dataset_run>-<name>`` (:func:`derive_dataset`). Returns
    (values, {"subtasks", "clip_fraction"})."""
    subtasks = tuple(s for s in str(pairs.pop("subtasks", "")).split(",") if s)
    fraction = float(pairs.pop("clip_fraction", 1.0))
    base = yaml.safe_load(common.resolve("params/tiny/04_sft.yaml").read_text())
    values = {**base, "run_name": f"{prefix}_{name}", "stage": "sft", "save_steps": 10**6,
              **{k: yaml.safe_load(v) for k, v in pairs.items()}}
    root = values["outputs_root"]
    if subtasks or fraction < 1:
        src = common.upstream_dir("03_dataset", values["dataset_run"], root, require=("sft.jsonl", "bench.jsonl"))
        values["dataset_run"] = f"{values['dataset_run']}-{name}"
        n = derive_dataset(src, common.stage_dir("03_dataset", values["dataset_run"], root), subtasks, fraction)
        print(f"{values['dataset_run']}: {n} SFT rows", flush=True)
    return values, {"subtasks": ",".join(subtasks), "clip_fraction": fraction}


def main(argv: list[str]) -> dict:
    name, pairs = argv[0], dict(a.split("=", 1) for a in argv[1:])
    values, derived = sft_values(name, "probe", pairs)
    root = values["outputs_root"]
    cfg = common.validate(sft.SFTParams, values, source="recipe_probe")
    run_dir = common.stage_dir("04_sft", cfg.run_name, root)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    t0 = time.time()
    m = sft.train(cfg, run_dir)
    t1 = time.time()
    res = {"name": name, "overrides": {**pairs, **derived},
           **evaluate_both(name, cfg), "warmup_heldout": m.get("warmup", {}).get("heldout_accuracy"),
           "train_seconds": round(t1 - t0, 1), "total_seconds": round(time.time() - t0, 1)}
    common.write_json(run_dir / "recipe_probe.json", res)
    print("PROBE", json.dumps(res), flush=True)
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
