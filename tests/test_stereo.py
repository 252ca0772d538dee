"""stereo: known-disparity planes, the invalid band and its padding, WLS/refinement switches, Middlebury."""
import cv2
import numpy as np
import pytest

from mllm4d import geom_metrics as gm, stereo


def texture(h, w, seed=0):
    """Multi-octave value noise, (h,w) uint8: enough texture for SGBM at every scale."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w), np.float32)
    for c in (3, 6, 12, 24):
        g = rng.random((h // c + 2, w // c + 2)).astype(np.float32)
        img += cv2.resize(g, (g.shape[1] * c, g.shape[0] * c), interpolation=cv2.INTER_CUBIC)[:h, :w]
    img = (img - img.min()) / (img.max() - img.min()) * 255
    return img.astype(np.uint8)


def plane_pair(d, h=96, w=160, seed=0):
    """A fronto-parallel textured plane at disparity ``d`` px (x_right = x_left - d), RGB uint8 pair."""
    tex = texture(h, w + 80, seed).astype(np.float32)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32) + 40, np.arange(h, dtype=np.float32))
    left = cv2.remap(tex, xs, ys, cv2.INTER_CUBIC)
    right = cv2.remap(tex, xs + d, ys, cv2.INTER_CUBIC)
    to_rgb = lambda g: np.repeat(np.clip(g, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return to_rgb(left), to_rgb(right)


@pytest.mark.parametrize("d", [6.0, 9.3, 14.6])
@pytest.mark.parametrize("wls", [False, True])
def test_plane_disparity_is_subpixel_accurate(d, wls):
    left, right = plane_pair(d)
    cfg = stereo.StereoConfig(num_disparities=32, wls=wls, refine_iters=2)
    disp = stereo.disparity(left, right, cfg, 32)
    inner = disp[8:-8, 40:-8]
    assert np.isfinite(inner).mean() > 0.95
    assert np.nanmedian(np.abs(inner - d)) < 0.1
    assert np.isnan(disp[:, :32]).all(), "the left band SGBM cannot match must be invalid, not invented by WLS"


def test_refinement_removes_pixel_locking():
    left, right = plane_pair(9.3)
    raw = stereo.disparity(left, right, stereo.StereoConfig(num_disparities=32, wls=False, refine_iters=0), 32)
    ref = stereo.disparity(left, right, stereo.StereoConfig(num_disparities=32, wls=False, refine_iters=3), 32)
    err = lambda x: np.nanmean(np.abs(x[8:-8, 40:-8] - 9.3))
    assert err(ref) < 0.7 * err(raw)


def test_pad_left_recovers_band_only_where_visible():
    left, right = plane_pair(10.0)
    cfg = stereo.StereoConfig(num_disparities=32, wls=False, pad_left=True)
    disp = stereo.disparity(left, right, cfg, 32)
    band = disp[8:-8, 12:32]
    assert np.isfinite(band).mean() > 0.9 and np.nanmedian(np.abs(band - 10)) < 0.15
    assert np.isnan(disp[:, :8]).all(), "columns x < d see no right-image match"
    assert np.isfinite(disp[:, 8:10]).mean() < 0.1
    assert stereo.invalid_band(cfg, 260.0, 0.12) == 0
    assert stereo.invalid_band(stereo.StereoConfig(min_depth=0.5), 260.0, 0.12) == 64


def test_depth_from_disparity_and_clip_depth():
    z = stereo.depth_from_disparity(np.array([[10.0, np.nan, 0.0]]), 260.0, 0.12, max_depth=20)
    assert z[0, 0] == pytest.approx(3.12) and np.isnan(z[0, 1:]).all()
    left, right = plane_pair(13.0)
    K = np.array([[260.0, 0, 80], [0, 260, 48], [0, 0, 1]])
    depth = stereo.clip_depth(left[None], right[None], K, 0.12, stereo.StereoConfig(num_disparities=32))
    assert depth.shape == (1, 96, 160) and depth.dtype == np.float32
    assert np.nanmedian(depth[0, 8:-8, 40:]) == pytest.approx(260 * 0.12 / 13, rel=0.01)


def test_bad_config_and_shape():
    with pytest.raises(ValueError, match="multiple of 16"):
        stereo.resolved_num_disparities(stereo.StereoConfig(num_disparities=20), 260, 0.12)
    with pytest.raises(ValueError, match="shape"):
        stereo.disparity(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8), stereo.StereoConfig(), 16)


def test_middlebury_motorcycle_loose_bound():
    """Real stereo (Middlebury 2014 Motorcycle, bundled by scikit-image); calibration: reference/stereo.md §5.
    Measured 1.02 px EPE / 5.7 % bad-2px / AbsRel 0.015 (WLS with right SGBM + refinement); bounds are the probe's numbers x1.3."""
    skdata = pytest.importorskip("skimage.data")
    left, right, gt = skdata.stereo_motorcycle()
    gt = np.where(np.isfinite(gt), gt, np.nan)
    disp = stereo.disparity(left, right, stereo.StereoConfig(num_disparities=96, wls=True, wls_right_sgbm=True), 96)
    m = gm.disparity_metrics(disp, gt, bad_px=2.0)
    f, B, doffs = 994.978, 0.193001, 31.086
    absrel = gm.depth_absrel(stereo.depth_from_disparity(disp, f, B, doffs), f * B / (gt + doffs))
    assert m["epe"] < 1.7 and m["bad"] < 0.095 and absrel < 0.024 and m["density"] > 0.75


