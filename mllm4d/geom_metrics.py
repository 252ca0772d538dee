"""Geometry accuracy metrics for curation: depth, camera trajectory and object centres.

Definitions follow the literature (reference/stereo.md §6.3) so numbers compare with published ones:

- depth (Eigen et al. 2014), over pixels where the ground truth is valid: AbsRel = mean |d-d*|/d*,
  δ<1.25 = fraction with max(d/d*, d*/d) < 1.25, "within 5 %" = fraction with |d-d*|/d* < 0.05, RMSE;
  these are taken over pixels where the estimate is *also* valid, and ``density`` is the fraction of valid
  GT pixels that have an estimate (a sparse estimate cannot hide behind a good AbsRel);
- disparity (Middlebury/KITTI): end-point error (EPE, px) and bad-N px (fraction with error > N px);
- trajectory (TUM RGB-D, Sturm et al. 2012; the ``evo`` tool): ATE RMSE of camera centres after a
  least-squares Umeyama alignment (SE(3) for metric stereo, Sim(3) optional) and RPE over ``delta`` frames:
  RMSE of the translation and of the rotation angle of (Q_i^-1 Q_{i+Δ})^-1 (P_i^-1 P_{i+Δ});
- object centres: Euclidean error per observed (t, m), reported as a median by curation.

Poses are camera-to-world (T,3,4) or (T,4,4), metres, OpenCV camera axes. Depths are z-depth in metres;
invalid entries are NaN, inf or <= 0 in either array.
"""
from __future__ import annotations

import numpy as np


# ----------------------------------------------------------------------------------------------------------
# Depth and disparity
# ----------------------------------------------------------------------------------------------------------
def _valid(x: np.ndarray) -> np.ndarray:
    return np.isfinite(x) & (x > 0)


