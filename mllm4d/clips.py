"""The two data types that cross stage boundaries in curation: a stereo clip and its 4D metadata.

``StereoClip`` is what every reader (synthetic renderer, Stereo4D npz, side-by-side video, left/right
folders) yields and what curation consumes. ``ClipMeta`` is what curation (or exact ground truth) produces
and what the relation solver consumes; it is saved as one ``.npz`` per clip (docs/FORMATS.md).

Frames and units: poses are camera-to-world (``camera2world``, (T,3,4)), OpenCV camera axes (+X right,
+Y down, +Z forward), metres; ``K`` in pixels; right camera at +X of the left one by ``baseline`` metres.
"""
from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import common


@dataclass(frozen=True, eq=False)
class StereoClip:
    """A rectified stereo clip.

    left, right: (T,H,W,3) uint8 RGB. K: (3,3) float64 pixels (left camera; rectified, so shared).
    baseline: metres (> 0). timestamps: (T,) float64 seconds. gt: optional exact ground truth from the
    synthetic generator — keys ``depth`` (T,H,W) float32 z-depth in metres (inf where empty),
    ``instance`` (T,H,W) int16 (object index 0..M-1, negative = room/background), ``camera2world``
    (T,3,4) and ``meta`` (a ``ClipMeta`` with ``source="gt"``). masks: optional (T,H,W) int16 instance
    masks supplied with a real clip (same coding as ``gt["instance"]``), used instead of a segmenter.
    objects: optional per-object annotations (names/descriptions/categories lists) for real clips.
    """

    name: str
    left: np.ndarray
    right: np.ndarray
    K: np.ndarray
    baseline: float
    timestamps: np.ndarray
    source: str = "synthetic"
    gt: dict[str, Any] | None = None
    masks: np.ndarray | None = None
    objects: dict[str, list[str]] | None = None

    @property
    def num_frames(self) -> int:
        return int(self.left.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.left.shape[1]), int(self.left.shape[2])

    def check(self, origin: str = "") -> None:
        """Raise ValueError naming ``origin`` (a file) and the field when the clip is unusable."""
        where = f"{origin or self.name}"
        if self.left.ndim != 4 or self.left.shape[-1] != 3 or self.left.dtype != np.uint8:
            raise ValueError(f"{where}: field 'left' must be (T,H,W,3) uint8, got {self.left.shape} {self.left.dtype}")
        if self.right.shape != self.left.shape:
            raise ValueError(f"{where}: field 'right' shape {self.right.shape} != left {self.left.shape}")
        if self.left.shape[0] < 2:
            raise ValueError(f"{where}: field 'left' has {self.left.shape[0]} frames; need at least 2")
        K = np.asarray(self.K, float)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
            raise ValueError(f"{where}: field 'K' must be a finite 3x3 matrix with positive focal lengths, got {K.tolist()}")
        if not np.isfinite(self.baseline) or self.baseline <= 0:
            raise ValueError(f"{where}: field 'baseline' must be a positive number of metres, got {self.baseline}")
        if len(self.timestamps) != self.left.shape[0]:
            raise ValueError(f"{where}: field 'timestamps' has {len(self.timestamps)} entries for {self.left.shape[0]} frames")
        if self.masks is not None and self.masks.shape != self.left.shape[:3]:
            raise ValueError(f"{where}: field 'masks' shape {self.masks.shape} != frames {self.left.shape[:3]}")


