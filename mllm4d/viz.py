"""Figures for curation: a per-frame depth/mask panel, an interactive 4D viewer and a top-down trajectory plot.

Frames and units follow docs/FORMATS.md: ``camera2world`` (T,3,4) OpenCV axes (+X right, +Y down, +Z
forward), metres, world Z-up for synthetic scenes; ``K`` (3,3) pixels; depth is z-depth in metres with
inf/NaN/<=0 meaning "no depth". matplotlib figures are returned (not shown); the 4D viewer is a plotly
figure whose frames (one per video frame) hold the point cloud, the camera frustum and the object markers,
with a slider and a play button. ``save_html`` writes a self-contained (offline) HTML file atomically.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import common

_PALETTE = np.array([[230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                     [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128]]) / 255.0


def _valid(depth: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.isfinite(depth) & (depth > 0)


def instance_rgb(inst: np.ndarray) -> np.ndarray:
    """(H,W,3) float colours for an int instance map: objects (>= 0) from a 10-colour palette, room / background
    (< 0) in grey levels."""
    out = np.empty(inst.shape + (3,))
    obj = inst >= 0
    out[obj] = _PALETTE[inst[obj] % len(_PALETTE)]
    out[~obj] = (0.25 + 0.08 * (-inst[~obj] % 6))[:, None]
    return out


def depth_mask_panel(clip, meta_or_depth=None, t: int = 0, vmax: float | None = None):
    """matplotlib Figure for frame ``t`` of a ``clips.StereoClip``: left, right, GT depth (if ``clip.gt``),
    an estimated depth (if ``meta_or_depth`` is a (T,H,W) or (H,W) array) and the instance mask (GT, or
    ``clip.masks``). If ``meta_or_depth`` is a ``clips.ClipMeta``, its object points and centres at frame t
    are projected onto the left image instead. Depth panels share one colour scale (metres)."""
    import matplotlib.pyplot as plt
    gt = clip.gt or {}
    est, meta = None, None
    if isinstance(meta_or_depth, np.ndarray):
        est = meta_or_depth[t] if meta_or_depth.ndim == 3 else meta_or_depth
    elif meta_or_depth is not None:
        meta = meta_or_depth
    panels = [("left", clip.left[t]), ("right", clip.right[t])]
    if "depth" in gt:
        panels.append(("GT depth [m]", gt["depth"][t]))
    if est is not None:
        panels.append(("estimated depth [m]", est))
    inst = gt["instance"][t] if "instance" in gt else (clip.masks[t] if clip.masks is not None else None)
    if inst is not None:
        panels.append(("instances", instance_rgb(inst)))
    depths = [p[1] for p in panels if "depth" in p[0]]
    if vmax is None and depths:
        vmax = float(max(np.percentile(d[_valid(d)], 99) if _valid(d).any() else 1.0 for d in depths))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 2.9), squeeze=False)
    for ax, (title, img) in zip(axes[0], panels):
        if "depth" in title:
            im = ax.imshow(np.where(_valid(img), img, np.nan), cmap="turbo", vmin=0.0, vmax=vmax)
            fig.colorbar(im, ax=ax, fraction=0.035, pad=0.02)
        else:
            ax.imshow(img)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    if meta is not None:
        ax, P = axes[0][0], meta.camera2world[t]
        for m in range(meta.num_objects):
            marks = ((meta.points(t, m), dict(s=2, alpha=0.6)), (meta.obj_centre[t, m][None], dict(s=40, marker="x")))
            for pts, kw in marks:
                pts = pts[np.all(np.isfinite(pts), axis=1)]
                if len(pts):
                    pc = (pts - P[:, 3]) @ P[:, :3]
                    uv = pc[:, :2] / pc[:, 2:] * np.diag(meta.K)[:2] + meta.K[:2, 2]
                    ax.scatter(uv[:, 0], uv[:, 1], color=_PALETTE[m % len(_PALETTE)], **kw)
        ax.set_xlim(-0.5, clip.left.shape[2] - 0.5)
        ax.set_ylim(clip.left.shape[1] - 0.5, -0.5)
    fig.suptitle(f"{clip.name}  frame {t}", fontsize=10)
    fig.tight_layout()
    return fig


def _frustum(P: np.ndarray, K: np.ndarray, size: tuple[int, int], scale: float) -> np.ndarray:
    """(17,3) polyline (NaN-separated) of a camera frustum of depth ``scale`` m in world coordinates: four
    rays from the centre to the image corners, then the closed far rectangle."""
    H, W = size
    uv = np.array([[-0.5, -0.5], [W - 0.5, -0.5], [W - 0.5, H - 0.5], [-0.5, H - 0.5]])
    rays = np.c_[(uv - K[:2, 2]) / np.diag(K)[:2], np.ones(4)] * scale
    c = (rays @ P[:, :3].T) + P[:, 3]
    o, nan = P[:, 3], np.full(3, np.nan)
    return np.array([o, c[0], nan, o, c[1], nan, o, c[2], nan, o, c[3], nan, c[0], c[1], c[2], c[3], c[0]])


def viewer_4d(frames_rgb: np.ndarray, depth: np.ndarray, K: np.ndarray, camera2world: np.ndarray,
              obj_centre: np.ndarray | None = None, obj_names: tuple[str, ...] | list[str] = (),
              max_points: int = 3000, max_depth: float = 20.0, frustum_scale: float = 0.3, title: str = ""):
    """Interactive plotly 4D viewer of a clip in world coordinates.

    frames_rgb (T,H,W,3) uint8; depth (T,H,W) z-depth m (inf/NaN/<=0 = none); K (3,3); camera2world (T,3,4);
    obj_centre (T,M,3) world m (NaN = unobserved) with ``obj_names`` (M,). Per frame (plotly animation
    frames): <= ``max_points`` depth pixels lifted to world points coloured by RGB (evenly spaced over the
    valid pixels, deterministic), the camera frustum and the object markers. Static: the camera trajectory
    and the object tracks. A slider and a play button step through the frames.
    """
    import plotly.graph_objects as go
    T, H, W = depth.shape
    v, u = np.mgrid[:H, :W]
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones((H, W))], -1)
    M = 0 if obj_centre is None else obj_centre.shape[1]
    names = list(obj_names) + [f"object {m}" for m in range(len(obj_names), M)]
    cols = [f"rgb({int(255 * c[0])},{int(255 * c[1])},{int(255 * c[2])})" for c in _PALETTE]
    lv = np.arange(8) * 32 + 16
    steps = [f"rgb({lv[i // 64]},{lv[i // 8 % 8]},{lv[i % 8]})" for i in range(512)]
    pal = dict(colorscale=[[(i + e) / 512, c] for i, c in enumerate(steps) for e in (0, 1)], cmin=-0.5,
               cmax=511.5, showscale=False)

    def per_frame(t, first=False):
        ok = _valid(depth[t]) & (depth[t] < max_depth)
        idx = np.flatnonzero(ok)
        idx = idx[np.linspace(0, len(idx) - 1, min(len(idx), max_points)).astype(int)] if len(idx) else idx
        pc = rays.reshape(-1, 3)[idx] * depth[t].reshape(-1)[idx, None]
        pw = pc @ camera2world[t, :, :3].T + camera2world[t, :, 3]
        rgb = frames_rgb[t].reshape(-1, 3)[idx]
        fr = _frustum(camera2world[t], K, (H, W), frustum_scale)
        # Colours as indices into a fixed 8x8x8 RGB palette (numeric arrays): per-point colour strings make
        # plotly validate every string (~0.4 s per frame) and triple the HTML size.
        q = rgb.astype(np.int64) // 32
        out = [go.Scatter3d(x=pw[:, 0], y=pw[:, 1], z=pw[:, 2], mode="markers", name="points",
                            marker=dict(size=1.5, color=q[:, 0] * 64 + q[:, 1] * 8 + q[:, 2],
                                        **(pal if first else {}))),   # frames merge into the first trace
               go.Scatter3d(x=fr[:, 0], y=fr[:, 1], z=fr[:, 2], mode="lines", name="camera",
                            line=dict(color="black", width=4))]
        if M:
            c = obj_centre[t]
            out.append(go.Scatter3d(x=c[:, 0], y=c[:, 1], z=c[:, 2], mode="markers+text", text=names,
                                    name="objects", marker=dict(size=6, color=[cols[m % 10] for m in range(M)])))
        return out

    data = per_frame(0, first=True)
    n_dyn = len(data)
    cc = camera2world[:, :, 3]
    data.append(go.Scatter3d(x=cc[:, 0], y=cc[:, 1], z=cc[:, 2], mode="lines+markers", name="camera path",
                             line=dict(color="black", width=2), marker=dict(size=2)))
    for m in range(M):
        c = obj_centre[:, m]
        data.append(go.Scatter3d(x=c[:, 0], y=c[:, 1], z=c[:, 2], mode="lines", name=f"{names[m]} track",
                                 line=dict(color=cols[m % 10], width=3)))
    frames = [go.Frame(data=per_frame(t), traces=list(range(n_dyn)), name=str(t)) for t in range(T)]
    step = lambda t: dict(method="animate", label=str(t), args=[[str(t)], dict(mode="immediate",  # noqa: E731
                          frame=dict(duration=0, redraw=True), transition=dict(duration=0))])
    fig = go.Figure(data=data, frames=frames)
    fig.update_layout(
        title=title, scene=dict(aspectmode="data", xaxis_title="x [m]", yaxis_title="y [m]", zaxis_title="z [m]"),
        margin=dict(l=0, r=0, t=30, b=0), legend=dict(itemsizing="constant"),
        sliders=[dict(active=0, currentvalue=dict(prefix="frame "), steps=[step(t) for t in range(T)])],
        updatemenus=[dict(type="buttons", showactive=False, x=0.05, y=0.05, buttons=[
            dict(label="play", method="animate", args=[None, dict(frame=dict(duration=150, redraw=True),
                                                                  fromcurrent=True, transition=dict(duration=0))]),
            dict(label="pause", method="animate", args=[[None], dict(mode="immediate", frame=dict(duration=0))])])])
    return fig


def viewer_from_clip(clip, meta=None, depth: np.ndarray | None = None, **kw):
    """``viewer_4d`` for a ``clips.StereoClip``: depth = ``depth`` or the GT depth; poses and object centres
    from ``meta`` (a ``clips.ClipMeta``) or the clip's GT metadata."""
    meta = meta if meta is not None else (clip.gt or {}).get("meta")
    depth = depth if depth is not None else clip.gt["depth"]
    c2w = meta.camera2world if meta is not None else clip.gt["camera2world"]
    return viewer_4d(clip.left, depth, clip.K, c2w, None if meta is None else meta.obj_centre,
                     () if meta is None else meta.obj_names, title=kw.pop("title", clip.name), **kw)


