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
