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
- ``numeric_mode="ladder"`` (tiny profile) replaces those distractors by four fixed rungs per subtask
  (:mod:`ladder`: the option set then says nothing about the answer; values on a cell boundary are not asked).
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
import functools
import operator
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np

from . import ladder
from .prompts import LETTERS
from .solver import CRD_LABELS, LABELS, NUMERIC, Relation, no_gc

CANNOT = "Cannot be determined from the video"
NUMERIC_MODES = ("relative", "ladder")
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
_NCOLS = 14  # random numbers per item: template 1, rank 1, distractor draws 3, shuffle 4, crd pool 5


@dataclass(frozen=True)
class QAConfig:
    """Option construction (the 02_solver / 03_dataset notebooks' parameters set it)."""

    option_order: str        # "shuffled" | "canonical"
    distractor_lo: float     # numeric distractors within [lo, hi] × truth (paper: 0.25, 1.75)
    distractor_hi: float
    min_gap_rel: float       # minimum gap between numeric options, relative to the truth
    min_gap_abs: float       # … and in metres
    decimals: int            # rounding of numeric options
    numeric_mode: str = "relative"   # "relative" (paper: distractors around the truth) | "ladder" (ladder.py)
    ladders: tuple = ()      # ladder mode: ((subtask, (r0, r1, r2, r3)), ...) metres, ascending (hashable)
    ladder_margin: float = 0.05      # ladder mode: values this close (relative) to a cell boundary are not asked

    def __post_init__(self) -> None:
        if self.numeric_mode not in NUMERIC_MODES:
            raise ValueError(f"QAConfig.numeric_mode must be one of {NUMERIC_MODES}, got {self.numeric_mode!r}")
        if self.numeric_mode == "ladder":
            ladder.check(dict(self.ladders), self.decimals)
        if self.option_order not in ("shuffled", "canonical"):
            raise ValueError(f"QAConfig.option_order must be 'shuffled' or 'canonical', got {self.option_order!r}")
        if not 0 < self.distractor_lo < 1 < self.distractor_hi:
            raise ValueError("QAConfig: need 0 < distractor_lo < 1 < distractor_hi")


def config_from(params: Any) -> QAConfig:
    """QAConfig from any object or mapping holding (at least) its required field names, e.g. a notebook's
    params; fields with a default (the numeric mode) may be missing."""
    get = params.get if isinstance(params, dict) else lambda k: getattr(params, k)
    has = params.__contains__ if isinstance(params, dict) else lambda k: hasattr(params, k)
    return QAConfig(**{f.name: get(f.name) for f in dataclasses.fields(QAConfig)
                       if has(f.name) or f.default is dataclasses.MISSING})


def askable(relations: Sequence[Relation], cfg: QAConfig) -> Sequence[Relation]:
    """``relations`` minus the numeric ones too close to a ladder cell boundary (ladder mode; else as given)."""
    if cfg.numeric_mode != "ladder":
        return relations
    keep = np.ones(len(relations), bool)
    for sub, rungs in cfg.ladders:  # one vectorised test per subtask (bulk datasets hold millions of relations)
        k = np.fromiter((q for q, r in enumerate(relations) if r.subtask == sub and r.value is not None), np.int64)
        if len(k):
            keep[k] = ladder.unambiguous(np.array([relations[q].value for q in k], float), rungs, cfg.ladder_margin)
    return [r for r, ok in zip(relations, keep.tolist()) if ok]


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


_CAT_TEXTS: tuple[str, ...] = tuple(OPTION_TEXT.values()) + (CANNOT,)   # categorical texts; "text ids" index this
_CRD_TEXT = np.array([_CAT_TEXTS.index(OPTION_TEXT[l]) for l in CRD_LABELS])    # CRD_LABELS index -> text id
_LETTERS = np.array(LETTERS, object)
_LAYOUT_KEY = operator.itemgetter(1, 2, 7, 11)    # Relation (subtask, variant, label, exclude)
_SCENARIO_KEY = operator.itemgetter(1, 2)        # Relation (subtask, variant)


class _Layout(NamedTuple):
    """The row-independent part of a relation's options: what (subtask, variant, label, exclude) fixes."""

    templates: tuple[str, ...]    # the scenario's question paraphrases
    texts: tuple[int, ...]        # 4 text ids, answer first (numeric: all −1; crd: answer, then −1 = drawn per row)
    canon: tuple[int, ...]        # canonical sort keys: label-set order, CANNOT last (numeric: the grid, per row)
    pool: tuple[int, ...]         # crd: the allowed distractors (CRD_LABELS indices, label-set order), −1 padded


