"""QA templating: solver ``Relation`` -> 4-option multiple-choice row (paper §3 p.4, §8.2; paper.md §1.3 and §2).

A row follows docs/FORMATS.md minus ``frames`` (the dataset stage adds them)::

    {"id", "clip_id", "subtask", "variant", "object", "question", "options": {"A".."D"}, "answer",
     "frame_i", "frame_j", "solution": {"answer", "camera_center": [c_i|None, c_j|None], "object_center": [...]}}

``variant`` ("" / "lateral" / "longitudinal") and ``object`` (index, −1 for camera questions) are extra keys the
cold-start writer (``cot.py``) and the dataset balancer use.

Questions. Frames are named "frame k of N" with N = T − 1 (paper Figs. 10, 12-14: "frame 0 and frame 26 of 31");
objects by their description (``obj_descriptions``, e.g. "the woman in the red jacket"); three or four
paraphrases per scenario, the first being the paper's template (§2) where the paper gives one.

Options.
- Numeric (cad/oad/ocad): metres with ``decimals`` decimals (1, as the paper's examples), no unit. Three
  distractors on the display grid (step 10^−decimals) inside [distractor_lo, distractor_hi]·v (paper: 25-175 %),
  at least gap = max(min_gap_rel·v, min_gap_abs) from the truth and from each other (unpublished; the tiny profile
  uses 20 % and 0.1 m — the paper's examples, Figs. 1, 12-14, keep 21-33 %). Deviation: the paper draws distractors "at random" in the range; i.i.d. draws would put the truth at the
  2nd/3rd rank of the sorted options 75 % of the time, a shortcut a model learns. We first draw the truth's rank
  uniformly among the ranks the range and gap allow, then the distractors below/above it uniformly with the
  minimum spacing (sorted uniform draws shifted by the gap, so every valid set is reachable; exact set
  probabilities are not uniform).
- crd: the answer plus three of the five other directions, never one in ``Relation.exclude`` (a secondary axis
  the camera also clearly moved along, which would make a second option true).
- ocrd / ocrdir: the three labels of the scenario (closer/farther/not moving; left/right/not moving) plus
  "Cannot be determined from the video" (a fourth, mutually exclusive option; the paper's label set and fourth
  option are unpublished, paper.md §7 item 2).
- ``option_order="shuffled"`` permutes the four options uniformly (answer letters uniform, paper §3 "options are
  shuffled"); ``"canonical"`` keeps numeric options ascending and categorical ones in label-set order (a
  curriculum lever; letters are then not uniform).

Solution centres are rounded to 4 decimals (paper Fig. 17 prints 4). Everything random comes from the ``rng``
argument, drawn in one batch per call, so rows are deterministic given the rng state.
"""
from __future__ import annotations

import dataclasses
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .prompts import LETTERS
from .solver import CRD_LABELS, LABELS, NUMERIC, Relation, no_gc

CANNOT = "Cannot be determined from the video"
OPTION_TEXT: dict[str, str] = {"right": "Right", "left": "Left", "down": "Down", "up": "Up", "forward": "Forward",
                               "backward": "Backward", "closer": "Closer", "farther": "Farther",
                               "not moving": "Not moving"}