def save_html(fig, path: str | Path) -> Path:
    """Write a plotly figure as a self-contained HTML file (plotly.js inlined: works offline), atomically."""
    return common.atomic_write_text(path, fig.to_html(include_plotlyjs=True, full_html=True))


def trajectory_plot(camera2world_est: np.ndarray, camera2world_gt: np.ndarray | None = None,
                    labels: tuple[str, str] = ("estimated", "ground truth")):
    """Top-down (world x-y) matplotlib Figure of camera centres (T,3,4 poses), with the viewing direction
    every few frames and the start marked; GT dashed when given."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for P, lab, style in ((camera2world_gt, labels[1], "--"), (camera2world_est, labels[0], "-")):
        if P is None:
            continue
        c, f = P[:, :2, 3], P[:, :2, 2]
        line, = ax.plot(c[:, 0], c[:, 1], style, label=lab)
        k = slice(None, None, max(1, len(P) // 8))
        ax.quiver(c[k, 0], c[k, 1], f[k, 0], f[k, 1], color=line.get_color(), angles="xy", scale_units="xy",
                  scale=4.0, width=0.005)
        ax.plot(*c[0], "o", color=line.get_color())
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x [m]")
    ax.set_ylabel("y [m]")
    ax.set_title("camera trajectory (top-down)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
