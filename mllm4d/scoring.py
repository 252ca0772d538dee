"""Scores from per-item correctness: accuracy tables, VLM4D splits, MRA, bootstrap intervals, baselines.

Pure functions over lists and numpy arrays; no file I/O. Accuracies are **fractions** in [0, 1] (callers that
print tables multiply by 100).

- MLLM4D-Bench (paper Table 1, paper.md §5.3): accuracy per subtask; ``overall`` = the *macro* mean of the six
  subtask accuracies (the paper's "Avg", verified on all 17 rows), ``micro`` = correct / N alongside.
- VLM4D (paper Table 2, paper.md §5.2, peers.md §5.2/§7; ``acc_final_statistics.py``): Real = Ego (id number
  > 922) + Exo (≤ 922); Synthetic = FP (GT answer "no" or starting "no ") + Directional; every figure is
  micro within its split; Overall is micro over all 1816 items.
- MRA (VSI-Bench, peers.md §4.2/§7): mean over θ ∈ {0.50, 0.55, …, 0.95} of 1[|ŷ − y| / |y| ≤ 1 − θ]; a
  parse failure scores 0. Deviation: y = 0 (VSI divides by zero) scores 1 only for ŷ = 0.
- Bootstrap 95 % intervals (percentile method) with an explicit ``np.random.Generator``; the macro interval
  resamples items *within* each subtask (stratified), matching how the benchmark fixes subtask sizes.

>>> summary(["cad", "cad", "crd"], [True, False, True])["overall"]
0.75
>>> vlm4d_category("validation_923", "left", "real")
'ego'
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable, Sequence

import numpy as np

MRA_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
VLM4D_EGO_MIN_ID = 923  # real ids >= 923 are Ego4D clips (acc_final_statistics.py: exo is id <= 922)


# ----------------------------------------------------------------------------------------------------------
# Correctness of one multiple-choice item
# ----------------------------------------------------------------------------------------------------------
def gt_letters(choices: dict, answer: Any) -> set[str]:
    """Letters whose option text equals the GT ``answer`` (VLM4D stores the text, which may be an int).

    A set, because one VLM4D item (real ``validation_633``) has two identical options (C = D): both count.

    >>> sorted(gt_letters({"A": "left", "B": "x", "C": "x"}, "x"))
    ['B', 'C']
    >>> gt_letters({"A": 1, "B": 2}, 2)
    {'B'}
    """
    want = str(answer).strip()
    return {str(k).strip().upper() for k, v in choices.items() if str(v).strip() == want}


def is_correct(pred: str, gt: str | Iterable[str]) -> bool:
    """Exact letter match; ``gt`` is one letter or a set of acceptable letters; an empty prediction is wrong.

    >>> is_correct("b", "B"), is_correct("", {"A"}), is_correct("D", {"C", "D"})
    (True, False, True)
    """
    pred = (pred or "").strip().upper()
    if not pred:
        return False
    gts = {gt} if isinstance(gt, str) else set(gt)
    return pred in {g.strip().upper() for g in gts}


# ----------------------------------------------------------------------------------------------------------
# Accuracy tables
# ----------------------------------------------------------------------------------------------------------
def accuracy(correct: Sequence[bool]) -> float:
    """Fraction correct; NaN for an empty list (an absent split is not a 0 % split).

    >>> accuracy([True, False, True, True])
    0.75
    """
    return float(np.mean(np.asarray(correct, dtype=float))) if len(correct) else float("nan")


def per_group(groups: Sequence[str], correct: Sequence[bool]) -> dict[str, tuple[int, int]]:
    """``{group: (n_correct, n)}`` in first-seen order."""
    if len(groups) != len(correct):
        raise ValueError(f"per_group: {len(groups)} groups vs {len(correct)} correctness flags")
    out: dict[str, list[int]] = {}
    for g, c in zip(groups, correct):
        cell = out.setdefault(str(g), [0, 0])
        cell[0] += bool(c)
        cell[1] += 1
    return {g: (k, n) for g, (k, n) in out.items()}


def summary(groups: Sequence[str], correct: Sequence[bool], order: Sequence[str] | None = None) -> dict:
    """Per-group accuracy, macro (``overall``, mean over groups present) and micro, with counts.

    ``order`` fixes the key order of ``per_subtask`` (e.g. ``prompts.SUBTASKS``); groups not in it follow.

    >>> s = summary(["a", "a", "b", "b"], [1, 1, 1, 0], order=["b", "a"])
    >>> s["per_subtask"], s["overall"], s["micro"], s["n"]
    ({'b': 0.5, 'a': 1.0}, 0.75, 0.75, 4)
    """
    counts = per_group(groups, correct)
    keys = [g for g in (order or []) if g in counts] + [g for g in counts if g not in (order or [])]
    per = {g: counts[g][0] / counts[g][1] for g in keys}
    return {"overall": float(np.mean(list(per.values()))) if per else float("nan"),
            "micro": accuracy(correct), "per_subtask": per,
            "n_per_subtask": {g: counts[g][1] for g in keys}, "n": int(len(correct))}


# ----------------------------------------------------------------------------------------------------------
# VLM4D splits (acc_final_statistics.py)
# ----------------------------------------------------------------------------------------------------------
def _id_number(item_id: Any) -> int:
    m = re.search(r"(\d+)\s*$", str(item_id))
    if not m:
        raise ValueError(f"VLM4D id {item_id!r} has no trailing number (expected 'validation_N')")
    return int(m.group(1))


def vlm4d_category(item_id: Any, answer: Any, split: str) -> str:
    """``ego``/``exo`` for real items (by id number), ``fp``/``directional`` for synthetic ones (by answer).

    >>> vlm4d_category("validation_922", "left", "real"), vlm4d_category(5, "no bus there", "synthetic")
    ('exo', 'fp')
    >>> vlm4d_category("validation_1", "not moving", "synthetic")
    'directional'
    """
    if split == "real":
        return "ego" if _id_number(item_id) >= VLM4D_EGO_MIN_ID else "exo"
    if split == "synthetic":
        a = str(answer).strip().lower()
        return "fp" if a == "no" or a.startswith("no ") else "directional"
    raise ValueError(f"VLM4D split must be 'real' or 'synthetic', got {split!r}")


def vlm4d_table(records: Iterable[dict]) -> dict:
    """VLM4D's table from records ``{"split": "real"|"synthetic", "id", "answer", "correct": bool}``.

    Returns fractions ``real, real_ego, real_exo, synthetic, synthetic_directional, synthetic_fp, overall`` and
    counts ``n_<same>`` (NaN accuracy where a split has no items).

    >>> t = vlm4d_table([{"split": "real", "id": "validation_1", "answer": "x", "correct": True},
    ...                  {"split": "synthetic", "id": "validation_1", "answer": "no x", "correct": False}])
    >>> t["real_exo"], t["synthetic_fp"], t["overall"], t["n_overall"]
    (1.0, 0.0, 0.5, 2)
    """
    cells: dict[str, list[bool]] = {k: [] for k in ("real", "real_ego", "real_exo", "synthetic",
                                                   "synthetic_directional", "synthetic_fp", "overall")}
    for r in records:
        split, ok = r["split"], bool(r["correct"])
        cells[split].append(ok)
        cells[f"{split}_{vlm4d_category(r['id'], r['answer'], split)}"].append(ok)
        cells["overall"].append(ok)
    out: dict[str, float | int] = {k: accuracy(v) for k, v in cells.items()}
    out.update({f"n_{k}": len(v) for k, v in cells.items()})
    return out


# ----------------------------------------------------------------------------------------------------------
# Numeric answers: MRA (VSI-Bench)
# ----------------------------------------------------------------------------------------------------------
_NUM_RE = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?")


def parse_number(text: Any) -> float | None:
    """First number in ``text`` (commas as thousands separators allowed); None if there is none.

    >>> parse_number("about 1,250.5 m"), parse_number("-0.4"), parse_number("none")
    (1250.5, -0.4, None)
    """
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text) if math.isfinite(text) else None
    for m in _NUM_RE.finditer(str(text)[:10_000]):
        s = m.group(0).replace(",", "")
        if any(ch.isdigit() for ch in s):
            try:
                v = float(s)
            except ValueError:
                continue
            return v if math.isfinite(v) else None
    return None


def mra(pred: Any, gt: float, thresholds: Sequence[float] = MRA_THRESHOLDS) -> float:
    """Mean Relative Accuracy of one numeric prediction (VSI-Bench ``utils.py``, ``≤`` as the official code).

    >>> mra(1.0, 1.0), mra(1.2, 1.0), mra("0.5 m", 1.0), mra("n/a", 1.0)
    (1.0, 0.7, 0.1, 0.0)
    """
    y_hat = parse_number(pred)
    if y_hat is None:
        return 0.0
    y = float(gt)
    if y == 0:
        return 1.0 if y_hat == 0 else 0.0
    rel = abs(y_hat - y) / abs(y)
    # tolerance absorbs float noise: 1.2 vs 1.0 is exactly 0.2 relative error, which passes theta = 0.8
    return float(np.mean([rel <= (1.0 - t) + 1e-9 for t in thresholds]))


# ----------------------------------------------------------------------------------------------------------
# Uncertainty and baselines
# ----------------------------------------------------------------------------------------------------------
def bootstrap_ci(values: Sequence[float], rng: np.random.Generator, n_boot: int = 1000, level: float = 0.95,
                 stat: Callable[[np.ndarray], float] = np.mean) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` over ``values`` (items resampled with replacement).

    >>> lo, hi = bootstrap_ci([1, 0] * 50, np.random.default_rng(0))
    >>> 0.39 < lo < 0.5 < hi < 0.61
    True
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return float("nan"), float("nan")
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    stats = np.array([stat(x[i]) for i in idx]) if stat is not np.mean else x[idx].mean(axis=1)
    a = (1.0 - level) / 2
    return float(np.quantile(stats, a)), float(np.quantile(stats, 1 - a))


def bootstrap_macro_ci(groups: Sequence[str], correct: Sequence[bool], rng: np.random.Generator,
                       n_boot: int = 1000, level: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of the macro mean: each group is resampled within itself (stratified)."""
    counts = per_group(groups, correct)
    if not counts:
        return float("nan"), float("nan")
    g = np.asarray([str(x) for x in groups])
    c = np.asarray(correct, dtype=float)
    means = np.zeros(n_boot)
    for key in counts:
        x = c[g == key]
        means += x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    means /= len(counts)
    a = (1.0 - level) / 2
    return float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def chance(n_options: Sequence[int]) -> float:
    """Expected accuracy of uniform guessing: mean of 1 / (number of options).

    >>> chance([4, 4, 2])
    0.3333333333333333
    """
    n = np.asarray(n_options, dtype=float)
    return float(np.mean(1.0 / n)) if n.size else float("nan")


def constant_letter_baseline(answers: Sequence[str], groups: Sequence[str] | None = None,
                             letters: Sequence[str] = ("A", "B", "C", "D")) -> dict:
    """The best "always answer X" policy: its letter and accuracy (macro over ``groups`` when given).

    A model that beats chance but not this baseline may only have learnt the answer-position prior.

    >>> constant_letter_baseline(["A", "A", "B", "C"])
    {'letter': 'A', 'accuracy': 0.5}
    """
    best = {"letter": "", "accuracy": float("nan")}
    for letter in letters:
        ok = [str(a).strip().upper() == letter for a in answers]
        acc = summary(list(groups), ok)["overall"] if groups is not None else accuracy(ok)
        if not (acc <= best["accuracy"]):  # also replaces the initial NaN
            best = {"letter": letter, "accuracy": acc}
    return best
