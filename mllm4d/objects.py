"""Object-level 3D points per frame from instance masks + stereo depth + camera poses, and the curated ClipMeta.

Paper: the scene's metric 3D points P_i are projected into the GroundedSAM2 masks to get each object's
points P_{i,m} (P §3 p.4; reference/paper.md §1.1); a "robust filtering stage" (criteria unpublished)
removes low-quality estimates. Ours, measured in reference/stereo.md §4.3 and benchmarks/curation_bench.py:

- masks are **eroded** (``erode_px``) so that boundary pixels, whose stereo depth bleeds into the
  background, are not used;
- points farther than ``depth_gate_m`` from the mask's median depth are dropped (remaining bleeding,
  depth outliers);
- ``fill_rim``: the eroded rim (and holes next to trusted depth) get their depth from the adjacent
  interior, so the point set covers the whole visible mask like the GT centroid does (erosion alone biased
  the centroid by 2.4 cm even with exact depth);
- the centre ``obj_centre`` is the mean of *all* kept points (the solver's P̄ = mean of points); only a
  random subsample of at most ``max_points`` is stored in ``obj_points`` (FORMATS.md caps it at 256);
- **truncation**: an observation whose full (un-eroded) mask touches the image border or the stereo-invalid
  left band is flagged ``obj_truncated`` and not ``obj_valid``: its visible-surface centroid shifts as the
  object slides out of view, which fakes motion (a static cabinet came out at 0.47 m/s in the probe). With
  left padding (no fixed band) the band is the object's own disparity: left of x = d the object is not
  visible in the right image;
- ``obj_visible_frac`` is **estimated** as area_t·z_t² / max_t(area·z²): a rigid object's projected area
  scales with 1/z², so a drop below the clip's best view means occlusion (a rotation also changes it; this
  is a deviation: the exact amodal fraction is only known for synthetic GT);
- ``obj_valid`` = enough points, not truncated and visible fraction >= ``min_visible_frac``;
- **track smoothing** (``smooth_half_window``, our deviation: the paper uses per-frame centres):
  each object's valid centres are replaced by a robust local quadratic fit over ±``smooth_half_window``
  frames (``smooth_tracks``), weighted by the stereo depth uncertainty. Why: the per-frame centre error
  is almost entirely along the viewing ray (median 2.4 cm radial vs 0.2 cm lateral on the tiny run) and
  grows as z² (disparity error ≈ 0.05-0.1 px at the object level: residual sub-pixel "pixel locking" and
  WLS bleeding from occluders); about half of it changes from frame to frame, while objects and the
  camera move smoothly at video rate. Only ``obj_centre`` is smoothed; ``obj_points`` stay per-frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from . import clips


@dataclass(frozen=True)
class ObjectConfig:
    erode_px: int = 2
    depth_gate_m: float = 0.5
    min_points: int = 20
    max_points: int = 256
    border_px: int = 1
    min_visible_frac: float = 0.3
    fill_rim: bool = True   # eroded rim pixels get their depth from the adjacent interior (fill_from_core)
    smooth_half_window: int = 4      # track smoothing window ±frames (0 = per-frame centres, the paper's)
    disparity_sigma_px: float = 0.1  # object-level disparity error used to weight frames (smooth_tracks)
    outlier_sigmas: float = 3.0      # a frame whose centre is > this many σ off its neighbours' fit is dropped


@dataclass(frozen=True, eq=False)
class ObjectObservations:
    """Per-frame, per-object observations: centre (T,M,3) float64 world (NaN unobserved); counts (T,M) int32
    stored points; points (ΣN,3) float32 world in (t, m) row-major order; visible_frac (T,M) float32;
    truncated, valid (T,M) bool."""

    centre: np.ndarray
    counts: np.ndarray
    points: np.ndarray
    visible_frac: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray


def unproject(us: np.ndarray, vs: np.ndarray, z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points (N,3) float64 of pixel columns ``us``, rows ``vs`` at z-depth ``z`` (metres)."""
    return np.stack([(us - K[0, 2]) / K[0, 0] * z, (vs - K[1, 2]) / K[1, 1] * z, z], 1)


