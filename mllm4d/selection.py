"""Which items go into each split: SFT slices, RFT mix, balanced benchmark, answer-label balancing (paper §3,
Figs. 7-8; used by :mod:`mllm4d.dataset`).

Items are ``{"row": row, "motion": {"camera": m, "object": m | None}}`` (``dataset.clip_items``). Every draw comes
from the ``rng`` argument, so a selection is deterministic given the generator state. Pure functions, no I/O.
"""
from __future__ import annotations

import collections
from typing import Any

import numpy as np

from . import cot, prompts, solver


def take(pool: list[dict], n: int, rng: np.random.Generator, balance: bool = False) -> list[dict]:
    """``min(n, len(pool))`` items drawn without replacement, in draw order; with ``balance``, in
    :func:`label_order` (answer labels as equal as the pool allows)."""
    idx = rng.permutation(len(pool))
    picked = [pool[k] for k in idx]
    return (label_order(picked) if balance else picked)[:n]


WINDOW_BALANCED = ("ocrd", "ocrdir")   # subtasks balanced within short/long question windows (answer_label)


def answer_label(row: dict) -> str:
    """The answer's label for balancing: ``<variant>:<option text>`` for categorical rows,
    ``rank:<k>`` for numeric ones (k: the answer's position among the options sorted by value; in ladder mode,
    its rung); for the object subtasks in :data:`WINDOW_BALANCED` also the window, ``|short`` / ``|long`` (the
    question's frame gap j − i below / at least half the clip).

    Why ranks: ``qa.numeric_options`` draws the rank uniformly among those the 25-175 % range and the gaps
    allow, but small values cannot have three options below them, so ranks stay skewed (measured on the tiny
    bench before balancing: Camera Abs. Dist. ranks 0-3 held 4 / 12 / 18 / 8 of 42 answers). Why the window:
    the frame numbers are in the question, and more frames mean more motion (fewer "Not moving", larger
    distances); balanced within each window, the gap says nothing about the answer (a lookup of the majority
    label per gap scored 43 % on the tiny bench's Object-Camera Rel. Dist. before, 3 labels). Not for the camera
    and numeric subtasks: their rare (answer, window) pairs (Up in a short window, the top rung in a short
    window) would shrink the tiny bench from 80 to 24 items per subtask; their gap prior stays (measured by
    ``benchmarks/text_prior.py``, docs/DATASETS.md)."""
    if row["subtask"] in solver.NUMERIC:
        vals = sorted(float(v) for v in row["options"].values())
        label = f"rank:{vals.index(float(row['options'][row['answer']]))}"
    else:
        label = f"{row.get('variant', '')}:{row['options'][row['answer']]}"
    if row["subtask"] not in WINDOW_BALANCED:
        return label
    n = len(row["frames"]) - 1 if row.get("frames") else 31
    return f"{label}|{'long' if 2 * (row['frame_j'] - row['frame_i']) >= n else 'short'}"


def label_order(items: list[dict]) -> list[dict]:
    """``items`` re-ordered round-robin over answer labels (first-seen label order, draw order within a label):
    any prefix of length ``k · L`` holds ``k`` items of each of the ``L`` labels while every label lasts.

    Why: the synthetic clips' natural label mix is skewed (about 70 % of object-camera items are "Not moving":
    most objects are static), so a text-only prior would score far above chance on ocrd/ocrdir. Balancing
    puts that prior at chance; the paper's label mix is unpublished (deviation noted in docs/DATASETS.md).

    >>> rows = [{"subtask": "ocrd", "options": {"A": t}, "answer": "A", "frame_i": 0, "frame_j": 20} for t in "xxxy"]
    >>> [r["options"]["A"] for r in label_order(rows)]
    ['x', 'y', 'x', 'x']
    """
    groups: dict[str, list[dict]] = {}
    for it in items:
        groups.setdefault(answer_label(it["row"] if "row" in it else it), []).append(it)
    out, rounds = [], max((len(g) for g in groups.values()), default=0)
    for k in range(rounds):
        out += [g[k] for g in groups.values() if k < len(g)]
    return out


def balanced_size(items: list[dict]) -> int:
    """How many items a label-balanced selection can hold: L × (count of the rarest label)."""
    counts = collections.Counter(answer_label(it["row"]) for it in items)
    return len(counts) * min(counts.values()) if counts else 0


def allocate(total: int, weights: tuple[float, ...] | list[float]) -> list[int]:
    """Largest-remainder split of ``total`` by ``weights`` (ties to the earlier entry).

    >>> allocate(10, (0.192, 0.167, 0.2, 0.192, 0.167, 0.083))
    [2, 2, 2, 2, 1, 1]
    """
    w = np.asarray(weights, float)
    if total <= 0 or w.sum() <= 0:
        return [0] * len(w)
    exact = total * w / w.sum()
    base = np.floor(exact).astype(int)
    order = sorted(range(len(w)), key=lambda k: (-(exact[k] - base[k]), k))
    for k in order[: total - int(base.sum())]:
        base[k] += 1
    return base.tolist()


def significant_motion(item: dict, min_motion_m: float) -> bool:
    """RFT filter: the camera or the queried object moves ≥ ``min_motion_m`` between the anchors."""
    m = item["motion"]
    return max(m["camera"], m["object"] or 0.0) >= min_motion_m


def select_sft(items: list[dict], per_slice: int, rng: np.random.Generator, balance: bool = False) -> list[dict]:
    """The 7 equal slices (paper Fig. 7); rows ordered by slice, then draw order (``balance``: answer labels
    round-robin within a slice, :func:`label_order`; a slice larger than the balanced part fills up with the
    commoner labels)."""
    out = []
    for key in cot.SCENARIOS:
        out += take([it for it in items if _scen(it) == key], per_slice, rng, balance)
    return out


def select_rft(items: list[dict], prefer_not: set[str], cfg: Any, rng: np.random.Generator) -> list[dict]:
    """``cfg``: any object with ``rft_items``, ``rft_mix``, ``rft_min_motion_m`` and ``balance_labels``
    (``dataset.DatasetParams``). R1-30k-style set: Fig. 8 mix over subtasks of significant-motion items, items whose id is not in
    ``prefer_not`` (the SFT items) first, SFT items only to fill a subtask's quota."""
    pool = [it for it in items if significant_motion(it, cfg.rft_min_motion_m)]
    out = []
    for sub, n in zip(prompts.SUBTASKS, allocate(cfg.rft_items, cfg.rft_mix)):
        fresh = [it for it in pool if it["row"]["subtask"] == sub and it["row"]["id"] not in prefer_not]
        reused = [it for it in pool if it["row"]["subtask"] == sub and it["row"]["id"] in prefer_not]
        out += take(fresh, n, rng, cfg.balance_labels) + take(reused, max(0, n - len(fresh)), rng, cfg.balance_labels)
    return out


def select_bench(items: list[dict], per_subtask: int, rng: np.random.Generator, balance: bool = False) -> list[dict]:
    """Six balanced subtasks: each gets min(per_subtask, smallest non-empty subtask pool) items. With
    ``balance`` a categorical subtask's pool counts only its label-balanced part (:func:`balanced_size`), so
    answer labels are equal (±1) within every subtask."""
    pools = {s: [it for it in items if it["row"]["subtask"] == s] for s in prompts.SUBTASKS}
    sizes = [balanced_size(p) if balance else len(p) for p in pools.values() if p]
    n = min([per_subtask] + sizes)
    return [it for s in prompts.SUBTASKS for it in take(pools[s], n, rng, balance)]


def _scen(item: dict) -> str:
    return cot.scenario(item["row"]["subtask"], item["row"].get("variant"))
