"""Readers that turn real stereo-video formats into ``clips.StereoClip`` (rectified RGB pairs + calibration).

Three on-disk formats (docs/CURATION.md has examples):

(a) **Stereo4D-style npz** ``<clip>.npz`` (the release's per-clip file, reference/paper.md §1.1):
    ``camera2world`` (T,3,4) and ``timestamps`` (T,) (integers = microseconds, as in Stereo4D; floats =
    seconds), optional tracks ``track_lengths`` (N,), ``track_indices`` (Σlen,) frame indices and
    ``track_coordinates`` (Σlen,3) world metres. Stereo4D ships no pixels (the RGB comes from YouTube), so
    the rectified frames must be added either as arrays ``left``/``right`` (T,H,W,3) uint8 RGB in the npz,
    or as a sibling folder ``<clip>/left/`` + ``<clip>/right/`` of images sorted by name. Calibration:
    ``K`` (3,3) if present, else ``hfov_deg`` (default 60°, Stereo4D's rectification) with the principal
    point at the image centre; ``baseline`` (default 0.063 m, Stereo4D's VR180 baseline). The given
    ``camera2world`` and the densified tracks ``track3d`` (N,T,3, NaN where absent) become ``clip.gt``
    (reference poses: curation anchors its frame 0 there and reports its error against them).
    Optional ``masks`` (T,H,W) int instance ids and ``obj_names``/``obj_descriptions``/``obj_categories``.
    Extra keys ``depth_left`` (T,H,W) and ``instance_left`` (T,H,W) (our synthetic export) become gt too.
(b) **Side-by-side stereo video** ``<clip>.mp4|.avi|.mkv|.mov`` (left half = left camera) plus a calibration
    json ``<clip>.json`` next to it (or ``calibration.json`` in the same folder).
(c) **Image folder** ``<clip>/left/*.png|jpg`` and ``<clip>/right/*`` (sorted by name, paired by position)
    plus ``<clip>/calibration.json``; optional ``<clip>/masks/*.png`` (pixel value v > 0 = object v-1,
    0 = background) and ``<clip>/objects.json`` (``names``/``descriptions``/``categories`` lists).

Calibration json: ``{"K": [[fx,0,cx],[0,fy,cy],[0,0,1]], "baseline": metres, "fps": optional}`` (or
``fx``/``fy``/``cx``/``cy`` keys instead of ``K``); K is the rectified *left* (per-eye) camera in pixels.
Every reader validates and raises ValueError naming the file and the field.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from . import clips

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm")
DEFAULT_FPS = 10.0


# ----------------------------------------------------------------------------------------------------------
# Calibration
# ----------------------------------------------------------------------------------------------------------
def parse_calibration(data: dict, origin: str) -> tuple[np.ndarray, float, float | None]:
    """(K (3,3), baseline metres, fps or None) from a calibration dict; ValueError naming origin and field."""
    if not isinstance(data, dict):
        raise ValueError(f"{origin}: calibration must be a JSON object")
    if "K" in data:
        try:
            K = np.asarray(data["K"], np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{origin}: field 'K' is not a numeric 3x3 matrix") from None
    elif all(k in data for k in ("fx", "cx", "cy")):
        K = np.array([[data["fx"], 0, data["cx"]], [0, data.get("fy", data["fx"]), data["cy"]], [0, 0, 1]], np.float64)
    else:
        raise ValueError(f"{origin}: missing field 'K' (or 'fx', 'cx', 'cy')")
    if K.shape != (3, 3) or not np.isfinite(K).all():
        raise ValueError(f"{origin}: field 'K' must be a finite 3x3 matrix, got shape {K.shape}")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"{origin}: field 'K' has a non-positive focal length ({K[0, 0]}, {K[1, 1]})")
    if "baseline" not in data:
        raise ValueError(f"{origin}: missing field 'baseline' (metres)")
    try:
        b = float(data["baseline"])
    except (TypeError, ValueError):
        raise ValueError(f"{origin}: field 'baseline' is not a number") from None
    if not np.isfinite(b) or b <= 0:
        raise ValueError(f"{origin}: field 'baseline' must be a positive number of metres, got {data['baseline']}")
    fps = data.get("fps")
    if fps is not None and (not isinstance(fps, (int, float)) or fps <= 0):
        raise ValueError(f"{origin}: field 'fps' must be a positive number, got {fps!r}")
    return K, b, (float(fps) if fps is not None else None)


def read_calibration(path: Path) -> tuple[np.ndarray, float, float | None]:
    if not path.exists():
        raise ValueError(f"{path}: missing calibration file (needs fields 'K' and 'baseline')")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: calibration is not valid JSON ({e})") from None
    return parse_calibration(data, str(path))


# ----------------------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------------------
def _list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS) if folder.is_dir() else []


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: unreadable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def read_image_stack(folder: Path, field: str) -> np.ndarray:
    """(T,H,W,3) uint8 RGB of the images in ``folder`` sorted by name; ValueError on none or mixed sizes."""
    files = _list_images(folder)
    if not files:
        raise ValueError(f"{folder}: field {field!r}: no images ({'/'.join(IMAGE_EXTS)}) found")
    imgs = [_read_rgb(p) for p in files]
    for p, im in zip(files, imgs):
        if im.shape != imgs[0].shape:
            raise ValueError(f"{p}: field {field!r}: image size {im.shape[:2]} != {imgs[0].shape[:2]} of {files[0].name}")
    return np.stack(imgs)


def read_mask_stack(folder: Path) -> np.ndarray:
    """(T,H,W) int16 instance ids from mask PNGs (value v > 0 -> object v-1, 0 -> background -1)."""
    files = _list_images(folder)
    ms = []
    for p in files:
        m = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if m is None:
            raise ValueError(f"{p}: field 'masks': unreadable mask image")
        ms.append((m if m.ndim == 2 else m[..., 0]).astype(np.int32) - 1)
    return np.stack(ms).astype(np.int16)


def _check_pair(left: np.ndarray, right: np.ndarray, origin: str) -> None:
    if left.shape[0] != right.shape[0]:
        raise ValueError(f"{origin}: field 'right' has {right.shape[0]} frames but 'left' has {left.shape[0]}")
    if left.shape[1:] != right.shape[1:]:
        raise ValueError(f"{origin}: field 'right' frame size {right.shape[1:3]} != 'left' {left.shape[1:3]}")


def _check_masks(masks: np.ndarray | None, left: np.ndarray, origin: str) -> None:
    if masks is None:
        return
    if masks.shape != left.shape[:3]:
        raise ValueError(f"{origin}: field 'masks' shape {masks.shape} != frames {left.shape[:3]}")
    if not (masks >= 0).any():
        raise ValueError(f"{origin}: field 'masks' is empty (no object pixel in any frame)")


def _objects(data: dict | None, masks: np.ndarray | None, origin: str) -> dict[str, list[str]] | None:
    if masks is None:
        return None
    M = int(masks.max()) + 1
    data = data or {}
    out = {}
    for key, fallback in (("names", "object {}"), ("descriptions", "the object {}"), ("categories", "object")):
        v = [str(s) for s in data.get(key, [])] or [fallback.format(m) for m in range(M)]
        if len(v) != M:
            raise ValueError(f"{origin}: field {key!r} has {len(v)} entries but the masks hold {M} objects")
        out[key] = v
    return out


def _finish(name: str, left: np.ndarray, right: np.ndarray, K: np.ndarray, baseline: float, ts: np.ndarray,
            origin: str, source: str, gt=None, masks=None, objects=None) -> clips.StereoClip:
    clip = clips.StereoClip(name=name, left=np.ascontiguousarray(left), right=np.ascontiguousarray(right), K=K,
                            baseline=float(baseline), timestamps=np.asarray(ts, np.float64), source=source,
                            gt=gt, masks=masks, objects=objects)
    clip.check(origin)
    return clip


# ----------------------------------------------------------------------------------------------------------
# Formats
# ----------------------------------------------------------------------------------------------------------
def densify_tracks(lengths: np.ndarray, indices: np.ndarray, coords: np.ndarray, T: int, origin: str) -> np.ndarray:
    """Stereo4D ragged tracks -> (N,T,3) float32 world points, NaN where the track is absent."""
    lengths = np.asarray(lengths, np.int64)
    if lengths.sum() != len(indices) or len(indices) != len(coords):
        raise ValueError(f"{origin}: field 'track_lengths' sums to {lengths.sum()} but 'track_indices' has "
                         f"{len(indices)} and 'track_coordinates' {len(coords)} entries")
    idx = np.asarray(indices, np.int64)
    if len(idx) and (idx.min() < 0 or idx.max() >= T):
        raise ValueError(f"{origin}: field 'track_indices' out of range [0, {T})")
    out = np.full((len(lengths), T, 3), np.nan, np.float32)
    out[np.repeat(np.arange(len(lengths)), lengths), idx] = coords
    return out


def read_stereo4d_npz(path: Path) -> clips.StereoClip:
    """Format (a). See the module docstring for the keys."""
    try:
        z = dict(np.load(path, allow_pickle=False))
    except Exception as e:  # zip/pickle/format errors come in many types
        raise ValueError(f"{path}: not a readable npz ({e})") from None
    folder = path.with_suffix("")
    if "left" in z and "right" in z:
        left, right = np.asarray(z["left"]), np.asarray(z["right"])
    elif (folder / "left").is_dir():
        left, right = read_image_stack(folder / "left", "left"), read_image_stack(folder / "right", "right")
    else:
        raise ValueError(f"{path}: missing field 'left'/'right' (arrays in the npz or folders {folder}/left, /right)")
    if left.dtype != np.uint8 or left.ndim != 4:
        raise ValueError(f"{path}: field 'left' must be (T,H,W,3) uint8, got {left.shape} {left.dtype}")
    _check_pair(left, right, str(path))
    T, H, W = left.shape[:3]
    gt: dict = {}
    if "camera2world" in z:
        c2w = np.asarray(z["camera2world"], np.float64)
        if c2w.shape not in ((T, 3, 4), (T, 4, 4)):
            raise ValueError(f"{path}: field 'camera2world' has shape {c2w.shape}, expected ({T},3,4)")
        if not np.isfinite(c2w).all():
            raise ValueError(f"{path}: field 'camera2world' contains NaN/inf poses")
        gt["camera2world"] = c2w[:, :3, :4]
    if "timestamps" in z:
        ts = np.asarray(z["timestamps"])
        if len(ts) != T or not np.isfinite(ts.astype(np.float64)).all():
            raise ValueError(f"{path}: field 'timestamps' must hold {T} finite values, got {len(ts)}")
        ts = ts.astype(np.float64) / 1e6 if np.issubdtype(ts.dtype, np.integer) else ts.astype(np.float64)
        ts = ts - ts[0]
    else:
        ts = np.arange(T) / DEFAULT_FPS
    if "K" in z:
        K = np.asarray(z["K"], np.float64)
    else:
        hfov = float(z.get("hfov_deg", 60.0))
        f = W / 2.0 / np.tan(np.radians(hfov) / 2.0)
        K = np.array([[f, 0, (W - 1) / 2.0], [0, f, (H - 1) / 2.0], [0, 0, 1]])
    K, baseline, _ = parse_calibration({"K": K.tolist(), "baseline": float(z.get("baseline", 0.063))}, str(path))
    if "track_lengths" in z:
        gt["tracks3d"] = densify_tracks(z["track_lengths"], z["track_indices"], z["track_coordinates"], T, str(path))
    if "depth_left" in z:
        gt["depth"] = np.asarray(z["depth_left"], np.float32)
    masks = np.asarray(z["masks"]).astype(np.int16) if "masks" in z else None
    if "instance_left" in z:
        gt["instance"] = np.asarray(z["instance_left"]).astype(np.int16)
    _check_masks(masks, left, str(path))
    objs = {k: [str(s) for s in z[f"obj_{k}"]] for k in ("names", "descriptions", "categories") if f"obj_{k}" in z}
    name = str(z["name"]) if "name" in z else path.stem
    return _finish(name, left, right, K, baseline, ts, str(path), "stereo4d", gt or None, masks,
                   _objects(objs, masks, str(path)))


def video_calibration_path(path: Path) -> Path:
    own = path.with_suffix(".json")
    return own if own.exists() else path.parent / "calibration.json"


def read_sbs_video(path: Path, max_frames: int = 0) -> clips.StereoClip:
    """Format (b): side-by-side video (left half = left eye) + calibration json."""
    K, baseline, fps = read_calibration(video_calibration_path(path))
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise ValueError(f"{path}: unreadable video (OpenCV could not open it)")
    frames = []
    video_fps = cap.get(cv2.CAP_PROP_FPS)
    while max_frames <= 0 or len(frames) < max_frames:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    cap.release()
    if len(frames) < 2:
        raise ValueError(f"{path}: unreadable video (decoded {len(frames)} frames)")
    v = np.stack(frames)
    if v.shape[2] % 2:
        raise ValueError(f"{path}: side-by-side frame width {v.shape[2]} is odd; expected two equal halves")
    half = v.shape[2] // 2
    fps = fps or (video_fps if video_fps and video_fps > 0 else DEFAULT_FPS)
    return _finish(path.stem, v[:, :, :half], v[:, :, half:], K, baseline, np.arange(len(v)) / fps, str(path), "sbs_video")


def read_image_folder(path: Path) -> clips.StereoClip:
    """Format (c): ``left/``, ``right/`` image sequences + ``calibration.json`` (+ optional masks/, objects.json)."""
    K, baseline, fps = read_calibration(path / "calibration.json")
    left, right = read_image_stack(path / "left", "left"), read_image_stack(path / "right", "right")
    _check_pair(left, right, str(path / "right"))
    masks = read_mask_stack(path / "masks") if _list_images(path / "masks") else None
    _check_masks(masks, left, str(path / "masks"))
    obj_json = path / "objects.json"
    objs = json.loads(obj_json.read_text(encoding="utf-8")) if obj_json.exists() else None
    fps = fps or DEFAULT_FPS
    return _finish(path.name, left, right, K, baseline, np.arange(len(left)) / fps, str(path), "image_folder",
                   masks=masks, objects=_objects(objs, masks, str(obj_json)))


def clip_format(path: str | Path) -> str | None:
    """'stereo4d_npz', 'sbs_video', 'image_folder' or None when ``path`` is no clip."""
    p = Path(path)
    if p.is_file() and p.suffix.lower() == ".npz":
        return "stereo4d_npz"
    if p.is_file() and p.suffix.lower() in VIDEO_EXTS:
        return "sbs_video"
    if p.is_dir() and (p / "left").is_dir() and (p / "right").is_dir() and not p.with_suffix(".npz").exists():
        return "image_folder"
    return None


def read_clip(path: str | Path, max_frames: int = 0) -> clips.StereoClip:
    """Read one clip in any supported format (autodetected); ``max_frames`` > 0 keeps the first frames."""
    p = Path(path)
    fmt = clip_format(p)
    if fmt is None:
        raise ValueError(f"{p}: not a stereo clip (expected a .npz, a side-by-side video or a folder with left/ and right/)")
    clip = {"stereo4d_npz": read_stereo4d_npz, "image_folder": read_image_folder}[fmt](p) if fmt != "sbs_video" \
        else read_sbs_video(p, max_frames)
    return truncate(clip, max_frames) if max_frames > 0 else clip


def truncate(clip: clips.StereoClip, n: int) -> clips.StereoClip:
    """The first ``n`` frames of a clip (ground-truth arrays sliced alike)."""
    if n >= clip.num_frames:
        return clip
    gt = None
    if clip.gt is not None:
        gt = {}
        for k, v in clip.gt.items():
            if k == "tracks3d":
                gt[k] = v[:, :n]
            elif k == "meta":  # per-clip metadata cannot be sliced generically: drop it
                continue
            else:
                gt[k] = v[:n]
    return clips.StereoClip(clip.name, clip.left[:n], clip.right[:n], clip.K, clip.baseline, clip.timestamps[:n],
                            clip.source, gt, None if clip.masks is None else clip.masks[:n], clip.objects)


def find_clips(path: str | Path) -> list[Path]:
    """Clips at ``path``: itself if it is a clip, else its direct children that are clips (sorted by name)."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{p}: input path does not exist")
    if clip_format(p):
        return [p]
    if not p.is_dir():
        raise ValueError(f"{p}: not a stereo clip or a folder of clips")
    return [c for c in sorted(p.iterdir()) if not c.name.startswith(".") and clip_format(c)]
