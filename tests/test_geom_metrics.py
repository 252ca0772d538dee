"""geom_metrics: exact values on hand-made inputs, invariances, and the NaN/empty edge cases."""
import numpy as np
import pytest

from mllm4d import geom_metrics as gm


def _rot(axis, a):
    c, s = np.cos(a), np.sin(a)
    i, j = [(1, 2), (0, 2), (0, 1)][axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def _traj(T=20, seed=0):
    rng = np.random.default_rng(seed)
    P = np.tile(np.eye(4), (T, 1, 1))
    for t in range(T):
        P[t, :3, :3] = _rot(2, 0.05 * t) @ _rot(0, 0.02 * np.sin(t))
        P[t, :3, 3] = [0.05 * t, 0.3 * np.sin(0.3 * t), 0.01 * t] + 0.001 * rng.normal(size=3)
    return P


def test_depth_metrics_exact():
    gt = np.array([[1.0, 2.0], [4.0, np.inf]])
    pred = np.array([[1.1, 2.0], [np.nan, 3.0]])
    m = gm.depth_metrics(pred, gt)
    assert m["density"] == pytest.approx(2 / 3)
    assert m["absrel"] == pytest.approx(0.05)
    assert m["within5"] == pytest.approx(0.5)  # 0.1 rel error is not within 5 %
    assert m["delta1"] == 1.0
    assert gm.depth_absrel(pred, gt) == m["absrel"]


def test_depth_metrics_empty_and_shape():
    m = gm.depth_metrics(np.full((2, 2), np.nan), np.ones((2, 2)))
    assert m["density"] == 0 and np.isnan(m["absrel"])
    with pytest.raises(ValueError, match="shape"):
        gm.depth_metrics(np.ones((2, 2)), np.ones((2, 3)))


def test_disparity_metrics():
    m = gm.disparity_metrics(np.array([1.0, 5.0, np.nan]), np.array([1.5, 2.0, 3.0]), bad_px=2.0)
    assert m["epe"] == pytest.approx(1.75) and m["bad"] == 0.5 and m["density"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("with_scale", [False, True])
def test_umeyama_recovers_transform(with_scale):
    rng = np.random.default_rng(1)
    src = rng.normal(size=(50, 3))
    R, t, s = _rot(1, 0.7) @ _rot(2, -0.3), np.array([1.0, -2.0, 0.5]), (1.3 if with_scale else 1.0)
    dst = s * src @ R.T + t
    R2, t2, s2 = gm.umeyama(src, dst, with_scale)
    assert np.allclose(R2, R, atol=1e-9) and np.allclose(t2, t, atol=1e-9) and s2 == pytest.approx(s)


def test_ate_invariant_to_rigid_world_change_and_sensitive_to_noise():
    gt = _traj()
    A = np.eye(4)
    A[:3, :3], A[:3, 3] = _rot(2, 1.0), [3, -1, 2]
    assert gm.ate_rmse(A @ gt, gt) < 1e-9
    noisy = gt.copy()
    noisy[:, :3, 3] += np.random.default_rng(0).normal(scale=0.01, size=(len(gt), 3))
    assert 0.005 < gm.ate_rmse(noisy, gt) < 0.02
    assert gm.ate_rmse(gt[:, :3, :], gt) < 1e-12  # (T,3,4) accepted


def test_rpe_exact_for_constant_step_error():
    gt = _traj(10)
    est = gt.copy()
    extra = np.eye(4)
    extra[:3, 3] = [0.002, 0, 0]
    for t in range(1, 10):  # every relative step gets 2 mm extra forward motion in the camera frame
        est[t] = est[t - 1] @ (np.linalg.inv(gt[t - 1]) @ gt[t]) @ extra
    tr, rot = gm.rpe(est, gt)
    assert tr == pytest.approx(0.002, rel=1e-6) and rot < 1e-6
    assert gm.drift_pct(est, gt) > 0


def test_pose_metrics_static_camera_does_not_crash():
    gt = np.tile(np.eye(4), (5, 1, 1))
    m = gm.pose_metrics(gt, gt)
    assert m["ate_m"] == 0 and np.isnan(m["drift_pct"])


def test_object_centre_errors():
    est = np.zeros((2, 2, 3))
    gt = np.zeros((2, 2, 3))
    gt[0, 0] = [0.03, 0.04, 0]
    est[1, 1] = np.nan
    e = gm.object_centre_errors(est, gt)
    assert sorted(e.tolist()) == pytest.approx([0, 0, 0.05])
    assert gm.object_center_err_m(est, gt) == 0
    assert np.isnan(gm.object_center_err_m(est, gt, use=np.zeros((2, 2), bool)))