_CAM = "the camera (or the observer filming)"
TEMPLATES: dict[str, tuple[str, ...]] = {
    "cad": (
        "Approximately how far (in meters) did the camera move between frame {i} and frame {j} of {n}?",
        "What is the approximate straight-line distance (in meters) between the camera's positions in frame {i} "
        "and frame {j} of {n}?",
        "Between frame {i} and frame {j} of {n}, roughly how many meters did the camera's position change?",
    ),
    "crd": (
        "Between frame {i} and frame {j} of {n}, what was the main consistent direction of the camera's "
        "translation relative to its starting pose?",
        "Relative to its orientation in frame {i}, in which direction did the camera mainly move between frame "
        "{i} and frame {j} of {n}?",
        "From frame {i} to frame {j} of {n}, which direction best describes the camera's primary movement, as "
        "seen from its pose in frame {i}?",
    ),
    "oad": (
        "Approximately how far (in meters) did {obj} move between frame {i} and frame {j} of {n}?",
        "What is the approximate distance (in meters) between the positions of {obj} in frame {i} and in frame "
        "{j} of {n}?",
        "From frame {i} to frame {j} of {n}, roughly how many meters did {obj} travel in a straight line?",
    ),
    "ocad": (
        "What is the approximate distance (in meters) between " + _CAM + " in frame {i} and the nearest point of "
        "{obj} in frame {j} of {n}?",
        "Approximately how far (in meters) was the nearest point of {obj} in frame {j} of {n} from the position "
        "of the camera in frame {i}?",
        "Roughly how many meters separate the camera's position in frame {i} from the closest point of {obj} in "
        "frame {j} of {n}?",
    ),
    "ocrd": (
        "During the sequence between frame {i} and frame {j} of {n}, is the distance between {obj} and " + _CAM +
        " getting closer or farther away?",
        "From frame {i} to frame {j} of {n}, does {obj} get closer to or farther from the camera?",
        "Between frame {i} and frame {j} of {n}, how does the distance between the camera and {obj} change?",
    ),
    "ocrdir-lateral": (
        "Between frame {i} and frame {j} of {n}, is {obj} getting left or right from the camera, relative to "
        "the camera's position at the start?",
        "Relative to the camera's pose in frame {i}, does {obj} move to the left or to the right by frame {j} "
        "of {n}?",
        "Seen from where the camera was in frame {i}, in which sideways direction does {obj} move between frame "
        "{i} and frame {j} of {n}?",
    ),
    "ocrdir-longitudinal": (
        "Between frame {i} and frame {j} of {n}, is {obj} getting closer or farther away from the camera, "
        "relative to the camera's position at the start?",
        "Relative to the camera's pose in frame {i}, does {obj} move closer or farther away along the viewing "
        "direction by frame {j} of {n}?",
        "Along the camera's viewing direction in frame {i}, does {obj} approach or recede between frame {i} and "
        "frame {j} of {n}?",
    ),
}
_NCOLS = 13  # random numbers per item: template 1, rank 1, distractor draws 3, shuffle 4, crd pool 4


@dataclass(frozen=True)
class QAConfig:
    """Option construction (the 02_solver / 03_dataset notebooks' parameters set it)."""

    option_order: str        # "shuffled" | "canonical"
    distractor_lo: float     # numeric distractors within [lo, hi] × truth (paper: 0.25, 1.75)
    distractor_hi: float
    min_gap_rel: float       # minimum gap between numeric options, relative to the truth
    min_gap_abs: float       # … and in metres
    decimals: int            # rounding of numeric options

    def __post_init__(self) -> None:
        if self.option_order not in ("shuffled", "canonical"):
            raise ValueError(f"QAConfig.option_order must be 'shuffled' or 'canonical', got {self.option_order!r}")
        if not 0 < self.distractor_lo < 1 < self.distractor_hi:
            raise ValueError("QAConfig: need 0 < distractor_lo < 1 < distractor_hi")


def config_from(params: Any) -> QAConfig:
    """QAConfig from any object or mapping holding (at least) its field names, e.g. a notebook's params."""
    get = params.get if isinstance(params, dict) else lambda k: getattr(params, k)
    return QAConfig(**{f.name: get(f.name) for f in dataclasses.fields(QAConfig)})


