"""pose: stereo VO on a hand-made ray-cast room (exact depth/poses), with and without a moving object."""
import numpy as np
import pytest

from mllm4d import geom_metrics as gm, pose, stereo
from tests.fixtures_stereo import room_clip


@pytest.fixture(scope="module")
def moving_clip():
    return room_clip(T=10, moving=True)


def _depth(clip):
    return stereo.clip_depth(clip.left, clip.right, clip.K, clip.baseline, stereo.StereoConfig(min_depth=0.5))


def test_lift_rejects_depth_edges_and_nan():
    depth = np.full((10, 10), 2.0, np.float32)
    depth[:, 5:] = 4.0
    depth[0, 0] = np.nan
    K = np.array([[10.0, 0, 5], [0, 10, 5], [0, 0, 1]])
    xyz = pose.lift(np.array([[2.5, 2.5], [4.5, 3.0], [0.2, 0.2], [7.0, 7.0]], np.float32), depth, K)
    assert xyz[0] == pytest.approx([-0.5, -0.5, 2.0]) and xyz[3, 2] == pytest.approx(4.0)
    assert np.isnan(xyz[1]).all() and np.isnan(xyz[2]).all()


def test_poses_with_exact_depth_are_near_exact(moving_clip):
    c2w, diag = pose.estimate_poses(moving_clip.left, moving_clip.gt["depth"], moving_clip.K, moving_clip.baseline,
                                    pose.PoseConfig(), moving_clip.gt["instance"] >= 0,
                                    first_pose=moving_clip.gt["camera2world"][0])
    assert c2w.shape == (10, 3, 4) and not diag["pose_failed_frames"]
    assert np.allclose(c2w[0], moving_clip.gt["camera2world"][0])
    assert gm.ate_rmse(c2w, moving_clip.gt["camera2world"]) < 0.008


@pytest.mark.parametrize("use_masks", [True, False])
def test_poses_with_stereo_depth(moving_clip, use_masks):
    """SGBM depth; without masks the moving box must not corrupt the trajectory (RANSAC + 3D second pass)."""
    depth = _depth(moving_clip)
    masks = moving_clip.gt["instance"] == 0 if use_masks else None
    c2w, diag = pose.estimate_poses(moving_clip.left, depth, moving_clip.K, moving_clip.baseline, pose.PoseConfig(), masks)
    m = gm.pose_metrics(c2w, moving_clip.gt["camera2world"])
    assert m["ate_m"] < 0.01 and m["rpe_rot_deg"] < 0.3, m
    assert np.allclose(c2w[0], np.eye(4)[:3]), "anchored at identity by default"


def test_static_camera_stays_put():
    clip = room_clip(T=5, moving=False, speed=0.0)
    gtp = clip.gt["camera2world"]
    c2w, _ = pose.estimate_poses(clip.left, clip.gt["depth"], clip.K, clip.baseline, pose.PoseConfig(), first_pose=gtp[0])
    assert np.abs(c2w[:, :, 3] - gtp[:, :, 3]).max() < 0.03


def test_textureless_frames_fall_back_and_report():
    clip = room_clip(T=4, moving=False)
    flat = np.full_like(clip.left, 128)
    c2w, diag = pose.estimate_poses(flat, clip.gt["depth"], clip.K, clip.baseline, pose.PoseConfig())
    assert diag["pose_failed_frames"] == [1, 2, 3] and np.isfinite(c2w).all()


def test_second_pass_flags_points_moving_along_the_ray():
    """Points that slid 0.5 m along their viewing ray reproject perfectly (RANSAC keeps them), but disagree
    with the frame's own stereo depth: the 3D pass must flag them dynamic and keep the static ones."""
    rng = np.random.default_rng(0)
    K = np.array([[260.0, 0, 160], [0, 260, 120], [0, 0, 1]])
    Xc = np.column_stack([rng.uniform(-2, 2, 300), rng.uniform(-1.5, 1.5, 300), rng.uniform(2, 5, 300)])
    uv = Xc[:, :2] / Xc[:, 2:] * 260 + [160, 120]
    xyz_t = Xc.copy()
    moving = np.arange(300) < 90
    xyz_t[moving] *= (1 + 0.5 / Xc[moving, 2])[:, None]   # the object is now 0.5 m farther along the same ray
    T, keep, dyn = pose.solve_frame(Xc, uv, xyz_t, K, 0.12, pose.PoseConfig())
    assert np.allclose(T, np.eye(4), atol=1e-6)
    assert dyn[moving].mean() > 0.8 and not dyn[~moving].any() and not (keep & dyn).any()


def test_grouped_guided_match_equals_one_call_per_group():
    # _solve_refs matches all reference frames in one call; it must give what one call per frame gives
    from scipy.spatial import cKDTree
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 100, (80, 2))
    desc_t = rng.integers(0, 50, (80, 128)).astype(np.float32)
    tree = cKDTree(kp)
    parts, expect = [], []
    for g in range(3):
        pick = rng.choice(80, 60, replace=False)
        uv = kp[pick] + rng.normal(0, 1.0, (60, 2))
        desc = desc_t[pick] + rng.normal(0, 3.0, (60, 128)).astype(np.float32)
        ir, it = pose.guided_match(uv, desc, tree, desc_t, 6.0, 0.8)
        expect.append((ir + 60 * g, it))
        parts.append((uv, desc, np.full(60, g)))
    uv, desc, group = map(np.concatenate, zip(*parts))
    ir, it = pose.guided_match(uv, desc, tree, desc_t, 6.0, 0.8, group=group)
    assert len(ir) > 100
    assert np.array_equal(ir, np.concatenate([e[0] for e in expect]))
    assert np.array_equal(it, np.concatenate([e[1] for e in expect]))


def test_downscaled_sift_keypoints_are_in_full_resolution_pixels(moving_clip):
    """sift_scale < 1 detects on a resized image; keypoints come back in full-resolution coordinates (they land
    on the same image structure as full-scale keypoints) and the poses stay accurate."""
    img, depth, K = moving_clip.left[0], moving_clip.gt["depth"][0], np.asarray(moving_clip.K, float)
    full = pose.detect(img, depth, K, pose.PoseConfig())
    small = pose.detect(img, depth, K, pose.PoseConfig(sift_scale=0.6))
    assert len(small.kp) >= 20
    H, W = depth.shape
    assert (small.kp >= -0.5).all() and (small.kp[:, 0] <= W - 0.5).all() and (small.kp[:, 1] <= H - 0.5).all()
    dist, _ = pose.cKDTree(full.kp).query(small.kp)
    assert np.median(dist) < 0.45, np.median(dist)  # 0.24 px; without the half-pixel shift 0.62, unscaled 6.9
    c2w, diag = pose.estimate_poses(moving_clip.left, moving_clip.gt["depth"], moving_clip.K, moving_clip.baseline,
                                    pose.PoseConfig(sift_scale=0.6), moving_clip.gt["instance"] >= 0,
                                    first_pose=moving_clip.gt["camera2world"][0])
    assert not diag["pose_failed_frames"] and gm.ate_rmse(c2w, moving_clip.gt["camera2world"]) < 0.01
