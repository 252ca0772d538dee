"""Hand-made stereo test scenes with exact ground truth, independent of the production renderer.

``room_clip`` ray-casts a textured room with two textured boxes (one may move) for a camera that dollies,
sways and yaws; depth, instance ids and camera2world are exact. Used by tests/test_pose.py and
tests/test_curate.py (small sizes keep them fast).
"""
import cv2
import numpy as np

from mllm4d import clips

ROOM = np.array([[-4.0, -4.0, 0.0], [4.0, 4.0, 3.0]])
_TEX_PX_PER_M = 80


def _noise_texture(n, seed):
    rng = np.random.default_rng(seed)
    img = np.zeros((n, n), np.float32)
    for c in (2, 4, 8, 16, 32, 64):
        g = rng.random((n // c, n // c)).astype(np.float32)
        g = np.concatenate([g, g[:, :3]], 1)
        g = np.concatenate([g, g[:3]], 0)  # periodic so that BORDER_WRAP sampling has no seams
        img += cv2.resize(g, (g.shape[1] * c, g.shape[0] * c), interpolation=cv2.INTER_CUBIC)[:n, :n] * (c / 64) ** 0.3
    return ((img - img.min()) / (img.max() - img.min()) * 200 + 30).astype(np.float32)


TEX = [_noise_texture(512, s) for s in range(7)]


def look_rotation(yaw):
    """camera-to-world rotation of a level camera looking along world +Y rotated by ``yaw`` about +Z."""
    base = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # columns: cam x -> +X, cam y -> -Z, cam z -> +Y
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ base


def raycast(c2w, K, H, W, boxes):
    """Grey image (H,W) uint8, z-depth (H,W) float32, instance (H,W) int16 (-1 = room) of a textured room
    with axis-aligned textured boxes [(lo (3,), hi (3,))] seen by camera-to-world pose ``c2w`` (3,4)."""
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    dc = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    d = dc @ c2w[:, :3].T
    o = c2w[:, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t_room = np.nanmin(np.where(d != 0, (np.where(d > 0, ROOM[1], ROOM[0]) - o) / d, np.inf), axis=-1)
    best, inst = t_room.copy(), np.full((H, W), -1, np.int16)
    for m, (lo, hi) in enumerate(boxes):
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (lo - o) / d, (hi - o) / d
        tn, tf = np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)
        hit = (tn <= tf) & (tn > 0) & (tn < best)
        best[hit], inst[hit] = tn[hit], m
    P = o + best[..., None] * d
    img = np.zeros((H, W), np.float32)
    face = np.argmin(np.stack([np.minimum(np.abs(P[..., k] - ROOM[0, k]), np.abs(P[..., k] - ROOM[1, k]))
                               for k in range(3)], -1), -1)
    for m, (lo, hi) in enumerate(boxes):
        sel = inst == m
        dist = np.stack([np.minimum(np.abs(P[..., k] - lo[k]), np.abs(P[..., k] - hi[k])) for k in range(3)], -1)
        face[sel] = np.argmin(dist, -1)[sel]
    for k in range(3):  # texture each face by the two world coordinates spanning it
        a, b = [i for i in range(3) if i != k]
        for tex_id, sel in ((k, (face == k) & (inst < 0)), (3 + min(k, 2), (face == k) & (inst >= 0))):
            if sel.any():
                mx = np.where(sel, P[..., a] * _TEX_PX_PER_M, 0).astype(np.float32)
                my = np.where(sel, P[..., b] * _TEX_PX_PER_M, 0).astype(np.float32)
                img[sel] = cv2.remap(TEX[tex_id], mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)[sel]
    zdepth = best.astype(np.float32)  # rays have unit camera-z, so t is the z-depth
    return np.clip(img, 0, 255).astype(np.uint8), zdepth, inst


def room_clip(T=10, H=240, W=320, f=260.0, baseline=0.12, moving=True, speed=0.08, name="room"):
    """A StereoClip of the room: camera dollies forward with sway and yaw; optional box moving sideways.

    GT: depth, instance and camera2world (exact). Objects: one box (moving) and one static box.
    """
    K = np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1]])
    L, R, D, I, P = [], [], [], [], []
    for t in range(T):
        c2w = np.zeros((3, 4))
        c2w[:, :3] = look_rotation(0.01 * t)
        c2w[:, 3] = [0.03 * np.sin(0.5 * t), -2.0 + speed * t, 1.4 + 0.01 * t]
        shift = 0.15 * t if moving else 0.0
        boxes = [(np.array([-1.2 + shift, 0.5, 0.0]), np.array([-0.4 + shift, 1.2, 0.9])),
                 (np.array([0.8, 1.0, 0.0]), np.array([1.5, 1.6, 1.4]))]
        gl, d, inst = raycast(c2w, K, H, W, boxes)
        c2w_r = c2w.copy()
        c2w_r[:, 3] = c2w[:, 3] + c2w[:, 0] * baseline
        gr, _, _ = raycast(c2w_r, K, H, W, boxes)
        L.append(np.repeat(gl[..., None], 3, 2)), R.append(np.repeat(gr[..., None], 3, 2))
        D.append(d), I.append(inst), P.append(c2w)
    gt = {"depth": np.stack(D), "instance": np.stack(I), "camera2world": np.stack(P)}
    return clips.StereoClip(name, np.stack(L), np.stack(R), K, baseline, np.arange(T) / 10.0, "synthetic", gt,
                            objects={"names": ["red box", "green cabinet"], "descriptions": ["the red box", "the green cabinet"],
                                     "categories": ["box", "furniture"]})
