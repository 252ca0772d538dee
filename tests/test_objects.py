"""objects: exact centres on hand-made depth, erosion + gating, truncation by border and stereo band,
visibility estimate, point subsampling and the ClipMeta contract."""
import numpy as np
import pytest

from mllm4d import clips, objects

K = np.array([[100.0, 0, 49.5], [0, 100, 39.5], [0, 0, 1]])


def scene(T=3, H=80, W=100, box=(30, 50, 40, 60), z_obj=2.0, z_bg=5.0):
    """Depth (T,H,W) of a fronto-parallel square object (rows r0:r1, cols c0:c1) in front of a wall."""
    depth = np.full((T, H, W), z_bg, np.float32)
    masks = np.full((T, H, W), -1, np.int16)
    r0, r1, c0, c1 = box
    depth[:, r0:r1, c0:c1] = z_obj
    masks[:, r0:r1, c0:c1] = 0
    c2w = np.tile(np.eye(4)[:3], (T, 1, 1))
    return depth, masks, c2w


def expected_centre(box, z):
    r0, r1, c0, c1 = box
    u, v = np.meshgrid(np.arange(c0, c1), np.arange(r0, r1))
    return np.array([((u - K[0, 2]) / K[0, 0] * z).mean(), ((v - K[1, 2]) / K[1, 1] * z).mean(), z])


def observe(depth, masks, c2w, band=0, **kw):
    cfg = objects.ObjectConfig(**{"erode_px": 2, "min_points": 5, **kw})
    return objects.observe_objects(depth, c2w, K, 0.12, masks, int(masks.max()) + 1, band, cfg, np.random.default_rng(0))


def test_centre_is_exact_mean_of_visible_points_and_moves_with_camera():
    depth, masks, c2w = scene()
    c2w[1, :, 3] = [0.5, 0.0, 1.0]  # camera moved: the same pixels are a different world point
    obs = observe(depth, masks, c2w)
    want = expected_centre((32, 48, 42, 58), 2.0)  # eroded by 2 px: symmetric, same mean as the full mask
    assert obs.centre[0, 0] == pytest.approx(want, abs=1e-6)
    assert obs.centre[1, 0] == pytest.approx(want + [0.5, 0, 1.0], abs=1e-6)
    assert obs.valid.all() and not obs.truncated.any()


def test_erosion_and_gate_remove_bleeding():
    depth, masks, c2w = scene()
    masks[:, 29, 40:60] = 0  # mask one row too tall: that row sees the wall (5 m) -> bleeding
    depth[:, 45, 45] = 9.0   # a stereo outlier inside the object
    raw = observe(depth, masks, c2w, erode_px=0, depth_gate_m=100.0)
    clean = observe(depth, masks, c2w, erode_px=2, depth_gate_m=0.5)
    assert abs(raw.centre[0, 0, 2] - 2.0) > 0.1
    assert clean.centre[0, 0, 2] == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("box,band,truncated", [
    ((30, 50, 40, 60), 0, False),
    ((0, 20, 40, 60), 0, True),      # touches the top border
    ((30, 50, 80, 100), 0, True),    # touches the right border
    ((30, 50, 10, 30), 16, True),    # reaches into the SGBM-invalid left band
    ((30, 50, 20, 40), 16, False),
    ((30, 50, 2, 30), 0, True),      # padded stereo: left of its own disparity (100*0.12/2 = 6 px)
])
def test_truncation(box, band, truncated):
    depth, masks, c2w = scene(box=box)
    obs = observe(depth, masks, c2w, band=band)
    assert obs.truncated[0, 0] == truncated and obs.valid[0, 0] == (not truncated)


def test_visible_fraction_estimate_and_missing_object():
    depth, masks, c2w = scene()
    masks[1, 30:50, 50:60] = -1   # half occluded in frame 1
    masks[2] = -1                 # not seen in frame 2
    obs = observe(depth, masks, c2w)
    assert obs.visible_frac[0, 0] == pytest.approx(1.0) and obs.visible_frac[1, 0] == pytest.approx(0.5)
    assert np.isnan(obs.centre[2, 0]).all() and obs.counts[2, 0] == 0 and not obs.valid[2, 0]
    strict = observe(depth, masks, c2w, min_visible_frac=0.6)
    assert not strict.valid[1, 0] and strict.valid[0, 0]


def test_subsample_and_meta_roundtrip(tmp_path):
    depth, masks, c2w = scene()
    masks[:, 5:15, 70:80] = 1
    obs = observe(depth, masks, c2w, max_points=50)
    assert (obs.counts <= 50).all() and obs.counts.sum() == len(obs.points)
    meta = objects.build_meta("c0", np.arange(3) / 10, c2w, K, 0.12, (80, 100), obs, ["a", "b"], ["the a", "the b"], ["x", "y"])
    back = clips.load_meta(clips.save_meta(tmp_path / "c0.npz", meta))
    assert back.obj_names == ("a", "b") and np.allclose(back.points(1, 1), meta.points(1, 1))
    assert back.source == "curated" and back.camera2world.shape == (3, 3, 4)
    with pytest.raises(ValueError, match="obj_names"):
        objects.build_meta("c0", np.arange(3) / 10, c2w, K, 0.12, (80, 100), obs, ["a"], ["x", "y"], ["x", "y"])