def _bbox(mask: np.ndarray, pad: int) -> tuple[int, int, int, int]:
    """(r0, c0, r1, c1) of the mask's bounding box grown by ``pad`` and clipped to the image."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    H, W = mask.shape
    return (max(rows[0] - pad, 0), max(cols[0] - pad, 0), min(rows[-1] + pad + 1, H), min(cols[-1] + pad + 1, W))


def fill_from_core(z: np.ndarray, region: np.ndarray, iters: int) -> np.ndarray:
    """Grow the valid (finite) depths of ``z`` (h,w) into the rest of ``region`` (h,w) bool by ``iters`` rounds
    of 3x3 averaging of valid neighbours; pixels out of reach stay NaN.

    Why: the GT centroid is over *all* visible pixels, but the mask rim's stereo depth bleeds into the
    background. Eroding drops the rim and biases the centroid (2.4 cm with exact depth, 0.3 cm when the rim
    is kept); taking the rim's depth from the adjacent interior keeps the rim's pixels with trusted depth.
    """
    z = z.astype(np.float32).copy()
    w = np.isfinite(z).astype(np.float32)
    z[w == 0] = 0.0
    for _ in range(iters):
        todo = region & (w == 0)
        if not todo.any():
            break
        num = cv2.boxFilter(z * w, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
        den = cv2.boxFilter(w, -1, (3, 3), normalize=False, borderType=cv2.BORDER_CONSTANT)
        new = todo & (den > 0)
        z[new] = num[new] / den[new]
        w[new] = 1.0
    return np.where(w > 0, z, np.nan)


def ray_sigma(centre: np.ndarray, camera2world: np.ndarray, fb: float, disparity_sigma_px: float,
              floor_m: float = 0.005) -> np.ndarray:
    """Stereo std (T,M) metres of centres (T,M,3) world along their viewing rays: σ_z = σ_d·z²/(f·B).

    camera2world (T,3,4); fb = fx·baseline (px·m); z = the centre's depth in its own camera (+Z forward).
    ``floor_m`` stands for the errors that do not grow with depth (masks, pose). NaN centres give NaN.
    """
    R, c = camera2world[:, :, :3], camera2world[:, :, 3]
    z = np.einsum("tab,tma->tmb", R, centre - c[:, None])[..., 2]     # R_tᵀ(X − c_t), z component
    return disparity_sigma_px * z * z / fb + floor_m


def _local_fit(t: np.ndarray, X: np.ndarray, w: np.ndarray, half: int, degree: int) -> np.ndarray:
    """Weighted local polynomial (``degree``) fit of X (N,3) at frames t (N,) int, evaluated at every t.

    Neighbours within ±``half`` frames get tricube × ``w`` weights (w = 0 drops a frame); fewer
    neighbours than the degree needs lower the degree (one frame alone keeps its value).
    """
    out = np.empty_like(X)
    for a, ta in enumerate(t):
        d = np.abs(t - ta)
        ww = np.where(d <= half, (1.0 - (d / (half + 1.0)) ** 3) ** 3, 0.0) * w
        sel = ww > 0
        dg = min(degree, int(sel.sum()) - 1)
        if dg < 0:
            out[a] = X[a]
            continue
        A = np.vander((t[sel] - ta).astype(np.float64), dg + 1)        # last column = constant term
        sw = np.sqrt(ww[sel])[:, None]
        coef = np.linalg.lstsq(A * sw, X[sel] * sw, rcond=None)[0]
        out[a] = coef[-1]
    return out


def smooth_tracks(centre: np.ndarray, use: np.ndarray, sigma: np.ndarray, half_window: int,
                  outlier_sigmas: float = 3.0, degree: int = 2) -> np.ndarray:
    """Robustly smoothed object tracks: (T,M,3) world metres, a copy of ``centre`` where ``use`` is False.

    centre (T,M,3) world; use (T,M) bool: the observations to smooth (and to fit on); sigma (T,M) metres:
    each observation's std (``ray_sigma``), fit weights 1/σ². Two passes per object: a local fit over
    every used frame, then again without frames whose centre lies more than ``outlier_sigmas``·σ from
    the first fit (an outlier frame then takes its neighbours' value). Frames on both sides of an unused
    frame are still fitted together: objects move smoothly even while briefly occluded.
    half_window 0 returns ``centre`` unchanged.
    """
    out = np.array(centre, np.float64, copy=True)
    if half_window <= 0:
        return out
    for m in range(centre.shape[1]):
        t = np.flatnonzero(use[:, m] & np.isfinite(centre[:, m]).all(-1) & np.isfinite(sigma[:, m]))
        if len(t) < 2:
            continue
        X, w = out[t, m], 1.0 / np.maximum(sigma[t, m], 1e-6) ** 2
        fit = _local_fit(t, X, w, half_window, degree)
        inlier = np.linalg.norm(X - fit, axis=1) <= outlier_sigmas * sigma[t, m]
        if inlier.any() and not inlier.all():
            fit = _local_fit(t, X, w * inlier, half_window, degree)  # an outlier with no inlier near keeps X
        out[t, m] = fit
    return out


def touches_invalid(mask: np.ndarray, band: int, border_px: int) -> bool:
    """True if the (H,W) bool mask reaches the image border (within ``border_px``) or the left ``band`` columns."""
    H, W = mask.shape
    b = max(border_px, 1)
    if mask[:b].any() or mask[-b:].any() or mask[:, -b:].any():
        return True
    return bool(mask[:, :max(band, b)].any())


def observe_objects(depth: np.ndarray, camera2world: np.ndarray, K: np.ndarray, baseline: float,
                    masks: np.ndarray, num_objects: int, band: int, cfg: ObjectConfig,
                    rng: np.random.Generator) -> ObjectObservations:
    """Object observations of a clip.

    depth (T,H,W) float32 metres (NaN invalid); camera2world (T,3,4); K (3,3); baseline metres; masks
    (T,H,W) int16 instance ids (0..M-1 objects, negative = background); band: width (px) of the stereo-invalid
    left band (0 when SGBM ran with left padding); rng draws the stored point subsample.
    """
    T, H, W = depth.shape
    M = num_objects
    K = np.asarray(K, np.float64)
    centre = np.full((T, M, 3), np.nan)
    counts = np.zeros((T, M), np.int32)
    trunc = np.zeros((T, M), bool)
    area_z2 = np.zeros((T, M))
    pts: list[np.ndarray] = []
    kernel = np.ones((2 * cfg.erode_px + 1,) * 2, np.uint8) if cfg.erode_px > 0 else None
    fb = K[0, 0] * baseline
    for t in range(T):
        R, c = camera2world[t, :, :3], camera2world[t, :, 3]
        ids = masks[t]
        for m in range(M):
            full = ids == m
            area = int(full.sum())
            if area == 0:
                pts.append(np.zeros((0, 3), np.float32))
                continue
            r0, c0, r1, c1 = _bbox(full, cfg.erode_px + 2)
            full_c = full[r0:r1, c0:c1]
            core = full_c if kernel is None else cv2.erode(full_c.astype(np.uint8), kernel).astype(bool)
            zc = np.where(core, depth[t, r0:r1, c0:c1], np.nan)
            good = np.isfinite(zc)
            zmed = float(np.median(zc[good])) if good.any() else math.nan
            obj_band = band if band > 0 else (int(math.ceil(fb / zmed)) + 2 if np.isfinite(zmed) else 0)
            trunc[t, m] = touches_invalid(full, obj_band, cfg.border_px)
            with np.errstate(invalid="ignore"):
                good &= np.abs(zc - zmed) < cfg.depth_gate_m
            if good.sum() < cfg.min_points:
                pts.append(np.zeros((0, 3), np.float32))
                continue
            if cfg.fill_rim:
                zc = fill_from_core(np.where(good, zc, np.nan), full_c, cfg.erode_px + 1)
                good = np.isfinite(zc) & full_c
            vs, us = np.nonzero(good)
            z = zc[vs, us].astype(np.float64)
            Xw = unproject((us + c0).astype(np.float64), (vs + r0).astype(np.float64), z, K) @ R.T + c
            centre[t, m] = Xw.mean(0)
            area_z2[t, m] = area * zmed * zmed
            keep = Xw if len(Xw) <= cfg.max_points else Xw[np.sort(rng.choice(len(Xw), cfg.max_points, replace=False))]
            counts[t, m] = len(keep)
            pts.append(keep.astype(np.float32))
    best = area_z2.max(0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        vis = np.where(best > 0, area_z2 / best, 0.0).astype(np.float32)
    valid = (counts >= cfg.min_points) & ~trunc & (vis >= cfg.min_visible_frac)
    if cfg.smooth_half_window > 0:
        sig = ray_sigma(centre, camera2world, fb, cfg.disparity_sigma_px)
        centre = smooth_tracks(centre, valid, sig, cfg.smooth_half_window, cfg.outlier_sigmas)
    points = np.concatenate(pts) if pts else np.zeros((0, 3), np.float32)
    return ObjectObservations(centre, counts, points.astype(np.float32), vis, trunc, valid)


def build_meta(name: str, timestamps: np.ndarray, camera2world: np.ndarray, K: np.ndarray, baseline: float,
               image_size: tuple[int, int], obs: ObjectObservations, names: list[str] | tuple[str, ...],
               descriptions: list[str] | tuple[str, ...], categories: list[str] | tuple[str, ...],
               source: str = "curated") -> clips.ClipMeta:
    """Assemble and check a ``ClipMeta`` (docs/FORMATS.md) from curated poses and object observations."""
    M = obs.centre.shape[1]
    for field, v in (("obj_names", names), ("obj_descriptions", descriptions), ("obj_categories", categories)):
        if len(v) != M:
            raise ValueError(f"{name}: field {field!r} has {len(v)} entries for {M} objects")
    meta = clips.ClipMeta(
        name=name, source=source, timestamps=np.asarray(timestamps, np.float64),
        camera2world=np.asarray(camera2world, np.float64)[:, :3, :4], K=np.asarray(K, np.float64),
        baseline=float(baseline), image_size=(int(image_size[0]), int(image_size[1])),
        obj_names=tuple(names), obj_descriptions=tuple(descriptions), obj_categories=tuple(categories),
        obj_centre=obs.centre, obj_point_counts=obs.counts.astype(np.int32), obj_points=obs.points,
        obj_visible_frac=obs.visible_frac.astype(np.float32), obj_truncated=obs.truncated, obj_valid=obs.valid)
    meta.check(name)
    return meta
