"""Physics-based spatiotemporal relation solver: 4D metadata -> question facts (paper §3 p.4, §8.2; paper.md §1.2).

For frames i < j of a ``clips.ClipMeta`` (curated or GT) and object m, the 7 question slices (``SCENARIOS``,
paper Fig. 7) are: cad ‖c_j − c_i‖; crd the signed dominant axis of R_iᵀ(c_j − c_i); oad ‖P̄_j − P̄_i‖ (P̄ =
``obj_centre``); ocad the p-th percentile of ‖P_{j,m} − c_i‖ ("nearest point"); ocrd closer/farther/not moving
from Δ = n_j − n_i, n_k = p-th percentile of ‖P_{k,m} − c_k‖; ocrdir-lateral / -longitudinal from Δx / Δz of
R_iᵀ(P̄_j − P̄_i) (left/right, closer/farther, not moving).

Frames and units: ``camera2world[t] = [R_t | c_t]`` (camera-to-world, OpenCV +X right, +Y down, +Z forward): c_t
is the camera centre and a world point X is R_tᵀ(X − c_t) in camera t; metres. A ``Relation``'s Spatial State
(the RFT ``solution``, paper.md §3.1) is in the camera frame of frame 0, R_0ᵀ(X − c_0).

Labels: |q| > band_hi·τ → the sign's label; |q| < band_lo·τ → "not moving" (crd: skipped, it has no such label);
inside the band → not emitted (stereo.md §4.4/§7.2: the [τ/2, 2τ] band is what lifts curated-vs-GT agreement).
Observations are used only when valid, not truncated, finite and visible enough; every skip is counted with its
``SkipReason``. On stereo-curated metadata an oad question is also skipped (``UNCERTAIN``) when the stereo depth
uncertainty of the two centroids, projected on the displacement, could move the answer past half the numeric
options' spacing (``oad_sigma``). Deviations from the paper (camera-to-world throughout, percentile instead of min, crd dominance and
straightness rules, minimum magnitudes, the "not moving" ocrdir label) are listed in docs/SOLVER.md.

Speed: everything is vectorised over (pairs × objects) of many clips at once (``solve_clips``; ``stack``); the
only Python loop builds the ``Relation`` records.
"""
from __future__ import annotations

import contextlib
import dataclasses
import enum
import gc
from collections import Counter, namedtuple
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple, Sequence

import numpy as np

SCENARIOS: tuple[str, ...] = ("cad", "crd", "oad", "ocad", "ocrd", "ocrdir-lateral", "ocrdir-longitudinal")
NUMERIC: frozenset[str] = frozenset({"cad", "oad", "ocad"})
CAMERA_ONLY: frozenset[str] = frozenset({"cad", "crd"})
# Label sets. crd index = 2·axis + (component < 0) over OpenCV axes (+X right, +Y down, +Z forward).
CRD_LABELS: tuple[str, ...] = ("right", "left", "down", "up", "forward", "backward")
LABELS: dict[str, tuple[str, ...]] = {
    "crd": CRD_LABELS,
    "ocrd": ("closer", "farther", "not moving"),
    "ocrdir-lateral": ("left", "right", "not moving"),
    "ocrdir-longitudinal": ("closer", "farther", "not moving"),
}


class SkipReason(enum.StrEnum):
    """Why a (pair, scenario, object) query produced no question (a ``str``, so Counters serialise to JSON)."""

    INVALID = "invalid_observation"      # obj_valid False, truncated, or no finite centroid
    LOW_VISIBILITY = "low_visibility"    # obj_visible_frac < min_visible_frac
    FEW_POINTS = "few_points"            # fewer than min_points points for a nearest-point quantity
    SMALL_MOTION = "small_motion"        # below the minimum magnitude (cad/oad/ocad) or below the crd band
    AMBIGUOUS = "ambiguous"              # |Δ| inside the ambiguity band around τ
    NOT_DOMINANT = "not_dominant"        # crd: no axis dominates
    INCONSISTENT = "inconsistent"        # crd: the camera path is not straight enough between i and j
    UNCERTAIN = "depth_uncertain"        # oad: stereo depth noise could exceed the numeric tolerance (oad_sigma)


SKIPS: tuple[SkipReason, ...] = tuple(SkipReason)  # skip code k ≥ 1 ↔ SKIPS[k - 1]; code 0 = emitted


