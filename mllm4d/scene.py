"""Seeded synthetic 4D scenes with exact ground truth: the embedded default data of 01_curation.

A ``SceneSpec`` is pure data (frozen dataclasses, JSON round trip): a textured box room, 2-6 objects
(boxes, spheres, cylinders) with closed-form motions, and a moving camera. ``sample_scenes`` draws many
at once (vectorised across scenes), ``sample_scene`` one. Everything a renderer or the solver needs
follows deterministically from a spec: ``camera2world`` (T,3,4), ``object_poses`` (T,M,4,4),
``object_centres`` (T,M,3), and ``gt_meta_fast`` / ``gt_meta_batch`` (4D metadata without rendering;
``benchmarks/render_bench.py`` measures both rates).

Frames and units: world is Z-up, metres, the room spans [-sx/2, sx/2] x [-sy/2, sy/2] x [0, sz]; objects
stand on the floor (z = 0). Poses are camera-to-world with OpenCV camera axes (+X right, +Y down,
+Z forward). Object local frames: origin at the shape's centre, local Z along world Z (objects only yaw).
Time: frame k is at ``k / fps`` seconds.

Stands in for paper §3 / §8.2 (Stereo4D clips + GroundedSAM2 + PixelRefer descriptions) in the
offline/CPU profiles. Deviations (synthetic by construction): rigid primitives instead of people and
vehicles; descriptions come from a template ("the small red box on the left"), not PixelRefer; names
("red box") are unique within a scene because colours are sampled without replacement.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass

import numpy as np

# category -> (shape, size ranges, static_only). Box: full extents (x, y, z); sphere: (radius,);
# cylinder: (radius, height). Ranges in metres. None is static-only since 2026-12-01: a static-only pillar made
# "does the pillar move?" answerable from its name (docs/DATASETS.md "Object names and windows").
CATEGORIES: dict[str, tuple[str, tuple[tuple[float, float], ...], bool]] = {
    "box": ("box", ((0.35, 0.8), (0.35, 0.8), (0.3, 0.7)), False),
    "crate": ("box", ((0.4, 0.7),), False),              # cube: one side length
    "cabinet": ("box", ((0.5, 0.8), (0.4, 0.6), (1.0, 1.5)), False),
    "ball": ("sphere", ((0.15, 0.35),), False),
    "barrel": ("cylinder", ((0.22, 0.35), (0.6, 1.0)), False),
    "drum": ("cylinder", ((0.2, 0.3), (0.3, 0.5)), False),
    "pillar": ("cylinder", ((0.15, 0.22), (1.3, 2.0)), False),
}
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.80, 0.15, 0.12), "green": (0.20, 0.62, 0.25), "blue": (0.15, 0.30, 0.80),
    "yellow": (0.90, 0.80, 0.15), "purple": (0.55, 0.25, 0.70), "orange": (0.95, 0.50, 0.10),
    "cyan": (0.15, 0.70, 0.80), "pink": (0.95, 0.50, 0.70), "white": (0.92, 0.92, 0.90),
    "brown": (0.50, 0.32, 0.18),
}
SHAPES = ("box", "sphere", "cylinder")
# Bump whenever a seed samples another scene: 01_curation redoes clips of another version instead of resuming
# them; tests/test_scene.py pins version 2's scenes.
GENERATOR_VERSION = 2
OBJECT_MOTIONS = ("static", "linear", "turning", "circling", "bouncing")
CAMERA_MOTIONS = ("static", "dolly", "pan", "orbit", "truck", "pedestal")


@dataclass(frozen=True)
class Texture:
    """Procedural albedo texture (rendered by ``render.texture_image``): multi-octave value noise around
    ``colour`` (RGB in [0,1]) with relative ``contrast``, an optional checker of ``checker`` contrast with
    ``checker_cells`` squares per period, repeating every ``period`` metres on the surface."""
    colour: tuple[float, float, float]
    seed: int
    contrast: float = 0.55
    checker: float = 0.0
    checker_cells: int = 4
    period: float = 2.0


@dataclass(frozen=True)
class Room:
    """Axis-aligned room: ``size`` = (sx, sy, sz) m; textures for floor, ceiling and the four walls in
    the order x-, x+, y-, y+ (render instance ids -1 floor, -2 ceiling, -3..-6 walls)."""
    size: tuple[float, float, float]
    floor: Texture
    ceiling: Texture
    walls: tuple[Texture, Texture, Texture, Texture]


@dataclass(frozen=True)
class Motion:
    """Closed-form object motion; ``position`` is the centre at t=0 (world m), ``yaw`` rad about +Z.

    static: fixed. linear: ``position + velocity * t``. turning: speed |velocity| along a heading that
    starts at atan2(velocity) and turns at ``yaw_rate`` rad/s (an arc); the body yaws with it.
    circling: the centre runs on a circle of ``radius`` at ``omega`` rad/s, starting at angle ``phase``
    (measured from the circle's centre), without spinning. bouncing: ``linear`` in x-y plus
    z = z0 + ``height`` * |sin(pi t / ``period`` + ``phase``)|.
    """
    kind: str
    position: tuple[float, float, float]
    yaw: float = 0.0
    velocity: tuple[float, float] = (0.0, 0.0)
    yaw_rate: float = 0.0
    radius: float = 0.0
    omega: float = 0.0
    phase: float = 0.0
    height: float = 0.0
    period: float = 1.0


@dataclass(frozen=True)
class ObjectSpec:
    """One object. ``size`` = full extents (x, y, z) in its local frame (sphere: (2r, 2r, 2r); cylinder:
    (2r, 2r, h), axis = local Z). ``name`` is short and unique ("red box"); ``description`` is the human
    referring expression ("the small red box on the left")."""
    name: str
    description: str
    category: str
    colour: str
    shape: str
    size: tuple[float, float, float]
    texture: Texture
    motion: Motion


@dataclass(frozen=True)
class CameraMotion:
    """Left-camera trajectory. Main motion ``kind`` in CAMERA_MOTIONS, plus optional handheld jitter.

    ``position`` (m) and ``yaw`` (rad, optical axis heading from +X towards +Y) at t=0; ``pitch`` rad
    (positive tilts down). dolly: moves along the initial heading at ``speed`` m/s (negative: backwards).
    truck: moves along the camera's right axis at ``speed``. pedestal: moves along world Z (up) at ``speed``. pan: rotates at ``yaw_rate`` rad/s in place. orbit: circles
    ``target`` (x, y) at ``yaw_rate`` rad/s, keeping the target straight ahead. Jitter: a sum of three
    sinusoids (0.4-2 Hz, phases from ``jitter_seed``) per axis, amplitude ``jitter_pos`` m on the
    position and ``jitter_rot`` rad on yaw/pitch/roll.
    """
    kind: str
    position: tuple[float, float, float]
    yaw: float
    pitch: float
    speed: float = 0.0
    yaw_rate: float = 0.0
    target: tuple[float, float] = (0.0, 0.0)
    jitter_pos: float = 0.0
    jitter_rot: float = 0.0
    jitter_seed: int = 0


@dataclass(frozen=True)
class SceneSpec:
    """A full clip specification. ``light`` is a point light (world m); shading is Lambert + ``ambient``."""
    name: str
    num_frames: int
    fps: float
    room: Room
    objects: tuple[ObjectSpec, ...]
    camera: CameraMotion
    light: tuple[float, float, float]
    ambient: float = 0.35

    @property
    def timestamps(self) -> np.ndarray:
        """(T,) float64 seconds."""
        return np.arange(self.num_frames, dtype=np.float64) / self.fps


# ----------------------------------------------------------------------------------------------------------
# JSON round trip
# ----------------------------------------------------------------------------------------------------------
def _build(tp: typing.Any, v: typing.Any) -> typing.Any:
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: _build(hints[f.name], v[f.name]) for f in dataclasses.fields(tp) if f.name in v})
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], x) for x in v)
        return tuple(_build(a, x) for a, x in zip(args, v, strict=True))
    return tp(v)


def to_json(spec: SceneSpec) -> str:
    return json.dumps(dataclasses.asdict(spec))


def from_json(text: str) -> SceneSpec:
    """Inverse of ``to_json`` (``from_json(to_json(s)) == s``)."""
    return _build(SceneSpec, json.loads(text))


# ----------------------------------------------------------------------------------------------------------
# Trajectories (closed form, vectorised over frames)
# ----------------------------------------------------------------------------------------------------------
def _trajectories(kind: np.ndarray, position: np.ndarray, yaw: np.ndarray, velocity: np.ndarray,
                  yaw_rate: np.ndarray, radius: np.ndarray, omega: np.ndarray, phase: np.ndarray,
                  height: np.ndarray, period: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(K,T,4) centre x, y, z (world m) and yaw (rad) of K motions at times ``t`` (T,) s.

    Arguments are the ``Motion`` fields as (K,) / (K,2) / (K,3) arrays, ``kind`` as indices into
    OBJECT_MOTIONS. One vectorised formula serves the sampler (many candidates at once) and finished specs.
    The result is a view of a (4,K,T) array (``_trajectories_soa``): each coordinate is contiguous.
    """
    return _trajectories_soa(kind, position, yaw, velocity, yaw_rate, radius, omega, phase, height, period,
                             t).transpose(1, 2, 0)


def _trajectories_soa(kind, position, yaw, velocity, yaw_rate, radius, omega, phase, height, period, t):
    """``_trajectories`` as (4,K,T): x, y, z, yaw planes (the sampler works on whole planes)."""
    out = np.empty((4, len(kind), len(t)))
    x, y, z, yw = out
    x[:], y[:], z[:], yw[:] = position[:, :1], position[:, 1:2], position[:, 2:], yaw[:, None]
    i = np.flatnonzero((kind == 1) | (kind == 4))                     # trig only on the rows that need it
    x[i] += velocity[i, :1] * t
    y[i] += velocity[i, 1:] * t
    i = np.flatnonzero(kind == 4)
    z[i] += height[i, None] * np.abs(np.sin(np.pi * t / period[i, None] + phase[i, None]))
    i = np.flatnonzero(kind == 2)                                     # arc of radius speed / yaw_rate
    if len(i):
        w, h0 = yaw_rate[i, None], np.arctan2(velocity[i, 1], velocity[i, 0])[:, None]
        arc, h = np.hypot(velocity[i, 0], velocity[i, 1])[:, None] / w, h0 + w * t
        x[i] += arc * (np.sin(h) - np.sin(h0))
        y[i] -= arc * (np.cos(h) - np.cos(h0))
        yw[i] += w * t
    i = np.flatnonzero(kind == 3)
    a = phase[i, None] + omega[i, None] * t
    x[i] += radius[i, None] * (np.cos(a) - np.cos(phase[i, None]))
    y[i] += radius[i, None] * (np.sin(a) - np.sin(phase[i, None]))
    return out


_MOTION_FIELDS = ("position", "yaw", "velocity", "yaw_rate", "radius", "omega", "phase", "height", "period")


def _motion_xyzyaw(motions: typing.Sequence[Motion], t: np.ndarray) -> np.ndarray:
    """(M,T,4) trajectories of ``Motion`` objects (see ``_trajectories``)."""
    bad = [m.kind for m in motions if m.kind not in OBJECT_MOTIONS]
    if bad:
        raise ValueError(f"motion.kind {bad[0]!r} not in {OBJECT_MOTIONS}")
    arr = {f: np.array([getattr(m, f) for m in motions], float) for f in _MOTION_FIELDS}
    arr["position"], arr["velocity"] = arr["position"].reshape(-1, 3), arr["velocity"].reshape(-1, 2)
    return _trajectories(np.array([OBJECT_MOTIONS.index(m.kind) for m in motions], int), t=t, **arr)


def _yaw_pitch_rotation(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(T,3,3) camera-to-world rotations: columns = camera +X (right), +Y (down), +Z (forward) in a Z-up world."""
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    fwd = np.stack([cp * cy, cp * sy, -sp], -1)
    right = np.stack([sy, -cy, np.zeros_like(yaw)], -1)
    return np.stack([right, np.cross(fwd, right), fwd], -1)


def _axis_rotation(axis: int, a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    R = np.zeros(a.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    R[..., axis, axis] = 1.0
    R[..., i, i], R[..., i, j], R[..., j, i], R[..., j, j] = c, -s, s, c
    return R


def _camera_poses(kind: np.ndarray, position: np.ndarray, yaw: np.ndarray, pitch: np.ndarray, speed: np.ndarray,
                  yaw_rate: np.ndarray, target: np.ndarray, jitter_pos: np.ndarray, jitter_rot: np.ndarray,
                  jitter_seed: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(B,T,3,4) camera-to-world poses of B cameras (``CameraMotion`` fields as arrays, ``kind`` as indices
    into CAMERA_MOTIONS) at times ``t`` (T,) s. Shared by the batch sampler and ``camera2world``."""
    B, tt = len(kind), t[None, :]
    pos = np.repeat(position[:, None], len(t), 1)
    yw = yaw[:, None] + (kind == 2)[:, None] * yaw_rate[:, None] * tt                  # pan
    lin = np.where(kind == 1, 1.0, 0.0)[:, None, None] * np.stack([np.cos(yaw), np.sin(yaw)], -1)[:, None]
    lin += np.where(kind == 4, 1.0, 0.0)[:, None, None] * np.stack([np.sin(yaw), -np.cos(yaw)], -1)[:, None]
    pos[..., :2] += lin * (speed[:, None] * tt)[..., None]                                # dolly / truck
    pos[..., 2] += np.where(kind == 5, speed, 0.0)[:, None] * tt                          # pedestal (up/down)
    i = np.flatnonzero(kind == 3)                                                         # orbit the target
    if len(i):
        rel = position[i, :2] - target[i]
        a = np.arctan2(rel[:, 1], rel[:, 0])[:, None] + yaw_rate[i, None] * tt
        r = np.hypot(rel[:, 0], rel[:, 1])[:, None]
        pos[i, :, 0], pos[i, :, 1] = target[i, 0, None] + r * np.cos(a), target[i, 1, None] + r * np.sin(a)
        yw[i] = a + np.pi
    R = _yaw_pitch_rotation(yw, np.repeat(pitch[:, None], len(t), 1))
    b = np.flatnonzero((jitter_pos > 0) | (jitter_rot > 0))
    if len(b):                                  # one generator per camera, then all jittered cameras at once
        g = [np.random.Generator(np.random.PCG64(int(sd))) for sd in jitter_seed[b]]    # = default_rng(seed)
        f = np.array([(q.uniform(0.4, 2.0, (6, 3)), q.uniform(0, 2 * np.pi, (6, 3))) for q in g])   # (J,2,6,3)
        w = np.sin(2 * np.pi * f[:, None, 0] * t[:, None, None] + f[:, None, 1]).sum(-1) / 3.0  # (J,T,6) ~[-1,1]
        pos[b] += jitter_pos[b, None, None] * w[..., :3]
        # Small rotations about the camera's own axes (pitch about X, yaw about Y, roll about Z).
        a = jitter_rot[b, None, None] * w[..., 3:]
        R[b] = R[b] @ (_axis_rotation(0, a[..., 0]) @ _axis_rotation(1, a[..., 1]) @ _axis_rotation(2, a[..., 2]))
    return np.concatenate([R, pos[..., None]], -1)


_CAM_FIELDS = ("position", "yaw", "pitch", "speed", "yaw_rate", "target", "jitter_pos", "jitter_rot", "jitter_seed")


def _cameras_c2w(cams: typing.Sequence[CameraMotion], t: np.ndarray) -> np.ndarray:
    """(B,T,3,4) poses of B ``CameraMotion`` objects."""
    bad = [c.kind for c in cams if c.kind not in CAMERA_MOTIONS]
    if bad:
        raise ValueError(f"camera.kind {bad[0]!r} not in {CAMERA_MOTIONS}")
    arr = {f: np.array([getattr(c, f) for c in cams], float) for f in _CAM_FIELDS}
    return _camera_poses(np.array([CAMERA_MOTIONS.index(c.kind) for c in cams], int), t=t, **arr)


def _camera_c2w(cam: CameraMotion, t: np.ndarray) -> np.ndarray:
    """(T,3,4) poses of one ``CameraMotion``."""
    return _cameras_c2w([cam], t)[0]


def camera2world(spec: SceneSpec) -> np.ndarray:
    """(T,3,4) float64 left-camera-to-world poses (OpenCV axes, metres)."""
    return _camera_c2w(spec.camera, spec.timestamps)


def object_poses(spec: SceneSpec) -> np.ndarray:
    """(T,M,4,4) float64 object-to-world poses (rotation about world Z, translation = shape centre)."""
    t = spec.timestamps
    M = len(spec.objects)
    P = np.zeros((len(t), M, 4, 4))
    P[..., 3, 3] = 1.0
    if M:
        q = _motion_xyzyaw([o.motion for o in spec.objects], t).swapaxes(0, 1)      # (T,M,4)
        P[..., :3, :3] = _axis_rotation(2, q[..., 3])
        P[..., :3, 3] = q[..., :3]
    return P


def object_centres(spec: SceneSpec) -> np.ndarray:
    """(T,M,3) float64 world centres of the shapes (the amodal 3-D centre, not the visible centroid)."""
    t = spec.timestamps
    if not spec.objects:
        return np.zeros((len(t), 0, 3))
    return _motion_xyzyaw([o.motion for o in spec.objects], t)[..., :3].swapaxes(0, 1)


def intersect(shape: int, half: np.ndarray, o: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Ray parameter (...,) of the first hit of rays o + t d (object-local frame, d (...,3)) with the centred
    shape ``SHAPES[shape]`` of half extents ``half`` (sphere: radius in [0]; cylinder: (r, r, h/2));
    ``half`` and ``o`` broadcast against ``d``. inf on a miss or when the hit is behind the origin."""
    half, o = np.asarray(half), np.asarray(o)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if shape == 0:                                                   # slabs
            inv = 1.0 / d
            t1, t2 = (-half - o) * inv, (half - o) * inv
            tn, tf = np.minimum(t1, t2).max(-1), np.maximum(t1, t2).min(-1)
            return np.where((tf >= tn) & (tn > 0), tn, np.inf)
        if shape == 1:
            a, b, c = (d * d).sum(-1), (d * o).sum(-1), (o * o).sum(-1) - half[..., 0] ** 2
            disc = b * b - a * c
            t = (-b - np.sqrt(disc)) / a
            return np.where((disc >= 0) & (t > 0), t, np.inf)
        r, h, ox, oy, oz = half[..., 0], half[..., 2], o[..., 0], o[..., 1], o[..., 2]
        a = d[..., 0] ** 2 + d[..., 1] ** 2
        b = d[..., 0] * ox + d[..., 1] * oy
        disc = b * b - a * (ox ** 2 + oy ** 2 - r * r)
        ts = (-b - np.sqrt(disc)) / a
        ts = np.where((disc >= 0) & (ts > 0) & (np.abs(oz + ts * d[..., 2]) <= h), ts, np.inf)
        tc = (np.where(d[..., 2] < 0, h, -h) - oz) / d[..., 2]             # the cap facing the ray origin
        x, y = ox + tc * d[..., 0], oy + tc * d[..., 1]
        tc = np.where((tc > 0) & (x * x + y * y <= r * r), tc, np.inf)
        return np.minimum(ts, tc)


def bounding_radius(o: ObjectSpec) -> float:
    """Radius (m) of the sphere around the shape centre that contains the object."""
    sx, sy, sz = o.size
    if o.shape == "sphere":
        return sx / 2
    if o.shape == "cylinder":
        return float(np.hypot(sx / 2, sz / 2))
    return float(np.linalg.norm(o.size) / 2)


# ----------------------------------------------------------------------------------------------------------
# Sampling
# ----------------------------------------------------------------------------------------------------------
def _size_table() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """CATEGORIES as arrays: full-extent lo/hi (C,3), which uniform draw drives each axis (C,3), static (C,)."""
    lo, hi, tie, static = [], [], [], []
    for shape, ranges, st in CATEGORIES.values():
        r = np.array(ranges)
        ix = {"box": [0, 1, 2] if len(r) == 3 else [0, 0, 0], "sphere": [0, 0, 0], "cylinder": [0, 0, 1]}[shape]
        scale = np.array([2.0, 2.0, 1.0 if shape == "cylinder" else 2.0]) if shape != "box" else np.ones(3)
        lo.append(r[ix, 0] * scale)
        hi.append(r[ix, 1] * scale)
        tie.append(ix)
        static.append(st)
    return np.array(lo), np.array(hi), np.array(tie), np.array(static)


_SIZE_LO, _SIZE_HI, _SIZE_TIE, _STATIC = _size_table()
_CAT_NAMES, _COLOUR_NAMES = tuple(CATEGORIES), tuple(COLOURS)
_IS_BOX = np.array([v[0] == "box" for v in CATEGORIES.values()])


def _candidates(rng, shape: tuple[int, ...], first: np.ndarray, kinds: np.ndarray, static_prob: float,
                c2w_mid: np.ndarray, tan_x: float) -> dict[str, np.ndarray]:
    """Random object candidates as arrays of ``shape`` = (B, S, K) (clip, slot, candidate): category index,
    uniform size draws ``u``, size (...,3), motion parameters. ``first`` (B,S) marks slots that must move
    (mobile categories, never static). Each is placed 1.8-5.5 m in front of its clip's mid-clip camera
    ``c2w_mid`` (B,3,4), inside 70 % of the horizontal field of view, standing on the floor."""
    mobile = np.flatnonzero(~_STATIC)
    first = np.broadcast_to(first[..., None], shape)
    cat = np.where(first, mobile[rng.integers(len(mobile), size=shape)], rng.integers(len(_CAT_NAMES), size=shape))
    u = rng.random(shape + (3,))
    size = _SIZE_LO[cat] + np.take_along_axis(u, _SIZE_TIE[cat], -1) * (_SIZE_HI[cat] - _SIZE_LO[cat])
    kind = kinds[rng.integers(len(kinds), size=shape)] if len(kinds) else np.zeros(shape, int)
    kind = np.where(_STATIC[cat] | (~first & (rng.random(shape) < static_prob)), 0, kind)
    fwd = c2w_mid[:, :2, 2] / np.linalg.norm(c2w_mid[:, :2, 2], axis=-1, keepdims=True)
    right = c2w_mid[:, :2, 0] / np.linalg.norm(c2w_mid[:, :2, 0], axis=-1, keepdims=True)
    d, lat = rng.uniform(1.8, 5.5, shape), rng.uniform(-0.7, 0.7, shape)
    xy = (c2w_mid[:, None, None, :2, 3] + d[..., None] * fwd[:, None, None]
          + (lat * d * tan_x)[..., None] * right[:, None, None])
    head, sign = rng.uniform(-np.pi, np.pi, shape), rng.choice([-1.0, 1.0], shape)
    speed = np.select([kind == 1, kind == 2, kind == 4], [rng.uniform(0.3, 0.8, shape), rng.uniform(0.3, 0.7, shape),
                                                         rng.uniform(0.15, 0.45, shape)], 0.0)
    return dict(cat=cat, u=u, size=size, kind=kind, position=np.concatenate([xy, size[..., 2:] / 2], -1),
                yaw=np.where((kind == 1) | (kind == 2), head, rng.uniform(-np.pi, np.pi, shape)),
                velocity=speed[..., None] * np.stack([np.cos(head), np.sin(head)], -1),
                yaw_rate=(kind == 2) * sign * rng.uniform(0.3, 0.8, shape),
                radius=(kind == 3) * rng.uniform(0.3, 0.7, shape),
                omega=(kind == 3) * sign * rng.uniform(0.8, 1.6, shape), phase=(kind == 3) * head,
                height=(kind == 4) * rng.uniform(0.3, 0.6, shape),
                period=np.where(kind == 4, rng.uniform(0.8, 1.4, shape), 1.0))


def _sample_cameras(rng, room: np.ndarray, T: int, fps: float, motions: np.ndarray, jitter_prob: float) -> dict:
    """B cameras as ``CameraMotion`` field arrays: near a random wall (0.6-1.3 m from it), 1.2-1.7 m high,
    looking into the room (+-0.3 rad), tilted down 0.12-0.3 rad."""
    B = len(room)
    k = rng.integers(4, size=B)
    beta = k * np.pi / 2
    fwd, right = np.stack([np.cos(beta), np.sin(beta)], -1), np.stack([np.sin(beta), -np.cos(beta)], -1)
    along = np.where(k % 2 == 0, room[:, 0], room[:, 1]) / 2
    across = np.where(k % 2 == 0, room[:, 1], room[:, 0]) / 2
    xy = -fwd * (along - rng.uniform(0.6, 1.3, B))[:, None] + right * (rng.uniform(-0.3, 0.3, B) * across)[:, None]
    kind = motions[rng.integers(len(motions), size=B)]
    sign = rng.choice([-1.0, 1.0], B)
    # Dollies go forwards or backwards (a backward one starts 1.4 m further into the room, clear of the wall) and
    # pedestals up or down, so that every camera-direction label occurs: a label that never occurs would be a
    # distractor a model can rule out from the text alone.
    speed = np.select([kind == 1, kind == 4, kind == 5], [sign * rng.uniform(0.25, 0.45, B),
                      sign * rng.uniform(0.2, 0.4, B), sign * rng.uniform(0.18, 0.26, B)], 0.0)
    xy = xy + fwd * np.where((kind == 1) & (sign < 0), 1.4, 0.0)[:, None]
    rate = np.select([kind == 2, kind == 3], [sign * rng.uniform(0.12, 0.25, B), sign * rng.uniform(0.1, 0.2, B)])
    yaw = beta + rng.uniform(-0.3, 0.3, B) - (kind == 2) * rate * (T - 1) / fps / 2    # pans sweep across the room
    d = rng.uniform(2.5, 3.5, B)
    target = np.where((kind == 3)[:, None], xy + d[:, None] * np.stack([np.cos(yaw), np.sin(yaw)], -1), 0.0)
    jit = rng.random(B) < jitter_prob
    return dict(kind=kind, position=np.c_[xy, rng.uniform(1.2, 1.7, B)], yaw=yaw, pitch=rng.uniform(0.12, 0.3, B),
                speed=speed, yaw_rate=rate, target=target, jitter_pos=jit * rng.uniform(0.005, 0.02, B),
                jitter_rot=jit * rng.uniform(0.003, 0.012, B),
                jitter_seed=np.where(jit, rng.integers(2**31, size=B), 0))


_TIE_MASK = np.array([np.isin(np.arange(3), ix) for ix in _SIZE_TIE], float)   # (C,3): the distinct size draws
_ADJ, _WHERE = ("small ", "", "large "), ("on the left", "in the middle", "on the right")
_TEX_KW = [dict(checker=0.35), dict(contrast=0.35)] + [{}] * 4                       # checker floor, calmer ceiling
_OBJ_FIELDS = ("size", "position", "yaw", "velocity", "yaw_rate", "radius", "omega", "phase", "height", "period")


def _build_specs(c: dict, pick: np.ndarray, has: np.ndarray, x0: np.ndarray, tan_x: float, colours: np.ndarray,
                 seeds: np.ndarray, order: np.ndarray, cam: dict, room: np.ndarray, light: np.ndarray, T: int,
                 fps: float, tex_colour: np.ndarray, keep: np.ndarray, names, start: int) -> list[SceneSpec]:
    """``SceneSpec`` objects of the chunk's scenes ``keep`` from the sampler's arrays: each slot's picked
    candidate (``pick``, ``has``) in shuffled ``order``; ``tex_colour`` (B,6,3) floor, ceiling, wall colours.
    Everything is gathered and converted to Python values once per chunk (``tolist``), not per scene."""
    S = pick.shape[1]
    sel = (np.arange(len(pick))[:, None], np.arange(S), pick)                     # the picked candidate of a slot
    cat = c["cat"][sel]
    q = (c["u"][sel] * _TIE_MASK[cat]).sum(-1) / _TIE_MASK[cat].sum(-1)           # mean of the distinct draws
    adj = np.where(q < 1 / 3, 0, np.where(q > 2 / 3, 2, 1)).tolist()
    xb = x0[sel]
    where = np.where(xb < -tan_x / 3, 0, np.where(xb > tan_x / 3, 2, 1)).tolist()
    g = {k: c[k][sel].tolist() for k in _OBJ_FIELDS}
    cat, kind, colours, seeds = cat.tolist(), c["kind"][sel].tolist(), colours.tolist(), seeds.tolist()
    order, has, cb = order.tolist(), has.tolist(), {k: v.tolist() for k, v in cam.items()}
    room, light, tex_colour = room.tolist(), light.tolist(), np.round(tex_colour, 4).tolist()
    out = []
    for b in keep.tolist():
        objs = []
        for i in order[b]:
            if not has[b][i]:
                continue
            ct, col = _CAT_NAMES[cat[b][i]], _COLOUR_NAMES[colours[b][i]]
            mot = Motion(OBJECT_MOTIONS[kind[b][i]], tuple(g["position"][b][i]), g["yaw"][b][i],
                         tuple(g["velocity"][b][i]), g["yaw_rate"][b][i], g["radius"][b][i], g["omega"][b][i],
                         g["phase"][b][i], g["height"][b][i], g["period"][b][i])
            objs.append(ObjectSpec(f"{col} {ct}", f"the {_ADJ[adj[b][i]]}{col} {ct} {_WHERE[where[b][i]]}", ct, col,
                                   CATEGORIES[ct][0], tuple(g["size"][b][i]), Texture(COLOURS[col], seeds[b][6 + i]),
                                   mot))
        camera = CameraMotion(CAMERA_MOTIONS[cb["kind"][b]], tuple(cb["position"][b]), cb["yaw"][b], cb["pitch"][b],
                              cb["speed"][b], cb["yaw_rate"][b], tuple(cb["target"][b]), cb["jitter_pos"][b],
                              cb["jitter_rot"][b], int(cb["jitter_seed"][b]))
        rb = tuple(room[b])
        tex = [Texture(tuple(col_), sd, **kw) for col_, sd, kw in zip(tex_colour[b], seeds[b][:6], _TEX_KW)]
        name = names[start + len(out)] if names is not None else f"scene{start + len(out):06d}"
        out.append(SceneSpec(name, T, float(fps), Room(rb, tex[0], tex[1], tuple(tex[2:])), tuple(objs), camera,
                             (light[b][0], light[b][1], rb[2] - 0.3)))
    return out


def sample_scenes(rng: np.random.Generator, n: int, num_frames: int = 32, fps: float = 10.0,
                  num_objects: tuple[int, int] = (2, 6), names: typing.Sequence[str] | None = None,
                  hfov_deg: float = 63.2, aspect: float = 0.75, camera_motions: tuple[str, ...] = CAMERA_MOTIONS,
                  jitter_prob: float = 0.4, object_motions: tuple[str, ...] = OBJECT_MOTIONS,
                  static_prob: float = 0.25, batch: int = 8) -> list[SceneSpec]:
    """Sample ``n`` random scenes at once (vectorised across scenes; all randomness from ``rng``), 2200-2600
    scenes per CPU-second. ``sample_scenes(rng, n)`` draws differently from n calls of ``sample_scene``.

    Guarantees, checked on every frame: objects stay inside the room (5 cm from the walls, 10 cm below the
    ceiling), do not interpenetrate (vertical bounding cylinders >= 10 cm apart), stay >= 0.5 m (x-y) from the
    camera, and their centres project inside the view (``hfov_deg``; vertical FOV from ``aspect`` = H/W)
    on >= 60 % of the frames (top and bottom too on >= 50 %); the camera stays >= 0.4 m from the walls.
    Moving objects get >= 0.3 m from their start; the first slot always moves (if ``object_motions`` has a
    moving kind), the others are static with probability ``static_prob``. Speeds 0.15-0.8 m/s; camera
    0.2-0.45 m/s or 0.1-0.25 rad/s.
    Each scene asks for M ~ U{num_objects} objects; a slot whose ``batch`` candidates all fail is dropped,
    and a scene left with fewer than ``num_objects[0]`` (or without its mover) is redrawn. Object order is
    shuffled; names are "<colour> <category>" with colours drawn without replacement (unique).
    """
    T, S = int(num_frames), int(num_objects[1])
    if not (1 <= num_objects[0] <= S <= len(COLOURS)):
        raise ValueError(f"sample_scenes: num_objects={num_objects} must satisfy 1 <= lo <= hi <= {len(COLOURS)}")
    t = np.arange(T) / fps
    tan_x = np.tan(np.radians(hfov_deg) / 2)
    lim = np.array([0.95 * tan_x, 0.95 * tan_x * aspect])
    moving = np.array([OBJECT_MOTIONS.index(k) for k in object_motions if k != "static"], int)
    cam_kinds = np.array([CAMERA_MOTIONS.index(k) for k in camera_motions], int)
    out: list[SceneSpec] = []
    for _ in range(100 + n // 32):
        B = min(n - len(out), 64)                   # chunks of 64 scenes keep the (B,S,K,T,3) arrays in cache
        if B <= 0:
            break
        room = np.c_[rng.uniform(6.0, 10.0, (B, 2)), rng.uniform(2.7, 3.4, B)]
        cam = _sample_cameras(rng, room, T, fps, cam_kinds, jitter_prob)
        c2w = _camera_poses(t=t, **cam)                                                 # (B,T,3,4)
        M = rng.integers(num_objects[0], S + 1, size=B)
        first = np.zeros((B, S), bool)
        first[:, 0] = len(moving) > 0
        c = _candidates(rng, (B, S, batch), first, moving, static_prob, c2w[:, T // 2], tan_x)
        flat = {k: v.reshape((-1,) + v.shape[3:]) for k, v in c.items()}
        x, y, z, _ = _trajectories_soa(flat["kind"], flat["position"], flat["yaw"], flat["velocity"], flat["yaw_rate"],
                                       flat["radius"], flat["omega"], flat["phase"], flat["height"], flat["period"],
                                       t).reshape(4, B, S, batch, T)                  # (B,S,K,T) each
        size = c["size"]
        # x-y footprint radius: boxes may yaw, so their half diagonal; round shapes their radius.
        r = np.where(_IS_BOX[c["cat"]], np.hypot(size[..., 0], size[..., 1]), size[..., 0]) / 2
        half = room[:, None, None, :2] / 2
        # Every-frame tests as extremes over the frames; distances as one sqrt of the min / max squared distance
        # (sqrt is monotone and correctly rounded: the same values as the min / max of the norms).
        ok = (np.abs(x).max(-1) <= half[..., 0] - r - 0.05) & (np.abs(y).max(-1) <= half[..., 1] - r - 0.05)
        ok &= z.max(-1) + size[..., 2] / 2 <= room[:, None, None, 2] - 0.1
        dx, dy = x - c2w[:, None, None, :, 0, 3], y - c2w[:, None, None, :, 1, 3]
        ok &= np.sqrt((dx * dx + dy * dy).min(-1)) >= r + 0.5
        dx, dy, dz = x - x[..., :1], y - y[..., :1], z - z[..., :1]
        ok &= (c["kind"] == 0) | (np.sqrt((dx * dx + dy * dy + dz * dz).max(-1)) >= 0.3)
        # View checks only for the candidates still alive (the costliest test, so last).
        alive = np.nonzero(ok & (np.arange(S)[:, None] < M[:, None, None]))
        cw = np.ascontiguousarray(c2w.transpose(2, 3, 0, 1))[:, :, alive[0]]           # (3,4,n,T): c2w[..., j, k]
        dx, dy, dz = x[alive] - cw[0, 3], y[alive] - cw[1, 3], z[alive] - cw[2, 3]
        px, py, pz = (dx * cw[0, k] + dy * cw[1, k] + dz * cw[2, k] for k in range(3))  # (n,T) camera frame
        hz = size[alive][:, 2, None]
        ux, uy, uz = (cw[2, k] * hz / 2 for k in range(3))                             # half height, camera frame

        def inv(px, py, pz):
            return (pz > 0.3) & (np.abs(px) < lim[0] * pz) & (np.abs(py) < lim[1] * pz)
        inview = inv(px, py, pz)
        both = inview & inv(px + ux, py + uy, pz + uz) & inv(px - ux, py - uy, pz - uz)
        ok[:] = False
        ok[alive] = (np.count_nonzero(inview, -1) / T >= 0.6) & (np.count_nonzero(both, -1) / T >= 0.5)
        f0, ia = np.argmax(inview, -1), np.arange(len(alive[0]))
        x0 = np.zeros((B, S, batch))                 # normalised x of the first in-view frame (description)
        x0[alive] = px[ia, f0] / pz[ia, f0]
        ar = np.arange(B)
        pick, has = np.zeros((B, S), int), np.zeros((B, S), bool)
        for i in range(S):                          # greedy: first candidate compatible with earlier slots
            oki = ok[:, i]
            for j in range(i):
                rows = np.flatnonzero(has[:, j] & oki.any(1))                           # the others cannot change
                pj = pick[rows, j]
                dx, dy = x[rows, i] - x[rows, j, pj][:, None], y[rows, i] - y[rows, j, pj][:, None]   # (n,K,T)
                d = np.sqrt((dx * dx + dy * dy).min(-1))
                oki[rows] &= d >= r[rows, i] + r[rows, j, pj][:, None] + 0.1
            has[:, i], pick[:, i] = oki.any(1), np.argmax(oki, 1)
        cam_ok = np.all(np.abs(c2w[:, :, :2, 3]) <= room[:, None, :2] / 2 - 0.4, axis=(1, 2))
        good = cam_ok & (has.sum(1) >= num_objects[0]) & (has[:, 0] | (len(moving) == 0))
        colours = np.argsort(rng.random((B, len(COLOURS))), 1)[:, :S]
        seeds = rng.integers(2**31, size=(B, S + 6))
        order = np.argsort(rng.random((B, S)), 1)
        floor = rng.uniform([0.35, 0.25, 0.15], [0.7, 0.6, 0.5], (B, 3))
        ceil, walls = rng.uniform(0.75, 0.95, B), rng.uniform(0.5, 0.9, (B, 4, 3))
        light = rng.uniform(-1, 1, (B, 2))
        out.extend(_build_specs(c, pick, has, x0, tan_x, colours, seeds, order, cam, room, light, T, fps,
                                np.concatenate([floor[:, None], np.repeat(ceil[:, None, None], 3, 2), walls], 1),
                                np.flatnonzero(good)[:n - len(out)], names, len(out)))
    if len(out) < n:
        raise RuntimeError(f"sample_scenes: could only place {len(out)} of {n} scenes in 100 rounds")
    return out


def sample_scene(rng: np.random.Generator, num_frames: int = 32, fps: float = 10.0, name: str = "scene",
                 **kw) -> SceneSpec:
    """One random scene: ``sample_scenes(rng, 1, ...)`` (see there for the guarantees and options)."""
    return sample_scenes(rng, 1, num_frames, fps, names=[name], **kw)[0]


# Metadata without rendering lives in scene_meta (module-size cap); re-exported here so callers keep
# using ``scene.gt_meta_fast`` etc. Imported last: scene_meta imports the definitions above.
from .scene_meta import gt_meta_batch, gt_meta_fast, intrinsics, surface_samples  # noqa: E402,F401
