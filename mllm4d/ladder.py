"""Fixed-rung numeric options (03_dataset ``numeric_mode: ladder``): every Camera Abs. Dist. question offers the
same four distances (likewise Object Abs. Dist., Object-Camera Abs. Dist.), the answer is the rung nearest the
solved value (nearest in log distance, i.e. ratio), and the options are shuffled as usual.

Why (measured 2026-12-01 on the tiny profile, docs/DATASETS.md "Text priors"): with the paper's distractors
(``numeric_mode: relative``, drawn within 25-175 % of the truth) the option set itself points at the answer.
Every option must lie within [0.25, 1.75] x truth, which a text-only rule inverts (38-46 % on the tiny bench,
chance 25 %), and the set is centred on the truth, so a prior on typical magnitudes picks it too: the tiny SFT
model paired with *another clip's video* scored 50 / 50 / 40 % on cad / oad / ocad. With one fixed set per
subtask the options carry no information about the answer; with rungs fitted to the train split's quartiles
(:func:`fit`) and the benchmark balanced over rungs (``selection.answer_label``) a text-only model is at 25 %.

Deviation from the paper (distractors "at random within 25-175 %"): the tiny profile's choice; the paper profile
keeps ``relative``. The question texts ("approximately how far…") are unchanged: the nearest option is the
answer. A value within ``margin`` (relative) of a cell boundary (the geometric mean of two neighbouring rungs)
is ambiguous under curation noise and is not asked (:func:`unambiguous`; counted by 03_dataset as
``ladder_ambiguous``).

Units: metres; rungs ascending, distinct on the option grid (10^-decimals).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .solver import NUMERIC   # the numeric subtasks: cad, oad, ocad



def check(ladders: Mapping[str, Sequence[float]], decimals: int) -> None:
    """Raise ValueError naming the subtask whose rungs are not 4 ascending, positive values distinct on the grid."""
    for sub in sorted(NUMERIC):
        r = ladders.get(sub)
        if r is None or len(r) != 4:
            raise ValueError(f"ladder {sub!r}: need 4 rungs (metres), got {r!r}")
        g = np.rint(np.asarray(r, float) * 10.0 ** decimals)
        if g[0] < 1 or (np.diff(g) <= 0).any():
            raise ValueError(f"ladder {sub!r}: rungs must be ascending and distinct at {decimals} decimal(s), "
                             f"got {list(r)}")


def rung(values: np.ndarray, rungs: Sequence[float]) -> np.ndarray:
    """(N,) int: index of the rung nearest each value (metres) in log distance."""
    lv = np.log(np.maximum(np.asarray(values, float), 1e-9))
    return np.abs(lv[:, None] - np.log(np.asarray(rungs, float))[None]).argmin(axis=1)


def unambiguous(values: np.ndarray, rungs: Sequence[float], margin: float) -> np.ndarray:
    """(N,) bool: the value is farther than ``margin`` (relative) from every cell boundary."""
    r = np.log(np.asarray(rungs, float))
    edges = (r[1:] + r[:-1]) / 2
    lv = np.log(np.maximum(np.asarray(values, float), 1e-9))
    return (np.abs(lv[:, None] - edges[None]) > np.log1p(margin)).all(axis=1)


def options(values: np.ndarray, subtasks: Sequence[str], ladders: Mapping[str, Sequence[float]],
            decimals: int) -> tuple[np.ndarray, np.ndarray]:
    """Grid options like ``qa.numeric_options``: (grid (N,4) int64 in units of 10^-decimals with the answer rung
    in column 0 and the other rungs ascending after it; rank (N,) int, the answer rung's index)."""
    v = np.asarray(values, float)
    sub = np.asarray(subtasks, object)
    grid, rank = np.zeros((len(v), 4), np.int64), np.zeros(len(v), np.int64)
    for s in set(sub.tolist()):
        m = sub == s
        g = np.rint(np.asarray(ladders[s], float) * 10.0 ** decimals).astype(np.int64)
        k = rung(v[m], ladders[s])
        rest = np.array([[j for j in range(4) if j != a] for a in range(4)], np.int64)[k]
        grid[m] = np.column_stack([g[k], g[rest]])
        rank[m] = k
    return grid, rank


def fit(values_by_subtask: Mapping[str, Sequence[float]], decimals: int) -> dict[str, list[float]]:
    """Rungs whose cell boundaries (geometric means of neighbours) are the quartiles q1, q2, q3 of each
    subtask's solved values (use the *train* split only), so each rung holds a quarter of them: r1, r2 sit
    log-symmetrically around q2 (half the narrower of log q2/q1, log q3/q2 away), r0 = q1²/r1, r3 = q3²/r2.
    Rounded to the grid and nudged apart one grid step where rounding merged two. ``benchmarks/fit_ladders.py``
    prints them for a params file."""
    out = {}
    step = 10.0 ** -decimals
    for sub in sorted(NUMERIC):
        q1, q2, q3 = np.log(np.quantile(np.asarray(values_by_subtask[sub], float), (0.25, 0.5, 0.75)))
        d = 0.5 * min(q2 - q1, q3 - q2)
        r = np.exp([2 * q1 - (q2 - d), q2 - d, q2 + d, 2 * q3 - (q2 + d)])
        g = np.round(r / step).astype(np.int64)
        g[0] = max(g[0], 1)
        for k in range(1, 4):
            g[k] = max(g[k], g[k - 1] + 1)
        out[sub] = [round(float(x) * step, decimals) for x in g]
    return out
