"""Camera poses of a stereo clip: SIFT features lifted to 3D by stereo depth, tracked against a local map.

Paper: MLLM-4D takes camera poses C_i = [R_i | t_i] from Stereo4D, i.e. COLMAP-style bundle adjustment
(P §3 p.4; reference/paper.md §1.1). **Deviation:** we run a CPU stereo visual odometry instead; it is
metric (the stereo baseline fixes the scale) and measured against exact ground truth (benchmarks/).

Method (per frame t, camera-to-world poses, metres, OpenCV axes):

1. SIFT keypoints/descriptors are computed **once per frame** on the left grey image, optionally resized by
   ``sift_scale`` (dynamic-object pixels, when a mask is given, are excluded) and lifted to camera-frame 3D points with the frame's own stereo
   depth (bilinear; keypoints on depth discontinuities are not lifted — their depth is unreliable).
2. Frame t is solved against a **local map**: the 3D points of earlier frames ``refs`` (t-1, t-2, t-4,
   t-8, t-16 by default) mapped to the world with their already-estimated poses. Far references bound
   drift (errors do not chain frame by frame); near references keep overlap during fast motion.
   Step 1: frame t-1's features are matched (Lowe ratio) near their constant-velocity prediction (KD-tree,
   ``prior_radius_px``; brute force when that fails) and PnP-RANSAC (EPnP) + LM gives a prior pose.
   Step 2: every reference is matched within ``guide_radius_px`` of its projection under the prior (O(N),
   instead of one brute-force matching per reference), inliers are selected by reprojection under the
   prior and a joint Levenberg-Marquardt refinement (``solvePnPRefineLM``) gives the pose.
3. **Moving objects without masks:** RANSAC rejects gross outliers; a second pass then compares each
   inlier's 3D point predicted from the reference frame with the point measured by frame t's own stereo
   depth. Points moving inconsistently with the static-scene camera motion (beyond the stereo depth noise
   model) are dropped, the pose is re-refined, and those keypoints are flagged dynamic so that later frames
   never use them as map points.
4. The trajectory is anchored at frame 0 = ``first_pose`` (identity by default).

If PnP fails for a frame (too few inliers), the pose is extrapolated with constant velocity and the frame
is reported in ``diagnostics["pose_failed_frames"]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class PoseConfig:
    """Feature, matching and robust-estimation settings."""

    # SIFT keypoints per frame (strongest kept). Detection + description is most of the curation time and
    # scales with this count: 400 at 320x240 costs ATE 0.27 -> 0.30 cm vs 1000 (8 bench clips), for ~0.5 s
    # less CPU per 32-frame clip (benchmarks/curation_bench.py, 2026-12-01)
    n_features: int = 400
    octave_layers: int = 3        # SIFT scales per octave (Lowe: 3; 2 is ~20 % faster but ATE 0.27 -> 0.38 cm at 0.6x)
    # SIFT runs on the grey image resized by this factor (one INTER_AREA resize; keypoints mapped back to full
    # resolution). OpenCV SIFT first upsamples 2x, so detection cost falls ~quadratically: at 320x240 0.6x
    # takes 0.82 -> 0.46 CPU s per 32-frame clip, ATE 0.30 -> 0.27 cm (with precise_upscale; 8 bench clips;
    # noise 2, clips 8-15: 0.25 -> 0.28 cm). 2026-12-01
    sift_scale: float = 1.0
    # OpenCV's precise 2x upscale (pixel x -> 2x, no half-pixel localisation bias): ATE 0.30 -> 0.23 cm at full
    # scale for ~7 % more SIFT time
    precise_upscale: bool = True
    ratio: float = 0.8            # Lowe ratio test
    refs: tuple[int, ...] = (1, 2, 4, 8, 16)   # reference frame offsets of the local map
    ransac_px: float = 1.5        # PnP-RANSAC inlier threshold, pixels
    ransac_iters: int = 200
    min_inliers: int = 15
    max_depth: float = 15.0       # m; far points constrain rotation but their depth is noisy
    disparity_sigma_px: float = 0.15  # stereo noise model of the dynamic check: sigma_z = z^2 / (f B) * sigma_d
    dynamic_sigmas: float = 3.0       # dynamic if the 3D residual exceeds this many sigmas (and 3 cm)
    mask_dilate_px: int = 3           # grow dynamic masks: keypoints on object borders see the object
    guide_radius_px: float = 6.0      # guided matching: search radius around the predicted position
    prior_radius_px: float = 25.0     # constant-velocity prediction of frame t-1 matches: search radius


@dataclass(frozen=True, eq=False)
class Features:
    """One frame's features. kp (N,2) float32 pixels; desc (N,128) float32; xyz (N,3) float32 camera-frame
    metres (NaN where depth is missing); dynamic (N,) bool (set by the second pass)."""

    kp: np.ndarray
    desc: np.ndarray
    xyz: np.ndarray
    dynamic: np.ndarray


def _sift(n: int, layers: int = 3, precise: bool = True) -> cv2.SIFT:
    return cv2.SIFT_create(nfeatures=n, nOctaveLayers=layers, enable_precise_upscale=precise)


def lift(kp: np.ndarray, depth: np.ndarray, K: np.ndarray, max_rel_jump: float = 0.03,
         max_depth: float = np.inf) -> np.ndarray:
    """Camera-frame 3D points (N,3) float32 of pixels ``kp`` (N,2) from a depth map (H,W) (NaN invalid).

    Depth is bilinearly interpolated; a point is NaN when any of its 4 neighbours is invalid or they differ
    by more than ``max_rel_jump`` (a depth edge: the keypoint's depth is ambiguous there).
    """
    H, W = depth.shape
    if len(kp) == 0:
        return np.zeros((0, 3), np.float32)
    x, y = kp[:, 0].astype(np.float64), kp[:, 1].astype(np.float64)
    x0 = np.clip(np.floor(x).astype(int), 0, W - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, H - 2)
    ax, ay = np.clip(x - x0, 0, 1), np.clip(y - y0, 0, 1)
    n4 = np.stack([depth[y0, x0], depth[y0, x0 + 1], depth[y0 + 1, x0], depth[y0 + 1, x0 + 1]], 1).astype(np.float64)
    z = (n4[:, 0] * (1 - ax) * (1 - ay) + n4[:, 1] * ax * (1 - ay) + n4[:, 2] * (1 - ax) * ay + n4[:, 3] * ax * ay)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(n4).all(1) | ((n4.max(1) - n4.min(1)) > max_rel_jump * n4.min(1)) | (z > max_depth)
    z[bad] = np.nan
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    return np.stack([(x - cx) / fx * z, (y - cy) / fy * z, z], 1).astype(np.float32)


def detect(image: np.ndarray, depth: np.ndarray, K: np.ndarray, cfg: PoseConfig,
           dynamic_mask: np.ndarray | None = None) -> Features:
    """SIFT features of one left frame ((H,W,3) uint8 RGB), lifted with ``depth``; ``dynamic_mask`` (H,W) bool
    pixels are excluded from detection."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    det_mask = None
    if dynamic_mask is not None and dynamic_mask.any():
        grown = cv2.dilate(dynamic_mask.astype(np.uint8), np.ones((2 * cfg.mask_dilate_px + 1,) * 2, np.uint8))
        det_mask = (grown == 0).astype(np.uint8) * 255
    s = cfg.sift_scale
    if s != 1.0:
        size = (max(int(round(gray.shape[1] * s)), 1), max(int(round(gray.shape[0] * s)), 1))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        if det_mask is not None:
            det_mask = cv2.resize(det_mask, size, interpolation=cv2.INTER_NEAREST)
    kps, desc = _sift(cfg.n_features, cfg.octave_layers, cfg.precise_upscale).detectAndCompute(gray, det_mask)
    kp = np.array([k.pt for k in kps], np.float32).reshape(-1, 2)
    if s != 1.0:
        # pixel centres: x_full + 0.5 = (x_small + 0.5) * W_full / W_small
        kp = (kp + 0.5) * np.array([image.shape[1] / gray.shape[1], image.shape[0] / gray.shape[0]], np.float32) - 0.5
    desc = np.zeros((0, 128), np.float32) if desc is None else desc.astype(np.float32)
    xyz = lift(kp, depth, K, max_depth=cfg.max_depth)
    return Features(kp, desc, xyz, np.zeros(len(kp), bool))


def match(desc_q: np.ndarray, desc_t: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices (iq, it) of ratio-test matches from query descriptors to train descriptors."""
    if len(desc_q) < 2 or len(desc_t) < 2:
        return np.zeros(0, int), np.zeros(0, int)
    knn = cv2.BFMatcher(cv2.NORM_L2).knnMatch(desc_q, desc_t, k=2)
    pairs = [(m.queryIdx, m.trainIdx) for m, n in (p for p in knn if len(p) == 2) if m.distance < ratio * n.distance]
    if not pairs:
        return np.zeros(0, int), np.zeros(0, int)
    a = np.array(pairs, int)
    return a[:, 0], a[:, 1]


def guided_match(uv_pred: np.ndarray, desc_ref: np.ndarray, tree: cKDTree, desc_t: np.ndarray, radius: float,
                 ratio: float, k: int = 3, group: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Match reference features to frame-t keypoints near their predicted positions.

    uv_pred (N,2) predicted pixels of the reference features in frame t; tree: KD-tree over frame t's
    keypoints. Among the (up to ``k``) keypoints within ``radius``, the nearest descriptor wins if it passes the
    ratio test against the runner-up; each frame-t keypoint keeps only its best reference **per group**.
    ``group`` (N,) int: the reference frame of each row (None = one group), so several reference frames are
    matched in one vectorised call with the same result as one call each. Returns (reference indices, frame-t
    indices), ordered by (group, frame-t index). Cost O(N) instead of the O(N^2) of brute force.
    """
    if len(uv_pred) == 0 or tree.n < 2:
        return np.zeros(0, int), np.zeros(0, int)
    _, idx = tree.query(uv_pred, k=k, distance_upper_bound=radius)
    have = idx < tree.n
    safe = np.where(have, idx, 0)
    diff = desc_t[safe]  # (N,k,128) gathered copy, reused in place: ~8x faster than norm(a - b[:, None])
    diff -= desc_ref[:, None, :]
    dist = np.sqrt(np.einsum("nkd,nkd->nk", diff, diff))
    dist[~have] = np.inf
    order = np.argsort(dist, axis=1)
    best = np.take_along_axis(dist, order[:, :1], 1)[:, 0]
    second = np.take_along_axis(dist, order[:, 1:2], 1)[:, 0]
    ok = np.isfinite(best) & (best < ratio * second)
    if not ok.any():
        return np.zeros(0, int), np.zeros(0, int)
    ir = np.flatnonzero(ok)
    it = np.take_along_axis(safe, order[:, :1], 1)[:, 0][ok]
    # one reference per (group, frame-t keypoint): keep the smallest descriptor distance
    g = np.zeros(len(ir), int) if group is None else group[ir]
    o = np.lexsort((best[ir], it, g))
    ir, it, g = ir[o], it[o], g[o]
    first = np.r_[True, (it[1:] != it[:-1]) | (g[1:] != g[:-1])]
    return ir[first], it[first]


def _rt_to44(rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(rvec)[0]
    T[:3, 3] = tvec.reshape(3)
    return T


def _project(T_cw: np.ndarray, Xw: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Xc = Xw @ T_cw[:3, :3].T + T_cw[:3, 3]
    uv = Xc[:, :2] / Xc[:, 2:3] * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]
    return uv, Xc


def _refine(Xw: np.ndarray, uv: np.ndarray, K: np.ndarray, T_cw: np.ndarray) -> np.ndarray:
    # both vectors must be (3,1) float64: OpenCV silently mis-handles a (3,) tvec next to a (3,1) rvec
    rvec, tvec = cv2.Rodrigues(T_cw[:3, :3])[0].reshape(3, 1), T_cw[:3, 3].reshape(3, 1).copy()
    rvec, tvec = cv2.solvePnPRefineLM(Xw.astype(np.float64), uv.astype(np.float64), K, None, rvec, tvec)
    return _rt_to44(rvec, tvec)


def solve_frame(Xw: np.ndarray, uv: np.ndarray, xyz_t: np.ndarray, K: np.ndarray, baseline: float,
                cfg: PoseConfig, guess: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """World-to-camera pose (4,4) of one frame from 2D-3D matches, with the two-pass outlier rejection.

    Xw (N,3) world map points; uv (N,2) their keypoints in this frame; xyz_t (N,3) the same keypoints lifted
    with this frame's depth (NaN if unknown). ``guess``: a world-to-camera pose good to ~1 px; when it explains
    enough matches RANSAC is skipped (inliers by reprojection under the guess, then LM).
    Returns (T_cw or None, inlier (N,) bool, dynamic (N,) bool).
    """
    N = len(Xw)
    inl, dyn = np.zeros(N, bool), np.zeros(N, bool)
    if N < max(cfg.min_inliers, 6):
        return None, inl, dyn
    if guess is not None:
        uv_hat, Xc = _project(guess, Xw, K)
        inl = (np.linalg.norm(uv_hat - uv, axis=1) < 2 * cfg.ransac_px) & (Xc[:, 2] > 0)
    if inl.sum() >= cfg.min_inliers:
        T = _refine(Xw[inl], uv[inl], K, guess)
    else:
        ok, rvec, tvec, idx = cv2.solvePnPRansac(Xw.astype(np.float64), uv.astype(np.float64), K, None,
                                                 iterationsCount=cfg.ransac_iters, reprojectionError=cfg.ransac_px,
                                                 confidence=0.999, flags=cv2.SOLVEPNP_EPNP)
        if not ok or idx is None or len(idx) < cfg.min_inliers:
            return None, inl, dyn
        inl[:] = False
        inl[idx.ravel()] = True
        T = _refine(Xw[inl], uv[inl], K, _rt_to44(rvec, tvec))
    uv_hat, Xc = _project(T, Xw, K)
    inl = (np.linalg.norm(uv_hat - uv, axis=1) < cfg.ransac_px) & (Xc[:, 2] > 0)
    if inl.sum() < cfg.min_inliers:
        return None, inl, dyn
    # second pass: 3D consistency with this frame's own stereo depth (catches motion along the viewing ray,
    # which reprojection error barely sees, e.g. an object walking toward the camera)
    have = np.isfinite(xyz_t).all(1)
    z = np.where(have, xyz_t[:, 2], 1.0)
    sigma = z * z / (K[0, 0] * baseline) * cfg.disparity_sigma_px
    resid = np.linalg.norm(np.where(have[:, None], Xc - xyz_t, 0.0), axis=1)
    dyn = have & (resid > np.maximum(cfg.dynamic_sigmas * sigma * np.sqrt(2.0), 0.03))
    keep = inl & ~dyn
    if keep.sum() < cfg.min_inliers:
        keep = inl
    T = _refine(Xw[keep], uv[keep], K, T)
    return T, keep, dyn | (~inl & have)


def _solve_refs(f: Features, feats: list[Features], T_wc: np.ndarray, t: int, offsets: tuple[int, ...],
                K: np.ndarray, baseline: float, cfg: PoseConfig, guess: np.ndarray | None, tree: cKDTree | None,
                radius: float = 0.0, trust_guess: bool = False):
    """Match frame t to the reference frames t-offsets (guided by ``guess``, a world-to-camera (4,4) pose,
    within ``radius`` px, when given; brute force otherwise) and solve its pose (RANSAC unless
    ``trust_guess``). Returns (T_cw or None, keep, dynamic, frame-t keypoint index per match)."""
    Xw, desc, group = [], [], []
    for j, off in enumerate(offsets):
        s = t - off
        if s < 0:
            continue
        g = feats[s]
        usable = np.flatnonzero(np.isfinite(g.xyz).all(1) & ~g.dynamic)
        Xw.append(g.xyz[usable].astype(np.float64) @ T_wc[s, :3, :3].T + T_wc[s, :3, 3])
        desc.append(g.desc[usable])
        group.append(np.full(len(usable), j))
    if not Xw:
        return None, None, None, None
    Xw_a, desc_a, group_a = map(np.concatenate, (Xw, desc, group))
    if len(Xw_a) == 0:  # no reference has a usable map point (e.g. textureless frames)
        return None, None, None, None
    if guess is not None and tree is not None:
        # all references in one guided matching (one KD-tree query, one distance computation)
        uv_pred, Xc = _project(guess, Xw_a, K)
        front = np.flatnonzero(Xc[:, 2] > 0.05)
        ir, iq = guided_match(uv_pred[front], desc_a[front], tree, f.desc, radius, cfg.ratio,
                              k=3 if radius <= cfg.guide_radius_px else 8, group=group_a[front])
        ir = front[ir]
    else:
        ir, iq = [], []
        for j in np.unique(group_a):
            rows = np.flatnonzero(group_a == j)
            q, r = match(f.desc, desc_a[rows], cfg.ratio)
            iq.append(q)
            ir.append(rows[r])
        ir, iq = np.concatenate(ir), np.concatenate(iq)
    if len(iq) == 0:
        return None, None, None, None
    sol, keep, dyn = solve_frame(Xw_a[ir], f.kp[iq], f.xyz[iq], K, baseline, cfg, guess if trust_guess else None)
    return sol, keep, dyn, iq


def estimate_poses(left: np.ndarray, depth: np.ndarray, K: np.ndarray, baseline: float, cfg: PoseConfig,
                   dynamic_masks: np.ndarray | None = None, first_pose: np.ndarray | None = None
                   ) -> tuple[np.ndarray, dict]:
    """Camera-to-world poses (T,3,4) float64 of a clip.

    left: (T,H,W,3) uint8 RGB; depth: (T,H,W) float32 metres (NaN invalid); K (3,3); baseline metres;
    dynamic_masks: optional (T,H,W) bool (True = moving object / do not use); first_pose: (3,4) or (4,4)
    camera-to-world pose of frame 0 (identity by default). Returns (camera2world, diagnostics) with
    diagnostics ``inliers`` (T,) int, ``pose_failed_frames`` list, ``dynamic_rejected`` (T,) int.
    """
    T_len = len(left)
    K = np.asarray(K, np.float64)
    feats = [detect(left[t], depth[t], K, cfg, None if dynamic_masks is None else dynamic_masks[t])
             for t in range(T_len)]
    T_wc = np.tile(np.eye(4), (T_len, 1, 1))
    if first_pose is not None:
        T_wc[0, :3, :] = np.asarray(first_pose, np.float64)[:3, :]
    inliers, rejected, failed = np.zeros(T_len, int), np.zeros(T_len, int), []
    for t in range(1, T_len):
        f = feats[t]
        tree = cKDTree(f.kp) if len(f.kp) else cKDTree(np.zeros((0, 2)))
        # 1) a RANSAC pose from frame t-1 only: matched near the constant-velocity prediction (cheap), or by
        #    brute force when that fails (first frames, jerky motion); it is the prior for step 2
        guess = None
        if t >= 2:
            pred = np.linalg.inv(T_wc[t - 1] @ np.linalg.inv(T_wc[t - 2]) @ T_wc[t - 1])
            guess = _solve_refs(f, feats, T_wc, t, (1,), K, baseline, cfg, pred, tree, cfg.prior_radius_px)[0]
        if guess is None:
            guess = _solve_refs(f, feats, T_wc, t, (1,), K, baseline, cfg, None, None)[0]
        # 2) all references, guided by the prior within a few pixels, one joint LM solve (no RANSAC needed)
        sol, keep, dyn, src_a = _solve_refs(f, feats, T_wc, t, cfg.refs, K, baseline, cfg, guess, tree,
                                            cfg.guide_radius_px, trust_guess=guess is not None)
        if sol is None:
            failed.append(t)
            step = np.linalg.inv(T_wc[t - 2]) @ T_wc[t - 1] if t >= 2 else np.eye(4)
            T_wc[t] = T_wc[t - 1] @ step
            continue
        T_wc[t] = np.linalg.inv(sol)
        inliers[t] = int(keep.sum())
        # a keypoint is dynamic if most of its matches disagree with the static-scene motion
        votes_dyn = np.bincount(src_a[dyn], minlength=len(f.kp))
        votes_ok = np.bincount(src_a[keep], minlength=len(f.kp))
        f.dynamic[:] = votes_dyn > votes_ok
        rejected[t] = int(f.dynamic.sum())
    return T_wc[:, :3, :], {"inliers": inliers, "pose_failed_frames": failed, "dynamic_rejected": rejected}