@functools.lru_cache(maxsize=None)
def _layout(subtask: str, variant: str, label: str | None, exclude: tuple) -> _Layout:
    """Options of a relation as far as they do not depend on its random draws (cached: a handful of distinct
    keys occur). ocrd/ocrdir: the answer, the scenario's other two labels in label-set order, then CANNOT. crd:
    the answer plus a pool of directions that are neither the answer nor in ``exclude`` (3 drawn per row)."""
    key = f"{subtask}-{variant}" if variant else subtask
    none = (-1,) * 4
    if label is None:                                  # numeric: texts and canonical keys come from the grid
        return _Layout(TEMPLATES[key], none, none, (-1,) * 5)
    if key == "crd":
        pool = [k for k, l in enumerate(CRD_LABELS) if l != label and l not in exclude]
        if len(pool) < 3:
            raise ValueError(f"crd: fewer than 3 distractors remain for {label!r} excluding {exclude}")
        a = CRD_LABELS.index(label)
        return _Layout(TEMPLATES[key], (int(_CRD_TEXT[a]), -1, -1, -1), (a, -1, -1, -1),
                       tuple(pool) + (-1,) * (5 - len(pool)))
    labels = LABELS[key]
    order = [label] + [l for l in labels if l != label]
    return _Layout(TEMPLATES[key], tuple(_CAT_TEXTS.index(OPTION_TEXT[l]) for l in order) + (len(_CAT_TEXTS) - 1,),
                   tuple(labels.index(l) for l in order) + (3,), (-1,) * 5)


def descriptions(meta: Any) -> list[str]:
    """How questions name each object: its description (else its name), with "the " prefixed unless it
    already starts with an article (paper: "the woman in the red jacket and black pants")."""
    out = []
    for m, name in enumerate(meta.obj_names):
        d = (meta.obj_descriptions[m] if m < len(meta.obj_descriptions) else "") or name
        out.append(d if d.lower().startswith(("the ", "a ", "an ")) else f"the {d}")
    return out


def _options(rels: Sequence[Relation], u: np.ndarray, cfg: QAConfig) -> tuple[list, list, list]:
    """Per relation: its 4 option texts in A-D order, its answer letter and its question template; ``u`` (N,
    _NCOLS) uniforms (template 0, numeric rank + draws 1-4, shuffle 5-8, crd distractors 9-13).

    Vectorised over all rows: option texts are ids into one vocabulary (categorical texts, then each distinct
    numeric grid value formatted once), answer first; crd rows draw 3 distractors from their pool (every pool
    entry has its own uniform, the 3 smallest win: until 2026-12 only 4 uniforms were drawn, so the 5th direction of
    a full pool could never be a distractor, a text prior on the answer); the order is ``argsort`` of the shuffle uniforms or of the
    canonical keys. Raises ValueError if a numeric value admits no four options (``numeric_options``).
    """
    N = len(rels)
    codes: dict[tuple, int] = {}
    lid = np.fromiter((codes.setdefault(k, len(codes)) for k in map(_LAYOUT_KEY, rels)), np.int64, N)
    lays = [_layout(*k) for k in codes]
    texts = np.array([l.texts for l in lays], np.int64)[lid]
    canon = np.array([l.canon for l in lays], np.int64)[lid]
    values = [r.value for r in rels]
    num = np.fromiter((v is not None for v in values), bool, N)
    vocab = list(_CAT_TEXTS)
    if num.any():
        vals = np.fromiter((v for v in values if v is not None), float)
        if cfg.numeric_mode == "ladder":
            grid = ladder.options(vals, [r.subtask for r in rels if r.value is not None], dict(cfg.ladders),
                                  cfg.decimals)[0]
        else:
            grid = numeric_options(vals, u[num, 1:5], cfg)[0]
        uniq, inv = np.unique(grid, return_inverse=True)
        fmt = f"{{:.{cfg.decimals}f}}".format
        vocab += [fmt(x) for x in (uniq * 10.0 ** -cfg.decimals).tolist()]
        texts[num], canon[num] = len(_CAT_TEXTS) + inv.reshape(grid.shape), grid
    if (texts[~num, 0] < 0).any():
        raise ValueError("a categorical relation has no label")
    crd = ~num & (texts[:, 1] < 0)
    if crd.any():  # one uniform per pool entry (up to 5): every non-excluded direction can be a distractor
        pool = np.array([l.pool for l in lays], np.int64)[lid[crd], :5]
        pick = np.take_along_axis(pool, np.argsort(np.where(pool >= 0, u[crd, 9:14], np.inf), axis=1,
                                                   kind="stable")[:, :3], axis=1)
        texts[crd, 1:], canon[crd, 1:] = _CRD_TEXT[pick], pick
    if cfg.option_order == "shuffled":
        perm = np.argsort(u[:, 5:9], axis=1)
    else:
        perm = np.argsort(canon, axis=1, kind="stable")
    options = np.array(vocab, object)[np.take_along_axis(texts, perm, axis=1)].tolist()
    answers = _LETTERS[np.argmax(perm == 0, axis=1)].tolist()
    ntmpl = np.array([len(l.templates) for l in lays], np.int64)[lid]
    which = (u[:, 0] * ntmpl).astype(np.int64).tolist()
    return options, answers, [lays[l].templates[t] for l, t in zip(lid.tolist(), which)]