def numeric_options(values: np.ndarray, u: np.ndarray, cfg: QAConfig) -> tuple[np.ndarray, np.ndarray]:
    """Grid options for truths ``values`` (N,) metres, from uniforms ``u`` (N,4) (rank 1 + draws 3).

    Returns (grid (N,4) int64, truth in column 0, in units of 10^−decimals; rank (N,) int, the truth's position
    among the sorted options). Where the gap leaves no valid set it is relaxed one grid step at a time (e.g. v =
    0.501 m, gap 0.1002 m → 2 steps → 1 step), so options are then at least one step apart. Raises ValueError naming the first value for which no valid set exists (the solver's
    minimum magnitudes keep v ≥ 0.3 m, feasible at 1 decimal; infeasible below about 0.2 m).
    """
    v = np.asarray(values, np.float64)
    s = 10.0 ** -cfg.decimals
    t = np.maximum(np.rint(v / s), 1).astype(np.int64)
    glo = np.maximum(np.ceil(cfg.distractor_lo * v / s - 1e-9), 1).astype(np.int64)
    ghi = np.floor(cfg.distractor_hi * v / s + 1e-9).astype(np.int64)
    k = np.maximum(np.ceil(np.maximum(cfg.min_gap_rel * v, cfg.min_gap_abs) / s - 1e-9), 1).astype(np.int64)
    r = np.arange(4)
    while True:  # a gap just above a grid step can leave no room: relax it one step at a time (rare, small v)
        nb = np.maximum(t - k - glo + 1, 0)                   # grid points in [glo, t − k]
        na = np.maximum(ghi - t - k + 1, 0)                   # grid points in [t + k, ghi]
        capb = np.where(nb > 0, (nb - 1) // k + 1, 0)         # most points with spacing ≥ k that fit below
        capa = np.where(na > 0, (na - 1) // k + 1, 0)
        feas = (r[None] <= capb[:, None]) & ((3 - r)[None] <= capa[:, None])
        bad = ~feas.any(axis=1)
        if not (bad & (k > 1)).any():
            break
        k = np.where(bad & (k > 1), k - 1, k)
    if bad.any():
        raise ValueError(f"no 4 distinct options at {cfg.decimals} decimal(s) for value {v[bad][0]:.3f} m")
    pick = np.floor(u[:, 0] * feas.sum(axis=1)).astype(np.int64)
    b = np.argmax(np.cumsum(feas, axis=1) > pick[:, None], axis=1)   # distractors below the truth
    slot = np.arange(3)
    is_b = slot[None] < b[:, None]
    span = np.where(is_b, (nb - (b - 1) * k)[:, None], (na - (2 - b) * k)[:, None])
    y = np.floor(u[:, 1:4] * np.maximum(span, 1)).astype(np.int64)
    big = np.iinfo(np.int64).max // 4
    yb = np.sort(np.where(is_b, y, big), axis=1)              # first b entries: sorted draws below
    ya = np.sort(np.where(is_b, big, y), axis=1)              # first 3 − b entries: sorted draws above
    below = glo[:, None] + yb + slot[None] * k[:, None]
    above = (t + k)[:, None] + ya + slot[None] * k[:, None]
    above = np.take_along_axis(above, np.clip(slot[None] - b[:, None], 0, 2), axis=1)
    return np.concatenate([t[:, None], np.where(is_b, below, above)], axis=1), b


def _fixed_options(key: str, label: str) -> tuple[list[str], list[int]]:
    """ocrd/ocrdir: texts (answer first) and canonical sort keys: the 3 labels in label-set order, then CANNOT."""
    labels = LABELS[key]
    rest = [l for l in labels if l != label]
    return [OPTION_TEXT[l] for l in [label] + rest] + [CANNOT], [labels.index(l) for l in [label] + rest] + [3]


_FIXED = {(k, l): _fixed_options(k, l) for k in LABELS if k != "crd" for l in LABELS[k]}


def _crd_options(rel: Relation, u_pool: np.ndarray) -> tuple[list[str], list[int]]:
    """crd: the answer plus 3 random non-excluded directions (texts, canonical keys = label-set order)."""
    pool = [l for l in CRD_LABELS if l != rel.label and l not in rel.exclude]
    labels = [rel.label] + [pool[q] for q in np.argsort(u_pool[:len(pool)])[:3]]
    return [OPTION_TEXT[l] for l in labels], [CRD_LABELS.index(l) for l in labels]


def descriptions(meta: Any) -> list[str]:
    """How questions name each object: its description (else its name), with "the " prefixed unless it
    already starts with an article (paper: "the woman in the red jacket and black pants")."""
    out = []
    for m, name in enumerate(meta.obj_names):
        d = (meta.obj_descriptions[m] if m < len(meta.obj_descriptions) else "") or name
        out.append(d if d.lower().startswith(("the ", "a ", "an ")) else f"the {d}")
    return out


def _rows(rels: Sequence[Relation], frames: Sequence[int], descs: Sequence[Sequence[str]], u: np.ndarray,
          cfg: QAConfig, ids: Sequence[str]) -> list[dict]:
    """Rows for ``rels``; relation q's clip has ``frames[q]`` frames and object descriptions ``descs[q]``;
    ``u`` (N, _NCOLS) uniforms. Vectorised where it pays (numeric options, permutations); one loop builds dicts."""
    N = len(rels)
    num = np.fromiter((r.value is not None for r in rels), bool, N)
    grid = np.zeros((N, 4), np.int64)
    if num.any():
        grid[num] = numeric_options(np.fromiter((r.value for r in rels if r.value is not None), float),
                                    u[num, 1:5], cfg)[0]
    if cfg.option_order == "shuffled":
        perm = np.argsort(u[:, 5:9], axis=1)
    else:
        perm = np.argsort(grid, axis=1, kind="stable")         # numeric rows; categorical ones re-sorted below
    u0 = u[:, 0].tolist()
    step, dec = 10.0 ** -cfg.decimals, cfg.decimals
    fmt = f"{{:.{dec}f}}".format
    values = (grid * step).tolist()
    perms = perm.tolist()
    rows = []
    for q, rel in enumerate(rels):
        key = f"{rel.subtask}-{rel.variant}" if rel.variant else rel.subtask
        if num[q]:
            texts = [fmt(x) for x in values[q]]
            pq = perms[q]
        else:
            texts, canon = _crd_options(rel, u[q, 9:13]) if key == "crd" else _FIXED[key, rel.label]
            pq = perms[q] if cfg.option_order == "shuffled" else sorted(range(4), key=canon.__getitem__)
        answer = LETTERS[pq.index(0)]
        tmpl = TEMPLATES[key]
        question = tmpl[int(u0[q] * len(tmpl))].format(i=rel.frame_i, j=rel.frame_j, n=frames[q] - 1,
                                                       obj=descs[q][rel.obj] if rel.obj >= 0 else "")
        cam, obj = rel.camera_center, rel.object_center
        rows.append({"id": ids[q], "clip_id": rel.clip_id, "subtask": rel.subtask, "variant": rel.variant,
                     "object": rel.obj, "question": question,
                     "options": {"A": texts[pq[0]], "B": texts[pq[1]], "C": texts[pq[2]], "D": texts[pq[3]]},
                     "answer": answer, "frame_i": rel.frame_i, "frame_j": rel.frame_j,
                     "solution": {"answer": answer,
                                  "camera_center": [None if c is None else list(c) for c in cam],
                                  "object_center": [None if c is None else list(c) for c in obj]}})
    return rows


def make_item(rel: Relation, meta: Any, rng: np.random.Generator, cfg: QAConfig, index: int = 0) -> dict:
    """One row for ``rel`` (id ``<clip>-<scenario>-<index:03d>``); ``meta`` supplies T and the description."""
    return _rows([rel], [meta.num_frames], [descriptions(meta)], rng.random((1, _NCOLS)), cfg,
                 [f"{rel.clip_id}-{rel.scenario}-{index:03d}"])[0]


def select(relations: Sequence[Relation], rng: np.random.Generator, cap: int | None) -> list[Relation]:
    """At most ``cap`` relations, balanced across scenarios: round-robin over scenarios, random within each
    (draws nothing when no cap applies)."""
    if cap is None or len(relations) <= cap:
        return list(relations)
    return _select(relations, rng.random(len(relations)), cap)


def _select(relations: Sequence[Relation], keys: np.ndarray, cap: int | None) -> list[Relation]:
    """``select`` with the uniforms given: ``keys`` (one per relation) fix the random order."""
    if cap is None or len(relations) <= cap:
        return list(relations)
    seen: dict[str, int] = defaultdict(int)
    rank = {}
    for q in np.argsort(keys).tolist():
        key = relations[q].scenario
        rank[q] = (seen[key], keys[q])
        seen[key] += 1
    return [relations[q] for q in sorted(rank, key=rank.__getitem__)[:cap]]


def _ids(rels: Sequence[Relation]) -> list[str]:
    seen: dict[str, int] = defaultdict(int)
    out = []
    for r in rels:
        key = f"{r.subtask}-{r.variant}" if r.variant else r.subtask
        out.append(f"{r.clip_id}-{key}-{seen[key]:03d}")
        seen[key] += 1
    return out


def make_items(relations: Sequence[Relation], meta: Any, rng: np.random.Generator, cfg: QAConfig,
               cap_per_clip: int | None = None) -> list[dict]:
    """Rows for one clip's relations, capped at ``cap_per_clip`` (balanced across scenarios, see ``select``).

    Ids are ``<clip>-<scenario>-<k:03d>`` with k counting per scenario within the clip, so they are unique in a
    dataset as long as clip ids are.
    """
    return make_items_batch([relations], [meta], rng, cfg, cap_per_clip)


def make_items_batch(relations: Sequence[Sequence[Relation]], metas: Sequence[Any], rng: np.random.Generator,
                     cfg: QAConfig, cap_per_clip: int | None = None) -> list[dict]:
    """``make_items`` over many clips at once (``relations[b]`` belongs to ``metas[b]``; the bulk fast path:
    two random draws in total instead of two per clip). Rows come out clip by clip."""
    keys = rng.random(sum(len(r) for r in relations))
    rels, frames, descs, ids, off = [], [], [], [], 0
    for group, meta in zip(relations, metas):
        chosen = _select(group, keys[off:off + len(group)], cap_per_clip)
        off += len(group)
        if chosen:
            rels += chosen
            frames += [meta.num_frames] * len(chosen)
            descs += [descriptions(meta)] * len(chosen)
            ids += _ids(chosen)
    if not rels:
        return []
    with no_gc():
        return _rows(rels, frames, descs, rng.random((len(rels), _NCOLS)), cfg, ids)