@dataclass(frozen=True, eq=False)
class ClipMeta:
    """4D metadata of one clip (the solver's input). Shapes: T frames, M objects, ΣN kept points.

    See docs/FORMATS.md for every field. ``obj_points`` holds world points (float32) concatenated in
    (t, m) row-major order; ``points(t, m)`` slices them out.
    """

    name: str
    source: str                    # "curated" | "gt"
    timestamps: np.ndarray         # (T,) float64 s
    camera2world: np.ndarray       # (T,3,4) float64
    K: np.ndarray                  # (3,3)
    baseline: float
    image_size: tuple[int, int]    # (H, W)
    obj_names: tuple[str, ...]
    obj_descriptions: tuple[str, ...]
    obj_categories: tuple[str, ...]
    obj_centre: np.ndarray         # (T,M,3) float64, NaN when not observed
    obj_point_counts: np.ndarray   # (T,M) int32
    obj_points: np.ndarray         # (ΣN,3) float32
    obj_visible_frac: np.ndarray   # (T,M) float32
    obj_truncated: np.ndarray      # (T,M) bool
    obj_valid: np.ndarray          # (T,M) bool

    @property
    def num_frames(self) -> int:
        return int(self.camera2world.shape[0])

    @property
    def num_objects(self) -> int:
        return len(self.obj_names)

    def camera_centres(self) -> np.ndarray:
        """(T,3) world camera centres = the translation column of camera2world."""
        return self.camera2world[:, :, 3]

    def points(self, t: int, m: int) -> np.ndarray:
        """(N,3) world points of object ``m`` at frame ``t`` (empty if not observed)."""
        counts = self.obj_point_counts.reshape(-1)
        k = t * self.num_objects + m
        start = int(counts[:k].sum())
        return self.obj_points[start:start + int(counts[k])]

    def check(self, origin: str = "") -> None:
        """Raise ValueError naming ``origin`` and the field when shapes disagree or values are not finite."""
        where = origin or self.name
        T, M = self.num_frames, self.num_objects
        if self.camera2world.shape != (T, 3, 4) or not np.all(np.isfinite(self.camera2world)):
            raise ValueError(f"{where}: field 'camera2world' must be finite (T,3,4), got {self.camera2world.shape}")
        for name, shape in (("obj_centre", (T, M, 3)), ("obj_point_counts", (T, M)), ("obj_visible_frac", (T, M)),
                            ("obj_truncated", (T, M)), ("obj_valid", (T, M))):
            if getattr(self, name).shape != shape:
                raise ValueError(f"{where}: field {name!r} has shape {getattr(self, name).shape}, expected {shape}")
        if int(self.obj_point_counts.sum()) != len(self.obj_points):
            raise ValueError(f"{where}: field 'obj_points' has {len(self.obj_points)} rows but counts sum to "
                             f"{int(self.obj_point_counts.sum())}")
        if len(self.timestamps) != T:
            raise ValueError(f"{where}: field 'timestamps' has {len(self.timestamps)} entries for {T} frames")


_STR_TUPLES = ("obj_names", "obj_descriptions", "obj_categories")


def save_meta(path: str | Path, meta: ClipMeta) -> Path:
    """Write ``meta`` as an uncompressed-npz file atomically (readers never see a partial file)."""
    arrays = {}
    for f in dataclasses.fields(meta):
        v = getattr(meta, f.name)
        arrays[f.name] = np.asarray(v, dtype=str) if f.name in _STR_TUPLES else np.asarray(v)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return common.atomic_write_bytes(path, buf.getvalue())


def load_meta(path: str | Path) -> ClipMeta:
    """Read a metadata npz written by ``save_meta``; raise ValueError naming the file and a bad/missing field."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # zip/npz errors come in many types
        raise ValueError(f"{path}: not a readable npz ({e})") from None
    kw = {}
    for f in dataclasses.fields(ClipMeta):
        if f.name not in z.files:
            raise ValueError(f"{path}: missing field {f.name!r}")
        v = z[f.name]
        if f.name in ("name", "source"):
            v = str(v)
        elif f.name == "baseline":
            v = float(v)
        elif f.name == "image_size":
            v = (int(v[0]), int(v[1]))
        elif f.name in _STR_TUPLES:
            v = tuple(str(s) for s in v)
        kw[f.name] = v
    meta = ClipMeta(**kw)
    meta.check(str(path))
    return meta