def test_warp_to_right_matches_a_right_view_sgbm():
    left, right = plane_pair(12.0)
    gl, gr = left[..., 0], right[..., 0]
    sgbm = stereo._matcher(32, 5, 1)
    raw = sgbm.compute(gl, gr)
    real = cv2.ximgproc.createRightMatcher(sgbm).compute(gr, gl)
    fake = stereo.warp_to_right(raw)
    both = (real < 0) & (fake < 0)
    assert both[8:-8, 20:-40].mean() > 0.9
    assert np.median(np.abs(real[both].astype(int) - fake[both])) <= 8   # within half a pixel (x16 fixed point)
    assert (fake[:, -8:] > 0).all(), "right-view pixels that no left pixel maps to stay invalid"


def test_warp_to_right_equals_the_scatter_definition():
    # the dense vectorised warp must equal the plain definition: pixel x with disparity d lands at
    # x - rint(d / 16); the largest disparity (nearest surface) wins; unmapped pixels are -(-16)
    rng = np.random.default_rng(3)
    disp16 = rng.integers(-16, 33 * 16, (40, 60)).astype(np.int16)
    disp16[:, :5] = -16
    disp16[0, 10:14] = [8, 24, 40, 56]  # exact .5 pixel shifts: round half to even, as np.rint
    ref = np.full(disp16.shape, -16, np.int32)
    for y, x in zip(*np.nonzero(disp16 > 0)):
        xr = x - int(np.rint(disp16[y, x] / 16.0))
        if xr >= 0:
            ref[y, xr] = max(ref[y, xr], int(disp16[y, x]))
    assert np.array_equal(stereo.warp_to_right(disp16), (-ref).astype(np.int16))


def test_refinement_on_the_valid_columns_equals_the_full_frame():
    # refine_subpixel works right of the invalid band only; its crop margin must make that exact. One valid
    # pixel in column 0 forces a full-frame refinement, which only changes results near column 0.
    left, right = plane_pair(12.3)
    gl, gr = left[..., 0], right[..., 0]
    disp = np.full(gl.shape, 12.0, np.float32)
    disp[:, :40] = np.nan
    disp[30:40, 60:70] = np.nan
    full_frame = disp.copy()
    full_frame[50, 0] = 1.0
    out = stereo.refine_subpixel(disp, gl, gr, iters=2, window=7)
    ref = stereo.refine_subpixel(full_frame, gl, gr, iters=2, window=7)
    assert np.array_equal(out[:, 20:], ref[:, 20:], equal_nan=True)
    assert np.isnan(out[:, :40]).all() and np.nanmean(np.abs(out[:, 50:-8] - 12.3)) < 0.05
