"""readers: each format round-trips, autodetection, and every fault raises ValueError naming file + field."""
import json

import cv2
import numpy as np
import pytest

from mllm4d import readers

T, H, W = 4, 24, 32
CAL = {"K": [[30.0, 0, 15.5], [0, 30.0, 11.5], [0, 0, 1]], "baseline": 0.1, "fps": 5}


def frames(seed=0, t=T, h=H, w=W):
    return np.random.default_rng(seed).integers(0, 255, (t, h, w, 3), dtype=np.uint8)


def write_folder(path, left=None, right=None, cal=CAL, masks=None, objs=None):
    left = frames(0) if left is None else left
    right = frames(1) if right is None else right
    for name, stack in (("left", left), ("right", right)):
        (path / name).mkdir(parents=True)
        for i, im in enumerate(stack):
            cv2.imwrite(str(path / name / f"{i:03d}.png"), im[..., ::-1])
    if cal is not None:
        (path / "calibration.json").write_text(json.dumps(cal))
    if masks is not None:
        (path / "masks").mkdir()
        for i, m in enumerate(masks):
            cv2.imwrite(str(path / "masks" / f"{i:03d}.png"), (m.astype(np.int32) + 1).astype(np.uint16))
    if objs is not None:
        (path / "objects.json").write_text(json.dumps(objs))
    return path


def stereo4d(path, **over):
    c2w = np.tile(np.eye(4)[:3], (T, 1, 1))
    c2w[:, 0, 3] = np.arange(T) * 0.1
    z = dict(left=frames(0), right=frames(1), camera2world=c2w, timestamps=np.arange(T, dtype=np.int64) * 100000,
             track_lengths=np.array([2, 1]), track_indices=np.array([0, 1, 3]),
             track_coordinates=np.arange(9, dtype=np.float32).reshape(3, 3))
    z.update(over)
    z = {k: v for k, v in z.items() if v is not None}
    np.savez(path, **z)
    return path


def test_image_folder_roundtrip_with_masks(tmp_path):
    masks = np.full((T, H, W), -1, np.int16)
    masks[:, 5:10, 5:10] = 0
    masks[:, 12:20, 20:30] = 1
    p = write_folder(tmp_path / "clipA", masks=masks, objs={"names": ["cup", "dog"]})
    clip = readers.read_clip(p)
    assert clip.name == "clipA" and clip.left.shape == (T, H, W, 3) and np.array_equal(clip.left, frames(0))
    assert clip.baseline == 0.1 and clip.K[0, 0] == 30 and clip.timestamps[1] == pytest.approx(0.2)
    assert np.array_equal(clip.masks, masks) and clip.objects["names"] == ["cup", "dog"]
    assert clip.objects["categories"] == ["object", "object"]


def test_stereo4d_npz_arrays_and_sibling_folder(tmp_path):
    clip = readers.read_clip(stereo4d(tmp_path / "vid_0.npz"))
    assert clip.source == "stereo4d" and clip.baseline == pytest.approx(0.063)
    assert clip.K[0, 0] == pytest.approx(W / 2 / np.tan(np.radians(30)))   # 60 deg HFOV
    assert clip.timestamps == pytest.approx([0, 0.1, 0.2, 0.3])             # integer microseconds
    tr = clip.gt["tracks3d"]
    assert tr.shape == (2, T, 3) and np.isnan(tr[0, 2]).all() and tr[1, 3] == pytest.approx([6, 7, 8])
    assert clip.gt["camera2world"].shape == (T, 3, 4)
    p = stereo4d(tmp_path / "vid_1.npz", left=None, right=None, K=np.array(CAL["K"]), baseline=0.2)
    write_folder(tmp_path / "vid_1", cal=None)
    clip = readers.read_clip(p)
    assert np.array_equal(clip.right, frames(1)) and clip.baseline == 0.2 and clip.K[0, 0] == 30
    assert readers.find_clips(tmp_path) == [tmp_path / "vid_0.npz", p]   # the frames folder is no clip


def test_sbs_video(tmp_path):
    p = tmp_path / "walk.avi"
    vw = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 10, (2 * W, H))
    assert vw.isOpened()
    for t in range(T):  # flat halves survive MJPG: left bright, right dark, brightness rising with t
        vw.write(np.concatenate([np.full((H, W, 3), 150 + 20 * t), np.full((H, W, 3), 40)], 1).astype(np.uint8))
    vw.release()
    (tmp_path / "walk.json").write_text(json.dumps({**CAL, "fps": 10}))
    clip = readers.read_clip(p)
    assert clip.left.shape == (T, H, W, 3) and clip.timestamps[1] == pytest.approx(0.1)
    assert clip.left[:, 4:-4, 4:-4].mean(axis=(1, 2, 3)) == pytest.approx([150, 170, 190, 210], abs=4)
    assert clip.right[:, 4:-4, 4:-4].mean() == pytest.approx(40, abs=4)
    assert readers.read_clip(p, max_frames=2).num_frames == 2


@pytest.mark.parametrize("case,field", [
    ("size", "'right' frame size"),
    ("count", "'right' has 3 frames"),
    ("nocal", "missing calibration"),
    ("baseline0", "'baseline'"),
    ("focal0", "non-positive focal"),
    ("badjson", "not valid JSON"),
    ("emptymask", "'masks' is empty"),
])
def test_image_folder_faults(tmp_path, case, field):
    kw = {}
    if case == "size":
        kw["right"] = frames(1, w=W + 2)
    if case == "count":
        kw["right"] = frames(1, t=3)
    if case == "nocal":
        kw["cal"] = None
    if case == "baseline0":
        kw["cal"] = {**CAL, "baseline": 0}
    if case == "focal0":
        kw["cal"] = {**CAL, "K": [[0, 0, 15], [0, 30, 11], [0, 0, 1]]}
    if case == "emptymask":
        kw["masks"] = np.full((T, H, W), -1, np.int16)
    p = write_folder(tmp_path / "bad", **kw)
    if case == "badjson":
        (p / "calibration.json").write_text("{nope")
    with pytest.raises(ValueError, match=field) as e:
        readers.read_clip(p)
    assert str(tmp_path / "bad") in str(e.value)


def test_stereo4d_faults(tmp_path):
    c2w = np.tile(np.eye(4)[:3], (T, 1, 1))
    c2w[2, 0, 0] = np.nan
    with pytest.raises(ValueError, match="'camera2world' contains NaN") as e:
        readers.read_clip(stereo4d(tmp_path / "nan.npz", camera2world=c2w))
    assert "nan.npz" in str(e.value)
    with pytest.raises(ValueError, match="missing field 'left'"):
        readers.read_clip(stereo4d(tmp_path / "nopix.npz", left=None, right=None))
    with pytest.raises(ValueError, match="'track_lengths'"):
        readers.read_clip(stereo4d(tmp_path / "tracks.npz", track_lengths=np.array([5])))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable npz"):
        readers.read_clip(tmp_path / "junk.npz")


def test_unreadable_video_and_not_a_clip(tmp_path):
    (tmp_path / "x.mp4").write_bytes(b"garbage")
    (tmp_path / "x.json").write_text(json.dumps(CAL))
    with pytest.raises(ValueError, match="unreadable video") as e:
        readers.read_clip(tmp_path / "x.mp4")
    assert "x.mp4" in str(e.value)
    with pytest.raises(ValueError, match="not a stereo clip"):
        readers.read_clip(tmp_path / "x.json")
    with pytest.raises(ValueError, match="does not exist"):
        readers.find_clips(tmp_path / "missing")