def _rows(rels: Sequence[Relation], frames: Sequence[int], descs: Sequence[Sequence[str]], u: np.ndarray,
          cfg: QAConfig, ids: Sequence[str]) -> list[dict]:
    """Rows for ``rels``; relation q's clip has ``frames[q]`` frames and object descriptions ``descs[q]``;
    ``u`` (N, _NCOLS) uniforms. Everything but the row dicts is vectorised (``_options``); one loop builds them."""
    options, answers, templates = _options(rels, u, cfg)
    rows = []
    for rel, rid, n, desc, tmpl, (a, b, c, d), ans in zip(rels, ids, frames, descs, templates, options, answers):
        (ci, cj), (oi, oj) = rel.camera_center, rel.object_center
        rows.append({"id": rid, "clip_id": rel.clip_id, "subtask": rel.subtask, "variant": rel.variant,
                     "object": rel.obj, "question": tmpl.format(i=rel.frame_i, j=rel.frame_j, n=n - 1,
                                                                obj=desc[rel.obj] if rel.obj >= 0 else ""),
                     "options": {"A": a, "B": b, "C": c, "D": d}, "answer": ans,
                     "frame_i": rel.frame_i, "frame_j": rel.frame_j,
                     "solution": {
                         "answer": ans,
                         "camera_center": [None if ci is None else list(ci), None if cj is None else list(cj)],
                         "object_center": [None if oi is None else list(oi), None if oj is None else list(oj)]}})
    return rows


def make_item(rel: Relation, meta: Any, rng: np.random.Generator, cfg: QAConfig, index: int = 0) -> dict:
    """One row for ``rel`` (id ``<clip>-<scenario>-<index:03d>``); ``meta`` supplies T and the description.
    Raises ValueError for a relation :func:`askable` drops (a value on a ladder cell boundary)."""
    if not askable([rel], cfg):
        raise ValueError(f"{rel.clip_id}: {rel.subtask} value {rel.value:.3f} m is within the ladder margin of a "
                         f"cell boundary")
    return _rows([rel], [meta.num_frames], [descriptions(meta)], rng.random((1, _NCOLS)), cfg,
                 [f"{rel.clip_id}-{rel.scenario}-{index:03d}"])[0]


def _n_chosen(n: int, cap: int | None) -> int:
    """How many of a clip's ``n`` relations ``select`` keeps under ``cap`` (independent of the draws)."""
    return n if cap is None or n <= cap else len(range(n)[:cap])


def _cumcount(groups: np.ndarray) -> np.ndarray:
    """For each entry, how many earlier entries share its group (int codes)."""
    o = np.argsort(groups, kind="stable")
    g = groups[o]
    first = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    out = np.empty(len(g), np.int64)
    out[o] = np.arange(len(g)) - np.repeat(first, np.diff(np.r_[first, len(g)]))
    return out


def _choose(relations: Sequence[Sequence[Relation]], keys: np.ndarray,
            caps: Sequence[int | None]) -> tuple[list[Relation], list[str], list[int]]:
    """``select`` for every clip at once, with the uniforms given (``keys``, one per relation, clip after clip).

    A capped clip's relations are ordered by (rank of its key within its scenario, key), i.e. round-robin over
    scenarios in random order, and cut at the cap; an uncapped clip keeps its order. Returns the chosen
    relations (clip after clip), their ids ``<clip>-<scenario>-<k:03d>`` (k counting per scenario within the
    clip) and the number chosen per clip.
    """
    L = np.array([len(g) for g in relations], np.int64)
    n, flat = [_n_chosen(a, c) for a, c in zip(L.tolist(), caps)], [r for g in relations for r in g]
    if not flat:
        return [], [], n
    codes: dict[tuple, int] = {}
    scen = np.fromiter((codes.setdefault(k, len(codes)) for k in map(_SCENARIO_KEY, flat)), np.int64, len(flat))
    clip = np.repeat(np.arange(len(L)), L)
    local = np.arange(len(flat)) - np.repeat(np.cumsum(L) - L, L)
    capped = (np.array(n) < L)[clip]
    group = clip * len(codes) + scen
    o = np.argsort(keys, kind="stable")
    rank = np.empty(len(flat), np.int64)
    rank[o] = _cumcount(group[o])                                   # rank of the key within (clip, scenario)
    order = np.lexsort((np.where(capped, keys, local), np.where(capped, rank, 0), clip))
    keep = order[local < np.repeat(n, L)]                           # order is grouped by clip: local = position
    names = [f"{s}-{v}" if v else s for s, v in codes]
    ids = [f"{flat[q].clip_id}-{names[s]}-{k:03d}"
           for q, s, k in zip(keep.tolist(), scen[keep].tolist(), _cumcount(group[keep]).tolist())]
    return [flat[q] for q in keep.tolist()], ids, n