@dataclass(frozen=True)
class SolverConfig:
    """Solver constants (all unpublished in the paper; the 02_solver notebook's parameters set them).

    Distances/thresholds in metres; band_lo/band_hi are multiples of τ; percentiles in [0, 100].
    """

    min_frame_gap: int              # j − i ≥ this
    pairs_per_clip: int             # frame pairs sampled per clip by solve_clip
    min_visible_frac: float         # observation visibility floor
    min_points: int                 # points needed for a nearest-point distance
    nearest_percentile: float       # "nearest point" statistic (2 → 2nd percentile)
    min_camera_move: float          # cad: minimum ‖c_j − c_i‖
    min_object_move: float          # oad: minimum centroid displacement
    min_distance: float             # ocad: minimum distance (numeric options need ≥ ~0.2 m at 1 decimal)
    tau_crd: float                  # crd: threshold on the dominant component
    crd_dominance: float            # crd: |largest| / |second largest| component ≥ this
    crd_min_straightness: float     # crd: net displacement / camera path length ≥ this
    tau_ocrd: float                 # ocrd: threshold on Δ nearest distance
    tau_lateral: float              # ocrdir-lateral: threshold on Δx
    tau_longitudinal: float         # ocrdir-longitudinal: threshold on Δz
    band_lo: float                  # ambiguity band = [band_lo·τ, band_hi·τ]
    band_hi: float
    oad_disparity_err_px: float = 0.0  # oad: assumed disparity error of a curated centroid, px (0 = no check)
    oad_rel_tolerance: float = 0.1     # oad: skip when that error moves the answer by > this × the answer

    def __post_init__(self) -> None:
        if not 0 < self.band_lo <= 1 <= self.band_hi:
            raise ValueError(f"SolverConfig: need 0 < band_lo <= 1 <= band_hi, got {self.band_lo}, {self.band_hi}")
        if self.min_frame_gap < 1 or self.pairs_per_clip < 1:
            raise ValueError("SolverConfig: min_frame_gap and pairs_per_clip must be >= 1")


def config_from(params: Any) -> SolverConfig:
    """SolverConfig from any object or mapping holding (at least) its field names, e.g. a notebook's params."""
    has = (lambda k: k in params) if isinstance(params, dict) else (lambda k: hasattr(params, k))
    get = params.get if isinstance(params, dict) else lambda k: getattr(params, k)
    # fields with a default may be missing (params.json of runs made before they existed)
    return SolverConfig(**{f.name: get(f.name) for f in dataclasses.fields(SolverConfig)
                           if has(f.name) or f.default is dataclasses.MISSING})


class Relation(NamedTuple):
    """One solved question fact (an immutable record; a NamedTuple because millions are built per dataset).

    value: the answer in metres for numeric scenarios (cad/oad/ocad), else None. label: the answer label (see
    ``LABELS``) for categorical ones, else None. measure: the quantity the label was decided from (crd: signed
    dominant component; ocrd: Δ nearest distance; ocrdir: Δx or Δz; numeric: = value), metres.
    camera_center / object_center: ((x,y,z) at frame_i, (x,y,z) at frame_j) in the camera frame of frame 0,
    rounded to 0.1 mm, or (None, None) when the question does not involve that entity (oad: no camera; cad/crd:
    no object); an object anchor is None when that observation is not usable (invalid, truncated, NaN).
    exclude: labels that also describe the motion (crd: a secondary axis that moved beyond band_lo·τ) and so
    must not be offered as distractors.
    """

    clip_id: str
    subtask: str                    # prompts.SUBTASKS key
    variant: str                    # "" or "lateral"/"longitudinal" (ocrdir)
    frame_i: int
    frame_j: int
    obj: int                        # object index, -1 for camera questions
    value: float | None
    label: str | None
    measure: float
    camera_center: tuple
    object_center: tuple
    exclude: tuple = ()

    @property
    def scenario(self) -> str:
        return f"{self.subtask}-{self.variant}" if self.variant else self.subtask