def depth_metrics(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """Depth accuracy of ``pred`` against ``gt`` (same shape, metres; any leading dims).

    ``mask`` (same shape, bool) restricts the evaluated pixels (e.g. object pixels only). Returns
    ``absrel``, ``delta1``, ``within5``, ``rmse`` (m), ``density`` and ``n`` (pixels compared); the accuracy
    entries are NaN when nothing overlaps.
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"depth_metrics: pred shape {pred.shape} != gt shape {gt.shape}")
    g = _valid(gt) if mask is None else _valid(gt) & mask
    both = g & _valid(pred)
    n_gt, n = int(g.sum()), int(both.sum())
    out = {"density": n / n_gt if n_gt else float("nan"), "n": n}
    if n == 0:
        return {**out, "absrel": float("nan"), "delta1": float("nan"), "within5": float("nan"), "rmse": float("nan")}
    p, q = pred[both], gt[both]
    rel = np.abs(p - q) / q
    ratio = np.maximum(p / q, q / p)
    return {**out, "absrel": float(rel.mean()), "delta1": float((ratio < 1.25).mean()),
            "within5": float((rel < 0.05).mean()), "rmse": float(np.sqrt(np.mean((p - q) ** 2)))}


def depth_absrel(pred: np.ndarray, gt: np.ndarray) -> float:
    return depth_metrics(pred, gt)["absrel"]


def depth_delta1(pred: np.ndarray, gt: np.ndarray) -> float:
    return depth_metrics(pred, gt)["delta1"]


def depth_density(pred: np.ndarray, gt: np.ndarray) -> float:
    return depth_metrics(pred, gt)["density"]


def depth_within5(pred: np.ndarray, gt: np.ndarray) -> float:
    return depth_metrics(pred, gt)["within5"]


def disparity_metrics(pred: np.ndarray, gt: np.ndarray, bad_px: float = 2.0) -> dict[str, float]:
    """Disparity EPE (px) and ``bad`` = fraction of pixels with error > ``bad_px``, over pixels valid in both.

    Invalid disparities are NaN, inf or <= 0. Also returns ``density`` (as in ``depth_metrics``).
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    g = _valid(gt)
    both = g & _valid(pred)
    if not both.any():
        return {"epe": float("nan"), "bad": float("nan"), "density": 0.0}
    err = np.abs(pred[both] - gt[both])
    return {"epe": float(err.mean()), "bad": float((err > bad_px).mean()), "density": float(both.sum() / g.sum())}


# ----------------------------------------------------------------------------------------------------------
# Trajectories
# ----------------------------------------------------------------------------------------------------------
def to44(poses: np.ndarray) -> np.ndarray:
    """(T,3,4) or (T,4,4) -> (T,4,4) float64 homogeneous poses."""
    poses = np.asarray(poses, np.float64)
    if poses.ndim != 3 or poses.shape[1:] not in ((3, 4), (4, 4)):
        raise ValueError(f"poses must be (T,3,4) or (T,4,4), got {poses.shape}")
    out = np.tile(np.eye(4), (len(poses), 1, 1))
    out[:, :3, :] = poses[:, :3, :]
    return out


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares (R, t, s) with dst ≈ s R src + t (Umeyama 1991). src, dst: (N,3), N >= 3 non-collinear.

    Returns R (3,3) proper rotation, t (3,), s (1.0 unless ``with_scale``).
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 2:
        raise ValueError(f"umeyama: need matching (N,3) arrays with N >= 2, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:  # reflection -> nearest proper rotation
        S[2, 2] = -1
    R = U @ S @ Vt
    var_s = (xs ** 2).sum() / len(src)
    s = float(np.trace(np.diag(D) @ S) / var_s) if with_scale and var_s > 0 else 1.0
    t = mu_d - s * R @ mu_s
    return R, t, s


def align_trajectory(est: np.ndarray, gt: np.ndarray, with_scale: bool = False) -> np.ndarray:
    """``est`` camera-to-world poses mapped into the GT world by the Umeyama fit of the camera centres.

    With fewer than 3 distinct centres (a static camera) the alignment degenerates: the frame-0 poses are
    aligned instead (rigid transform gt0 @ est0^-1).
    """
    E, G = to44(est), to44(gt)
    ce, cg = E[:, :3, 3], G[:, :3, 3]
    if len(E) >= 3 and np.linalg.matrix_rank(ce - ce.mean(0), tol=1e-6) >= 2:
        R, t, s = umeyama(ce, cg, with_scale)
        A = np.eye(4)
        A[:3, :3], A[:3, 3] = R, t
        out = A @ E
        out[:, :3, 3] = (s * R @ ce.T).T + t
        return out
    return G[0] @ np.linalg.inv(E[0]) @ E


def ate_rmse(est: np.ndarray, gt: np.ndarray, with_scale: bool = False) -> float:
    """ATE RMSE (m) of camera centres after SE(3) (or Sim(3)) alignment of ``est`` to ``gt`` (both (T,3|4,4))."""
    A = align_trajectory(est, gt, with_scale)
    return float(np.sqrt(np.mean(np.sum((A[:, :3, 3] - to44(gt)[:, :3, 3]) ** 2, axis=1))))


def rotation_angle_deg(R: np.ndarray) -> np.ndarray:
    """Angle (degrees) of rotation matrices R (...,3,3)."""
    c = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


def rpe(est: np.ndarray, gt: np.ndarray, delta: int = 1) -> tuple[float, float]:
    """RPE over ``delta`` frames: (translation RMSE in m, rotation RMSE in degrees). Alignment-free."""
    E, G = to44(est), to44(gt)
    if len(E) != len(G):
        raise ValueError(f"rpe: {len(E)} estimated poses vs {len(G)} GT poses")
    if len(E) <= delta:
        return float("nan"), float("nan")
    rel_e = np.linalg.inv(E[:-delta]) @ E[delta:]
    rel_g = np.linalg.inv(G[:-delta]) @ G[delta:]
    err = np.linalg.inv(rel_g) @ rel_e
    trans = np.linalg.norm(err[:, :3, 3], axis=1)
    rot = rotation_angle_deg(err[:, :3, :3])
    return float(np.sqrt(np.mean(trans ** 2))), float(np.sqrt(np.mean(rot ** 2)))


def path_length(poses: np.ndarray) -> float:
    c = to44(poses)[:, :3, 3]
    return float(np.linalg.norm(np.diff(c, axis=0), axis=1).sum())


def drift_pct(est: np.ndarray, gt: np.ndarray) -> float:
    """End-point position error in % of the GT path length, both anchored at the GT first pose."""
    E, G = to44(est), to44(gt)
    E = G[0] @ np.linalg.inv(E[0]) @ E
    length = path_length(G)
    return float(100.0 * np.linalg.norm(E[-1, :3, 3] - G[-1, :3, 3]) / length) if length > 0 else float("nan")


def pose_metrics(est: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """ATE SE(3)/Sim(3) (m), Sim(3) scale, RPE trans (m)/rot (deg) at Δ=1 frame, drift (%), GT path length (m)."""
    rpe_t, rpe_r = rpe(est, gt)
    ce, cg = to44(est)[:, :3, 3], to44(gt)[:, :3, 3]
    moving = len(cg) >= 3 and np.linalg.matrix_rank(cg - cg.mean(0), tol=1e-6) >= 2
    scale = umeyama(ce, cg, True)[2] if moving else 1.0
    return {"ate_m": ate_rmse(est, gt), "ate_sim3_m": ate_rmse(est, gt, with_scale=True), "sim3_scale": scale,
            "rpe_trans_m": rpe_t, "rpe_rot_deg": rpe_r, "drift_pct": drift_pct(est, gt),
            "path_m": path_length(gt)}


# ----------------------------------------------------------------------------------------------------------
# Objects
# ----------------------------------------------------------------------------------------------------------
def object_centre_errors(est: np.ndarray, gt: np.ndarray, use: np.ndarray | None = None) -> np.ndarray:
    """Euclidean errors (m) between (T,M,3) centre arrays where both are finite (and ``use`` (T,M) is True).

    Returns a flat float64 array (possibly empty).
    """
    est, gt = np.asarray(est, np.float64), np.asarray(gt, np.float64)
    if est.shape != gt.shape:
        raise ValueError(f"object_centre_errors: est shape {est.shape} != gt shape {gt.shape}")
    ok = np.isfinite(est).all(-1) & np.isfinite(gt).all(-1)
    if use is not None:
        ok &= use
    return np.linalg.norm(est[ok] - gt[ok], axis=-1)


def object_center_err_m(est: np.ndarray, gt: np.ndarray, use: np.ndarray | None = None) -> float:
    """Median object-centre error (m); NaN when no observation overlaps."""
    e = object_centre_errors(est, gt, use)
    return float(np.median(e)) if len(e) else float("nan")