def test_fill_rim_recovers_full_mask_centroid_of_non_convex_object():
    """Erosion removes an L-shape's rim unevenly (biased centroid); filling the rim's depth from the interior
    brings back every visible pixel, so the centroid matches the GT definition (mean over the full mask)."""
    depth, masks, c2w = scene(box=(30, 50, 40, 60))
    depth[:, 50:56, 40:70] = 2.0
    masks[:, 50:56, 40:70] = 0   # a foot: the mask is now an L
    vs, us = np.nonzero(masks[0] == 0)
    want = np.array([((us - K[0, 2]) / K[0, 0] * 2).mean(), ((vs - K[1, 2]) / K[1, 1] * 2).mean(), 2.0])
    filled = observe(depth, masks, c2w, fill_rim=True)
    eroded = observe(depth, masks, c2w, fill_rim=False)
    assert filled.centre[0, 0] == pytest.approx(want, abs=1e-5)
    assert np.linalg.norm(eroded.centre[0, 0] - want) > 0.01


def test_ray_sigma_grows_with_depth_squared():
    c2w = np.tile(np.eye(4)[:3], (2, 1, 1))
    c2w[1, :, 3] = [0.0, 0.0, -1.0]                       # camera 1 m further back: the same point is 1 m deeper
    centre = np.array([[[0.3, 0.1, 2.0]], [[0.3, 0.1, 2.0]]])
    sig = objects.ray_sigma(centre, c2w, fb=31.2, disparity_sigma_px=0.1, floor_m=0.0)
    assert sig[:, 0] == pytest.approx([0.1 * 4 / 31.2, 0.1 * 9 / 31.2])


def test_smooth_tracks_keeps_smooth_motion_and_removes_noise_and_outliers():
    T, rng = 32, np.random.default_rng(0)
    t = np.arange(T)[:, None]
    truth = np.array([1.0, 0.5, 4.0]) + t * [0.03, 0.0, 0.02] + t ** 2 * [0.0, 0.001, 0.0]   # quadratic in time
    sigma = np.full((T, 1), 0.03)
    use = np.ones((T, 1), bool)
    exact = objects.smooth_tracks(truth[:, None], use, sigma, 4)
    assert exact[:, 0] == pytest.approx(truth, abs=1e-9)        # a local quadratic reproduces smooth motion
    noisy = truth + rng.normal(0, 0.03, (T, 1)) * [0.0, 0.0, 1.0]   # depth noise along the viewing ray (+Z)
    noisy[10, 2] += 0.5                                         # one stereo outlier frame
    use[20] = False                                             # an unusable frame is left alone
    noisy[20] = [9.0, 9.0, 9.0]
    sm = objects.smooth_tracks(noisy[:, None], use, sigma, 4)[:, 0]
    err_raw = np.abs(noisy - truth)[use[:, 0], 2]
    err_sm = np.abs(sm - truth)[use[:, 0], 2]
    assert np.median(err_sm) < 0.7 * np.median(err_raw)
    assert abs(sm[10, 2] - truth[10, 2]) < 0.05                # the outlier takes its neighbours' value
    assert sm[20] == pytest.approx([9.0, 9.0, 9.0])
    assert objects.smooth_tracks(noisy[:, None], use, sigma, 0)[:, 0] == pytest.approx(noisy)


def test_observe_objects_smooths_per_frame_depth_noise_of_a_moving_object():
    T, H, W = 24, 80, 100
    rng = np.random.default_rng(1)
    depth = np.full((T, H, W), 5.0, np.float32)
    masks = np.full((T, H, W), -1, np.int16)
    z_true = 2.0 + 0.02 * np.arange(T)                            # receding object, fixed image box
    z_meas = z_true + rng.normal(0, 0.03, T)                       # object-level stereo error, new each frame
    for t in range(T):
        depth[t, 30:50, 40:60] = z_meas[t]
        masks[t, 30:50, 40:60] = 0
    c2w = np.tile(np.eye(4)[:3], (T, 1, 1))
    want = np.array([expected_centre((30, 50, 40, 60), z)[2] for z in z_true])
    raw = observe(depth, masks, c2w, smooth_half_window=0).centre[:, 0, 2]
    sm = observe(depth, masks, c2w).centre[:, 0, 2]
    assert raw == pytest.approx(z_meas, abs=1e-5)                 # per-frame: the measured depth
    assert np.median(np.abs(sm - want)) < 0.7 * np.median(np.abs(raw - want))