# Several clips flattened over frames (F = ΣT), padded over objects (Mx = max M). C (F,3) world camera centres;
# R (F,3,3) camera-to-world rotations; S (F,) camera path length since the clip's frame 0; ctr (F,Mx,3) world
# centroids; ok (F,Mx) usable observation (valid, not truncated, finite, a real object); vis (F,Mx) visible
# fraction; counts/starts (F,Mx) point segments of ``points`` ((N·3,) float32, flattened (N,3)); cam0 (F,3) /
# obj0 (F,Mx,3) camera centres / centroids in the clip's frame-0 camera. inv_fb (F,) 1/(fx·baseline) (1/(px·m)) of
# stereo-curated clips, 0 for exact ones (source "gt": no depth noise). first/T/M per clip.
Stack = namedtuple("Stack", "names first T M C R S ctr ok vis counts starts points cam0 obj0 inv_fb")


def stack(metas: Sequence[Any], need: np.ndarray | None = None) -> Stack:
    """Flatten ``metas`` (ClipMeta) into one ``Stack`` so the solver runs once over many clips.

    need: optional (F,) bool over the stacked frames; only those frames' points are copied (the bulk path
    samples ~8 of 32 frames per clip, and copying every point dominated its cost). Vectorised: each field is
    concatenated once over clips in (clip, t, m) row-major order (the points' order too), then scattered into
    the (F, Mx) padding.
    """
    T = np.array([m.num_frames for m in metas], np.int64)
    M = np.array([m.num_objects for m in metas], np.int64)
    B, F, Mx = len(metas), int(T.sum()), int(M.max()) if len(M) else 0
    first = np.concatenate(([0], np.cumsum(T)[:-1])).astype(np.int64)

    def cat(name: str, dtype: Any, *tail: int) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(m, name), dtype).reshape(-1, *tail) for m in metas])

    tm = T * M
    cb = np.repeat(np.arange(B), tm)                          # clip of each flat (clip, t, m) row
    r = np.arange(int(tm.sum())) - np.repeat(np.cumsum(tm) - tm, tm)
    dest = (first[cb] + r // np.maximum(M[cb], 1)) * Mx + r % np.maximum(M[cb], 1)

    def pad(flat: np.ndarray, fill: Any) -> np.ndarray:
        out = np.full((F * Mx,) + flat.shape[1:], fill, flat.dtype)
        out[dest] = flat
        return out.reshape((F, Mx) + flat.shape[1:])

    counts_f = cat("obj_point_counts", np.int64)
    gex = np.cumsum(counts_f) - counts_f                      # offsets in all clips' points, concatenated
    counts = pad(counts_f, 0)
    if need is None or Mx == 0:
        starts = pad(gex, 0)
        points = cat("obj_points", np.float32, 3)
    else:  # copy only the needed frames' point blocks ((t, ·) rows are contiguous within a clip's points)
        local = pad(gex - np.repeat(gex[np.minimum(np.cumsum(tm) - tm, len(gex) - 1)], tm), 0)
        total = counts.sum(axis=1)
        sel = np.flatnonzero(np.asarray(need, bool) & (total > 0))
        fb_sel = np.repeat(np.arange(B), T)[sel].tolist()
        lo, hi = local[sel, 0].tolist(), (local[sel, 0] + total[sel]).tolist()
        starts = np.zeros((F, Mx), np.int64)
        starts[sel] = (np.cumsum(total[sel]) - total[sel])[:, None] + local[sel] - local[sel, :1]
        blocks = [metas[b].obj_points[a:e] for b, a, e in zip(fb_sel, lo, hi)]
        points = np.concatenate(blocks).astype(np.float32) if blocks else np.zeros((0, 3), np.float32)
    ctr = pad(cat("obj_centre", np.float64, 3), np.nan)
    ok = pad(cat("obj_valid", bool) & ~cat("obj_truncated", bool), False) & np.all(np.isfinite(ctr), axis=-1)
    c2w = np.concatenate([np.asarray(m.camera2world, np.float64) for m in metas])
    C, R = c2w[:, :, 3], c2w[:, :, :3]
    steps = np.linalg.norm(np.diff(C, axis=0), axis=1)
    steps[first[1:] - 1] = 0.0                                # no path across clip boundaries
    fb = np.repeat(np.arange(B), T)
    R0, c0 = R[first][fb], C[first][fb]
    return Stack(names=tuple(m.name for m in metas), first=first, T=T, M=M, C=C, R=R,
                 S=np.concatenate(([0.0], np.cumsum(steps))), ctr=ctr, ok=ok,
                 vis=pad(cat("obj_visible_frac", np.float32), 0.0), counts=counts, starts=starts,
                 points=np.ascontiguousarray(points).reshape(-1),
                 cam0=np.einsum("fab,fa->fb", R0, C - c0),  # R_0ᵀ (X − c_0)
                 obj0=np.einsum("fab,fma->fmb", R0, ctr - c0[:, None]),
                 inv_fb=np.repeat([0.0 if m.source == "gt" else 1.0 / (m.K[0, 0] * m.baseline) for m in metas], T))


# Vectorised solver output for P pairs × Mx objects (camera scenarios as (P,1)). b (P,) clip index in the Stack;
# I, J (P,) frames within the clip. Per scenario key: value (signed measure or numeric answer, metres); label
# (index into LABELS[key] after the band, −1 when skipped/numeric); raw_label (τ rule without the band, −1 when
# unobservable: the "truth" on GT metadata); skip (int8, 0 = emitted, k ≥ 1 = SKIPS[k−1]). real (P,Mx): the
# object exists in that clip (padding is neither emitted nor counted); crd_vec (P,3) R_iᵀ(c_j − c_i).
Evaluation = namedtuple("Evaluation", "b I J value label raw_label skip real crd_vec")


def _code(r: SkipReason) -> int:
    return SKIPS.index(r) + 1


def _first_skip(shape: tuple, conds: list) -> np.ndarray:
    """int8 skip codes: the first condition that holds wins (list order = priority), 0 where none does."""
    out = np.zeros(shape, np.int8)
    for cond, r in reversed(conds):
        out[np.broadcast_to(cond, shape)] = _code(r)
    return out


def _band(q: np.ndarray, tau: float, cfg: SolverConfig, pos: int, neg: int, still: int):
    """(label, raw_label, in_band, below) for a signed quantity q; labels are indices (``pos`` if q > 0)."""
    a = np.abs(q)
    sign = np.where(q > 0, pos, neg)
    return (np.where(a > cfg.band_hi * tau, sign, still), np.where(a > tau, sign, still),
            (a >= cfg.band_lo * tau) & (a <= cfg.band_hi * tau), a < cfg.band_lo * tau)


def oad_sigma(st: Stack, gi: np.ndarray, gj: np.ndarray, disp: np.ndarray, disparity_err_px: float) -> np.ndarray:
    """Std (P,Mx) metres of oad's ‖P̄_j − P̄_i‖ from stereo depth noise on curated centroids (0 on exact clips).

    A disparity error δ moves a point at depth z by δ·z²/(f·B) along its viewing ray u (stereo.md §4.4: the
    curated centre error is radial, 2.4 cm median vs 0.2 cm lateral, and grows as z²). Only the part along
    the displacement direction ê changes the distance, so σ² = Σ_{t∈{i,j}} (δ·z_t²/(f·B) · u_t·ê)²: an
    object moving across the view at 5 m is safe, one moving along the ray is not. disp (P,Mx,3) = P̄_j − P̄_i.
    """
    e = disp / np.maximum(np.linalg.norm(disp, axis=-1, keepdims=True), 1e-12)
    var = np.zeros(disp.shape[:2])
    for g in (gi, gj):
        rel = st.ctr[g] - st.C[g][:, None]                                  # camera → centre, world
        z = np.einsum("pab,pma->pmb", st.R[g], rel)[..., 2]                 # depth in camera g (+Z forward)
        u = rel / np.maximum(np.linalg.norm(rel, axis=-1, keepdims=True), 1e-12)
        var += (disparity_err_px * z * z * st.inv_fb[g][:, None] * np.sum(u * e, axis=-1)) ** 2
    return np.sqrt(var)


def _nearest(st: Stack, g: np.ndarray, m: np.ndarray, centre: np.ndarray, percentile: float,
             chunk: int = 4096) -> np.ndarray:
    """(Q,) percentile (linear interpolation, as ``np.percentile``) of ‖P_{g,m} − centre‖; NaN without points.

    Vectorised over queries in chunks (bounded memory): each chunk's squared distances form a (q, max count)
    float32 matrix padded with +inf; only the smallest ⌊p·(n−1)⌋+2 are partitioned out and sorted.
    """
    n, start = st.counts[g, m], st.starts[g, m]
    out = np.full(len(g), np.nan)
    sel = np.flatnonzero(n > 0)
    for a in range(0, len(sel), chunk):
        q = sel[a:a + chunk]
        nq = n[q]
        ar = np.arange(int(nq.max()))
        valid = ar[None] < nq[:, None]
        idx3 = 3 * np.where(valid, start[q][:, None] + ar, 0)
        cq = centre[q].astype(np.float32)
        d = np.zeros(idx3.shape, np.float32)
        for k in range(3):  # squared distances; sqrt only on the two selected order statistics
            x = st.points.take(idx3 + k) - cq[:, k:k + 1]
            d += x * x
        if not valid.all():
            d[~valid] = np.inf
        pos = percentile / 100.0 * (nq - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, nq - 1)
        kmax = int(hi.max())
        if kmax + 1 < d.shape[1]:
            d = np.partition(d, kmax, axis=1)[:, :kmax + 1]
        d.sort(axis=1)
        r = np.arange(len(q))
        dlo, dhi = np.sqrt(d[r, lo]), np.sqrt(d[r, hi])
        out[q] = dlo + (dhi - dlo) * (pos - lo)
    return out


def nearest_distance(meta: Any, t: np.ndarray, m: np.ndarray, centre: np.ndarray, percentile: float) -> np.ndarray:
    """(Q,) ``percentile``-th percentile of ‖P_{t,m} − centre‖ over object m's points at frame t (metres; NaN
    where no point was kept). t, m: (Q,) int; centre: (Q,3) world."""
    return _nearest(stack([meta]), np.asarray(t), np.asarray(m), np.asarray(centre, np.float64), percentile)


def evaluate_stack(st: Stack, b: np.ndarray, I: np.ndarray, J: np.ndarray, cfg: SolverConfig) -> Evaluation:
    """Solve every scenario for pairs (I[p], J[p]) of clip b[p] of ``st`` and all objects (padded to Mx)."""
    gi, gj = st.first[b] + I, st.first[b] + J
    P, Mx = len(b), st.ctr.shape[1]
    pm, one = (P, Mx), (P, 1)
    value, label, raw, skip = {}, {}, {}, {}
    # camera ego-motion (paper §1.2 items 1-2)
    dc = st.C[gj] - st.C[gi]
    d = np.linalg.norm(dc, axis=1)
    value["cad"], label["cad"], raw["cad"] = d[:, None], np.full(one, -1), np.full(one, -1)
    skip["cad"] = _first_skip(one, [((d < cfg.min_camera_move)[:, None], SkipReason.SMALL_MOTION)])
    v = np.einsum("pab,pa->pb", st.R[gi], dc)                 # R_iᵀ (c_j − c_i): camera-i axes
    av, rows = np.abs(v), np.arange(P)
    order = np.argsort(-av, axis=1)
    ax, signed = order[:, 0], v[rows, order[:, 0]]
    lab, rl, in_band, below = _band(signed, cfg.tau_crd, cfg, 0, 1, -1)
    path = st.S[gj] - st.S[gi]
    sk = _first_skip((P,), [(below, SkipReason.SMALL_MOTION), (in_band, SkipReason.AMBIGUOUS),
                            (av[rows, ax] < cfg.crd_dominance * av[rows, order[:, 1]], SkipReason.NOT_DOMINANT),
                            (d < cfg.crd_min_straightness * path, SkipReason.INCONSISTENT)])
    value["crd"], skip["crd"] = signed[:, None], sk[:, None]
    label["crd"] = np.where((sk == 0) & (lab >= 0), 2 * ax + lab, -1)[:, None]
    raw["crd"] = np.where(rl >= 0, 2 * ax + rl, -1)[:, None]
    # object observations: usable at i / at j
    real = np.arange(Mx)[None] < st.M[b][:, None]
    vis_i, vis_j = st.vis[gi] >= cfg.min_visible_frac, st.vis[gj] >= cfg.min_visible_frac
    obs_i = [(~st.ok[gi], SkipReason.INVALID), (~vis_i, SkipReason.LOW_VISIBILITY)]
    obs_j = [(~st.ok[gj], SkipReason.INVALID), (~vis_j, SkipReason.LOW_VISIBILITY)]
    pts_i, pts_j = st.counts[gi] >= cfg.min_points, st.counts[gj] >= cfg.min_points
    # oad (item 3)
    disp = st.ctr[gj] - st.ctr[gi]
    dist = np.linalg.norm(disp, axis=-1)
    value["oad"], label["oad"], raw["oad"] = dist, np.full(pm, -1), np.full(pm, -1)
    with np.errstate(invalid="ignore"):
        uncertain = oad_sigma(st, gi, gj, disp, cfg.oad_disparity_err_px) > cfg.oad_rel_tolerance * dist
    skip["oad"] = _first_skip(pm, obs_i + obs_j + [(~(dist >= cfg.min_object_move), SkipReason.SMALL_MOTION),
                                                   (uncertain, SkipReason.UNCERTAIN)])
    # nearest-point distances (items 4-5), only where the observation is usable: (j, c_i), (i, c_i), (j, c_j)
    near = np.full((3, P, Mx), np.nan)
    for k, (g, c, use) in enumerate(((gj, gi, st.ok[gj] & pts_j), (gi, gi, st.ok[gi] & pts_i),
                                     (gj, gj, st.ok[gj] & pts_j))):
        p, m = np.nonzero(use & real)
        near[k, p, m] = _nearest(st, g[p], m, st.C[c[p]], cfg.nearest_percentile)
    value["ocad"], label["ocad"], raw["ocad"] = near[0], np.full(pm, -1), np.full(pm, -1)
    skip["ocad"] = _first_skip(pm, obs_j + [(~pts_j, SkipReason.FEW_POINTS),
                                            (~(near[0] >= cfg.min_distance), SkipReason.SMALL_MOTION)])
    # ocrd (item 5): Δ of nearest distances, each to its own frame's camera; Δ > 0 → farther (index 1)
    dn = near[2] - near[1]
    few = [(~pts_i | ~pts_j, SkipReason.FEW_POINTS)]
    # ocrdir (item 6): centroid displacement in camera-i axes R_iᵀ(P̄_j − P̄_i); x → right (1), z → farther (1)
    dloc = np.einsum("pab,pma->pmb", st.R[gi], disp)
    for key, q, tau, extra in (("ocrd", dn, cfg.tau_ocrd, few), ("ocrdir-lateral", dloc[..., 0], cfg.tau_lateral, []),
                               ("ocrdir-longitudinal", dloc[..., 2], cfg.tau_longitudinal, [])):
        lab, rl, in_band, _ = _band(q, tau, cfg, 1, 0, 2)
        unobs = _first_skip(pm, obs_i + obs_j + extra)
        sk = np.where(unobs > 0, unobs, np.where(in_band, np.int8(_code(SkipReason.AMBIGUOUS)), np.int8(0)))
        value[key], skip[key] = q, sk
        label[key], raw[key] = np.where(sk == 0, lab, -1), np.where(unobs == 0, rl, -1)
    return Evaluation(b=b, I=I, J=J, value=value, label=label, raw_label=raw, skip=skip, real=real, crd_vec=v)


def evaluate(meta: Any, I: np.ndarray, J: np.ndarray, cfg: SolverConfig) -> Evaluation:
    """Solve every scenario for frame pairs (I[p], J[p]) (I < J) of one clip and all its objects, vectorised."""
    I, J = np.asarray(I, np.int64), np.asarray(J, np.int64)
    return evaluate_stack(stack([meta]), np.zeros(len(I), np.int64), I, J, cfg)


# Per-scenario lookup tables of ``_relations`` (index = position in SCENARIOS); _EXCLUDE: crd label bit set -> labels.
_SUBTASK, _VARIANT = (np.array([k.partition("-")[x] for k in SCENARIOS], object) for x in (0, 2))
_IS_NUMERIC, _IS_CAMERA, _IS_OAD, _IS_CRD = (np.array([f(k) for k in SCENARIOS]) for f in (
    NUMERIC.__contains__, CAMERA_ONLY.__contains__, "oad".__eq__, "crd".__eq__))
_LABEL_TEXT = np.array([(list(LABELS.get(k, ())) + [None] * 6)[:6] for k in SCENARIOS], object)
_EXCLUDE = tuple(tuple(l for k, l in enumerate(CRD_LABELS) if bits >> k & 1) for bits in range(64))
_NONE2 = (None, None)


def _relations(st: Stack, ev: Evaluation, p: np.ndarray, s: np.ndarray, col: np.ndarray, cfg: SolverConfig) -> list:
    """Relations for records (pair p, scenario index s, object column col).

    Columnar: every field is gathered for all records with numpy and turned into one Python list (lookup
    tables for subtask, variant, label and the crd ``exclude`` set), then ``map(Relation, ...)`` zips them;
    a per-record loop with numpy indexing cost several µs per relation.
    """
    gi, gj = st.first[ev.b[p]] + ev.I[p], st.first[ev.b[p]] + ev.J[p]
    obj = np.maximum(col, 0)
    obj0, ok = (st.obj0, st.ok) if st.ok.shape[1] else (np.zeros((len(st.C), 1, 3)), np.zeros((len(st.C), 1), bool))
    val = np.empty(len(p))
    lab = np.empty(len(p), np.int64)
    for k, key in enumerate(SCENARIOS):
        w = s == k
        c = 0 if key in CAMERA_ONLY else col[w]
        val[w], lab[w] = ev.value[key][p[w], c], ev.label[key][p[w], c]
    vec = ev.crd_vec[p]
    axis_label = 2 * np.arange(3)[None] + (vec < 0)               # crd label index of each axis' motion
    ex = (np.abs(vec) > cfg.band_lo * cfg.tau_crd) & (axis_label != lab[:, None])
    bits = np.where(_IS_CRD[s], (ex << axis_label).sum(axis=1), 0)
    is_num, cam_only = _IS_NUMERIC[s].tolist(), _IS_CAMERA[s]
    vals = val.tolist()
    cams = list(zip(map(tuple, np.round(st.cam0[gi], 4).tolist()), map(tuple, np.round(st.cam0[gj], 4).tolist())))
    oi = [t if k else None for t, k in zip(map(tuple, np.round(obj0[gi, obj], 4).tolist()), ok[gi, obj].tolist())]
    oj = [t if k else None for t, k in zip(map(tuple, np.round(obj0[gj, obj], 4).tolist()), ok[gj, obj].tolist())]
    return list(map(Relation, np.array(st.names, object)[ev.b[p]].tolist(), _SUBTASK[s].tolist(), _VARIANT[s].tolist(),
                    ev.I[p].tolist(), ev.J[p].tolist(), np.where(cam_only, -1, col).tolist(),
                    [v if n else None for v, n in zip(vals, is_num)],
                    _LABEL_TEXT[s, np.maximum(lab, 0)].tolist(), vals,
                    [_NONE2 if o else c for c, o in zip(cams, _IS_OAD[s].tolist())],
                    [_NONE2 if c else (a, b) for a, b, c in zip(oi, oj, cam_only.tolist())],
                    [_EXCLUDE[x] for x in bits.tolist()]))


def solve_pair(meta: Any, i: int, j: int, subtask: str, obj: int, cfg: SolverConfig,
               variant: str = "") -> Relation | SkipReason:
    """Solve one question: scenario ``subtask``(-``variant``) for frames i < j and object ``obj`` (-1: camera)."""
    key = f"{subtask}-{variant}" if variant else subtask
    if key not in SCENARIOS:
        raise ValueError(f"unknown subtask/variant {key!r}; expected one of {SCENARIOS}")
    if not 0 <= i < j < meta.num_frames:
        raise ValueError(f"{meta.name}: need 0 <= i < j < {meta.num_frames}, got i={i}, j={j}")
    cam_only = key in CAMERA_ONLY
    if not cam_only and not 0 <= obj < meta.num_objects:
        raise ValueError(f"{meta.name}: object index {obj} out of range 0..{meta.num_objects - 1}")
    st = stack([meta])
    ev = evaluate_stack(st, np.zeros(1, np.int64), np.array([i]), np.array([j]), cfg)
    code = int(ev.skip[key][0, 0 if cam_only else obj])
    if code:
        return SKIPS[code - 1]
    return _relations(st, ev, np.zeros(1, np.int64), np.array([SCENARIOS.index(key)]),
                      np.array([-1 if cam_only else obj]), cfg)[0]


@lru_cache(maxsize=64)
def eligible_pairs(T: int, min_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with j − i ≥ min_gap, 0 ≤ i < j < T, as two read-only (K,) int arrays (cached)."""
    i, j = np.triu_indices(T, k=min_gap)
    i.flags.writeable = j.flags.writeable = False
    return i, j


def solve_clips(metas: Sequence[Any], cfg: SolverConfig, rng: np.random.Generator) -> tuple[list, Counter]:
    """Solve many clips at once (the fast path for bulk datasets): per-clip relation lists + one skip Counter.

    Per clip, ``pairs_per_clip`` distinct eligible frame pairs are drawn uniformly; per (pair, scenario) at most
    one relation: camera scenarios directly, object scenarios on one object drawn uniformly among those whose
    question is emitted. The Counter counts skip reasons (``SkipReason``) over every evaluated real (pair,
    scenario, object) query, ``"emitted"`` relations and ``"no_frame_pair"`` clips too short for min_frame_gap.
    """
    counts = Counter()
    T_all = np.array([m.num_frames for m in metas], np.int64)
    bs, Is, Js = [], [], []
    for T in np.unique(T_all):  # clips of equal length share one vectorised draw
        clips_t = np.flatnonzero(T_all == T)
        I_all, J_all = eligible_pairs(int(T), cfg.min_frame_gap)
        if len(I_all) == 0:
            counts["no_frame_pair"] += len(clips_t)
            continue
        k = min(cfg.pairs_per_clip, len(I_all))
        sel = np.argsort(rng.random((len(clips_t), len(I_all))), axis=1)[:, :k]
        bs.append(np.repeat(clips_t, k)), Is.append(I_all[sel].reshape(-1)), Js.append(J_all[sel].reshape(-1))
    if not bs:
        return [[] for _ in metas], counts
    b = np.concatenate(bs)
    o = np.argsort(b, kind="stable")
    b, I, J = b[o], np.concatenate(Is)[o], np.concatenate(Js)[o]
    first = np.cumsum(T_all) - T_all
    need = np.zeros(int(T_all.sum()), bool)
    need[first[b] + I] = need[first[b] + J] = True
    st = stack(metas, need)
    ev = evaluate_stack(st, b, I, J, cfg)
    keys = rng.random((len(ev.b), len(SCENARIOS), max(st.ctr.shape[1], 1)))
    recs = []
    for s, key in enumerate(SCENARIOS):
        sk = ev.skip[key]
        real = np.ones_like(sk, bool) if key in CAMERA_ONLY else ev.real
        hist = np.bincount(sk[real & (sk > 0)], minlength=len(SKIPS) + 1)
        counts.update({SKIPS[c - 1]: int(hist[c]) for c in np.flatnonzero(hist)})
        emit = (sk == 0) & real
        col = np.where(emit, keys[:, s, :sk.shape[1]], -1.0).argmax(axis=1)
        p = np.flatnonzero(emit.any(axis=1))
        recs.append((p, np.full(len(p), s), -1 if key in CAMERA_ONLY else col[p]))
    p = np.concatenate([r[0] for r in recs])
    s = np.concatenate([r[1] for r in recs])
    col = np.concatenate([np.broadcast_to(r[2], r[0].shape) for r in recs])
    o = np.lexsort((s, p))                                     # clip, pair, then scenario order
    with no_gc():
        rels = _relations(st, ev, p[o], s[o], col[o], cfg)
    ends = np.cumsum(np.bincount(ev.b[p[o]], minlength=len(metas))).tolist()
    per_clip = [rels[a:e] for a, e in zip([0] + ends[:-1], ends)]
    counts["emitted"] += len(p)
    return per_clip, counts


@contextlib.contextmanager
def no_gc():
    """Pause the cyclic garbage collector while building many small acyclic objects (relations, rows).

    Why: each allocation burst triggers generation scans over every live object (all loaded metadata), which
    measured 20-40 % of the bulk solver+QA time; reference counting still frees everything. Restored on exit.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def solve_clip(meta: Any, cfg: SolverConfig, rng: np.random.Generator) -> tuple[list[Relation], Counter]:
    """``solve_clips`` for one clip: its relations and skip Counter."""
    rels, counts = solve_clips([meta], cfg, rng)
    return rels[0], counts