def select(relations: Sequence[Relation], rng: np.random.Generator, cap: int | None) -> list[Relation]:
    """At most ``cap`` relations, balanced across scenarios: round-robin over scenarios, random within each
    (draws nothing when no cap applies)."""
    if cap is None or len(relations) <= cap:
        return list(relations)
    return _choose([relations], rng.random(len(relations)), [cap])[0]


def _per_clip(metas: Sequence[Any], n: Sequence[int]) -> tuple[list[int], list[list[str]]]:
    """Frame count and object descriptions of each chosen row (``n[b]`` rows of clip ``metas[b]``)."""
    frames, descs = [], []
    for meta, k in zip(metas, n):
        if k:
            frames += [meta.num_frames] * k
            descs += [descriptions(meta)] * k
    return frames, descs


def make_items(relations: Sequence[Relation], meta: Any, rng: np.random.Generator, cfg: QAConfig,
               cap_per_clip: int | None = None) -> list[dict]:
    """Rows for one clip's relations, capped at ``cap_per_clip`` (balanced across scenarios, see ``select``).

    Ids are ``<clip>-<scenario>-<k:03d>`` with k counting per scenario within the clip, so they are unique in a
    dataset as long as clip ids are.
    """
    return make_items_clips([relations], [meta], rng, cfg, [cap_per_clip])[0]


def make_items_clips(relations: Sequence[Sequence[Relation]], metas: Sequence[Any], rng: np.random.Generator,
                     cfg: QAConfig, caps: Sequence[int | None]) -> list[list[dict]]:
    """``[make_items(r, m, rng, cfg, c) for r, m, c in zip(relations, metas, caps)]``, draw for draw, in one pass.

    Why: per clip, the fixed numpy cost of option building and a garbage collection on leaving the no-GC section
    dominated the 2M-item benchmark. The draws are the same: a clip's selection keys and option uniforms are
    consecutive doubles of ``rng``, so one block is drawn and cut as ``make_items`` would have drawn it (how many
    rows a cap keeps does not depend on the draws). Raises ValueError like ``make_items`` (``rng`` then advanced).
    """
    relations = [askable(g, cfg) for g in relations]
    if not relations:
        return []
    L = [len(g) for g in relations]
    is_key = np.repeat(np.tile([True, False], len(L)),
                       np.column_stack([L, [_NCOLS * _n_chosen(a, c) for a, c in zip(L, caps)]]).ravel())
    block = rng.random(len(is_key))
    chosen, ids, n = _choose(relations, block[is_key], caps)
    if not chosen:
        return [[] for _ in L]
    frames, descs = _per_clip(metas, n)
    with no_gc():
        rows = _rows(chosen, frames, descs, block[~is_key].reshape(-1, _NCOLS), cfg, ids)
    ends = np.cumsum(n).tolist()
    return [rows[e - k:e] for e, k in zip(ends, n)]


def make_items_batch(relations: Sequence[Sequence[Relation]], metas: Sequence[Any], rng: np.random.Generator,
                     cfg: QAConfig, cap_per_clip: int | None = None) -> list[dict]:
    """``make_items`` over many clips at once (``relations[b]`` belongs to ``metas[b]``; two random draws in
    total: every clip's selection keys, then every row's uniforms, so rows differ from ``make_items_clips``).
    Rows come out clip by clip."""
    relations = [askable(g, cfg) for g in relations]
    chosen, ids, n = _choose(relations, rng.random(sum(len(r) for r in relations)), [cap_per_clip] * len(metas))
    if not chosen:
        return []
    frames, descs = _per_clip(metas, n)
    with no_gc():
        return _rows(chosen, frames, descs, rng.random((len(chosen), _NCOLS)), cfg, ids)
