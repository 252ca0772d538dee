"""How much of a benchmark can be answered without the video: a text-only naive-Bayes baseline.

    .venv/bin/python benchmarks/text_prior.py --dataset-run tiny          # train on sft.jsonl, score bench.jsonl

Per subtask, a multinomial naive Bayes over the answer's option *text* (numeric options: the value's rank among
the four and the value itself) is fitted on the training rows' question words, frame gap (j - i, in 4-frame
bins) and first frame, and every bench question is answered with the option whose text scores highest among
its four. Seconds on a CPU; no model, no video. A subtask far above chance here has a text prior the blind-video
control (06_eval ``blind_video``) will also find. Writes ``<out>/text_prior.json`` and prints a table.

Measured (tiny profile, 2026-12-01): before the fixes in docs/DATASETS.md "Text priors" (numeric ladder, every
object category mobile, labels balanced within short/long windows) the tiny SFT model's blind control scored
Object-Camera Rel. Dist. 56 % and Rel. Dir. 48 % (3 real labels: chance 33 %); the numbers after them are in
docs/DATASETS.md.
"""
from __future__ import annotations

import argparse
import collections
import json
import math
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mllm4d import common, prompts, solver  # noqa: E402

WORD = re.compile(r"[a-z]+")


def answer_key(row: dict, letter: str) -> str:
    """What the classifier predicts for option ``letter``: its text, or for numeric rows its rank and value."""
    text = str(row["options"][letter])
    if row["subtask"] in solver.NUMERIC:
        vals = sorted(float(v) for v in row["options"].values())
        return f"rank{vals.index(float(text))}:{text}"
    return text


def features(row: dict) -> list[str]:
    """Question words (once each), frame-gap bin and first-frame bin."""
    words = sorted(set(WORD.findall(row["question"].lower())))
    return words + [f"gap{(row['frame_j'] - row['frame_i']) // 4}", f"start{row['frame_i'] // 4}"]


def fit(rows: list[dict]) -> dict:
    """Per subtask: class counts and per-class feature counts (Laplace smoothing at prediction)."""
    model: dict = {}
    for r in rows:
        m = model.setdefault(r["subtask"], {"n": collections.Counter(), "f": collections.defaultdict(collections.Counter)})
        y = answer_key(r, r["answer"])
        m["n"][y] += 1
        m["f"][y].update(features(r))
    return model


def predict(model: dict, row: dict) -> str:
    """The letter whose option scores the highest log posterior (unseen option texts: the smoothed prior)."""
    m = model.get(row["subtask"])
    if m is None:
        return sorted(row["options"])[0]
    total = sum(m["n"].values())
    feats = features(row)

    def score(letter: str) -> float:
        y = answer_key(row, letter)
        ny = m["n"].get(y, 0)
        return math.log((ny + 1) / (total + len(m["n"]) + 1)) + sum(
            math.log((m["f"][y].get(f, 0) + 1) / (ny + 2)) for f in feats)
    return max(sorted(row["options"]), key=score)


def evaluate(train: list[dict], bench: list[dict]) -> dict:
    """{subtask: {"n", "accuracy"}} plus "overall" (macro) of the naive-Bayes text-only baseline."""
    model = fit(train)
    out = {}
    for sub in prompts.SUBTASKS:
        rows = [r for r in bench if r["subtask"] == sub]
        if rows:
            out[sub] = {"n": len(rows), "accuracy": sum(predict(model, r) == r["answer"] for r in rows) / len(rows)}
    out["overall"] = sum(v["accuracy"] for v in out.values()) / max(len(out), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset-run", default="tiny")
    ap.add_argument("--outputs-root", default="outputs")
    ap.add_argument("--out", default="outputs/benchmarks/text_prior")
    a = ap.parse_args(argv)
    d = Path(a.outputs_root) / "03_dataset" / a.dataset_run
    res = evaluate(common.read_jsonl(d / "sft.jsonl"), common.read_jsonl(d / "bench.jsonl"))
    common.write_json(Path(a.out) / "text_prior.json", {"dataset_run": a.dataset_run, **res})
    for k, v in res.items():
        print(f"{k:8s} {v if isinstance(v, float) else v['accuracy']:.3f}" + ("" if k == "overall" else f"  n={v['n']}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
