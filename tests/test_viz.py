"""Figures build from a tiny rendered clip; the 4D viewer HTML is written and holds every frame's data."""
import matplotlib
import numpy as np
import pytest

from mllm4d import render, scene, viz

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def clip():
    spec = scene.sample_scene(np.random.default_rng(5), num_frames=4, name="v5")
    return render.render_clip(spec, size=(30, 40), fx=32.5)


def test_depth_mask_panel(clip):
    import matplotlib.pyplot as plt
    for extra, n in ((None, 4), (clip.gt["depth"] * 1.1, 5), (clip.gt["meta"], 4)):
        fig = viz.depth_mask_panel(clip, extra, t=1)
        assert len([a for a in fig.axes if a.images]) == n
        plt.close(fig)


def test_instance_rgb_colours():
    inst = np.array([[0, 1, -1], [-2, 0, 11]], np.int16)
    rgb = viz.instance_rgb(inst)
    assert rgb.shape == (2, 3, 3)
    np.testing.assert_array_equal(rgb[0, 0], rgb[1, 1])                 # same id, same colour
    assert not np.allclose(rgb[0, 0], rgb[0, 1])
    assert np.allclose(rgb[0, 2], rgb[0, 2][0])                          # room surfaces are grey


def test_viewer_4d_html(clip, tmp_path):
    meta = clip.gt["meta"]
    fig = viz.viewer_from_clip(clip, max_points=200)
    T = clip.num_frames
    assert len(fig.frames) == T
    assert len(fig.layout.sliders[0].steps) == T
    pts = fig.frames[2].data[0]
    assert 0 < len(pts.x) <= 200
    # Points are world points: they lie inside the room (plus float slack).
    assert np.all(np.asarray(pts.z) > -1e-3) and np.all(np.asarray(pts.z) < 3.5)
    np.testing.assert_allclose(np.asarray(fig.frames[1].data[2].x, float), meta.obj_centre[1, :, 0])
    # Point colours: indices into the 8x8x8 palette held once by the first trace (frames merge into it).
    assert len(fig.data[0].marker.colorscale) == 1024 and fig.frames[2].data[0].marker.colorscale is None
    col = np.asarray(pts.marker.color)
    assert col.min() >= 0 and col.max() < 512 and len(col) == len(pts.x)
    path = viz.save_html(fig, tmp_path / "sub" / "v.html")
    html = path.read_text()
    assert path.stat().st_size > 1_000_000                               # plotly.js inlined: works offline
    assert meta.obj_names[0] in html and html.count('"name":"') >= T
    assert not list(path.parent.glob(".*.tmp"))                          # atomic write left no temp file


def test_trajectory_plot(clip):
    import matplotlib.pyplot as plt
    gt = clip.gt["camera2world"]
    est = gt.copy()
    est[:, :, 3] += 0.05
    fig = viz.trajectory_plot(est, gt)
    lines = fig.axes[0].get_lines()
    np.testing.assert_allclose(lines[0].get_xydata(), gt[:, :2, 3])
    np.testing.assert_allclose(lines[2].get_xydata(), est[:, :2, 3])
    plt.close(fig)
    plt.close(viz.trajectory_plot(est))


def test_frustum_geometry():
    P = np.eye(3, 4)
    P[:, 3] = [1.0, 2.0, 3.0]
    K = np.array([[10.0, 0, 4.5], [0, 10.0, 2.5], [0, 0, 1]])
    f = viz._frustum(P, K, (6, 10), scale=2.0)
    assert f.shape == (17, 3)
    np.testing.assert_allclose(f[0], [1, 2, 3])
    np.testing.assert_allclose(f[1], [1 - 1.0, 2 - 0.6, 5])               # top-left image corner at depth 2
    np.testing.assert_allclose(f[12], f[16])                              # the far rectangle is closed
