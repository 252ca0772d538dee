"""Fit the numeric ladders (03_dataset ``numeric_mode: ladder``, mllm4d/ladder.py) on a curation run's *train*
clips and measure how much a text-only rule gets from each option design.

    .venv/bin/python benchmarks/fit_ladders.py --curation-run tiny --solver-run tiny --dataset-run tiny

Train clips: the 03_dataset split (``dataset.split_clips`` with that run's ``seed`` / ``bench_fraction``) of the
ok clips of ``outputs/01_curation/<curation-run>``; every relation the 02_solver constants emit is used (before
any cap), so the rungs are the quantiles of the values questions are asked about. Prints YAML lines for
``params/<profile>/03_dataset.yaml`` and, when ``--dataset-run`` names a built run, the accuracy of two
text-only rules on its ``bench.jsonl``: ``range`` (keep the options that could be the truth under the paper's
25-175 % rule, pick uniformly among them) and ``prior`` (the option whose value is most typical of the train
values, a kernel density in log space). Either far above 25 % means the options leak the answer.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mllm4d import clips, common, dataset, ladder, solver  # noqa: E402


def train_values(curation_run: str, solver_run: str, seed: int, bench_fraction: float,
                 outputs_root: str = "outputs") -> dict[str, np.ndarray]:
    """Solved numeric values (m) of the train clips, per numeric subtask."""
    cur = common.upstream_dir("01_curation", curation_run, outputs_root, require=("index.jsonl",))
    train, _ = dataset.split_clips(dataset.ok_clip_ids(cur), bench_fraction, seed)
    sp = common.read_json(common.upstream_dir("02_solver", solver_run, outputs_root) / "params.json")["params"]
    metas = [clips.load_meta(cur / "meta" / f"{c}.npz") for c in train]
    per_clip, _ = solver.solve_clips(metas, solver.config_from(sp), np.random.default_rng([seed, 7]))
    vals: dict[str, list[float]] = {s: [] for s in sorted(ladder.NUMERIC)}
    for rels in per_clip:
        for r in rels:
            if r.value is not None:
                vals[r.subtask].append(r.value)
    return {s: np.asarray(v, float) for s, v in vals.items()}


def text_only(bench: list[dict], train: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, dict]:
    """Accuracy of the ``range`` and ``prior`` text-only rules per numeric subtask of bench rows."""
    out = {}
    for sub in sorted(ladder.NUMERIC):
        rows = [r for r in bench if r["subtask"] == sub]
        lt = np.log(train[sub])
        hit_range, hit_prior = [], []
        for r in rows:
            keys = sorted(r["options"])
            v = np.array([float(r["options"][k]) for k in keys])
            ok = [all(0.25 * (c + 0.05) - 0.05 <= x <= 1.75 * (c + 0.05) + 0.05 for x in v) for c in v]
            cand = [k for k, good in zip(keys, ok) if good] or keys
            hit_range.append((r["answer"] in cand) / len(cand))
            dens = np.exp(-0.5 * ((np.log(v)[:, None] - lt[None]) / 0.15) ** 2).mean(1)
            best = np.flatnonzero(dens == dens.max())
            hit_prior.append(float(keys[int(rng.choice(best))] == r["answer"]))
        out[sub] = {"n": len(rows), "range": float(np.mean(hit_range)) if rows else None,
                    "prior": float(np.mean(hit_prior)) if rows else None}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--curation-run", default="tiny")
    ap.add_argument("--solver-run", default="tiny")
    ap.add_argument("--dataset-run", default="", help="also score text-only rules on this run's bench.jsonl")
    ap.add_argument("--seed", type=int, default=0, help="03_dataset seed (the split)")
    ap.add_argument("--bench-fraction", type=float, default=0.25)
    ap.add_argument("--decimals", type=int, default=1)
    ap.add_argument("--outputs-root", default="outputs")
    a = ap.parse_args(argv)
    vals = train_values(a.curation_run, a.solver_run, a.seed, a.bench_fraction, a.outputs_root)
    rungs = ladder.fit(vals, a.decimals)
    for sub in sorted(ladder.NUMERIC):
        share = np.bincount(ladder.rung(vals[sub], rungs[sub]), minlength=4) / max(len(vals[sub]), 1)
        print(f"ladder_{sub}: {rungs[sub]}   # {len(vals[sub])} train values, rung shares "
              f"{np.round(share, 3).tolist()}")
    if a.dataset_run:
        path = Path(a.outputs_root) / "03_dataset" / a.dataset_run / "bench.jsonl"
        bench = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        print(json.dumps(text_only(bench, vals, np.random.default_rng(0)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
