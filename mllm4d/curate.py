"""Stage 01 · curation: stereo video -> 4D metadata (camera poses, per-object 3D points), with accuracy report.

Paper (P §3 p.3-4, §8.2; reference/paper.md §1.1): Stereo4D clips give poses (COLMAP-style BA), metric
points (SEA-RAFT stereo + BootsTAP tracks); Gemini lists the moving entities, GroundedSAM2 segments them,
the points are projected into the masks and PixelRefer writes the descriptions; a robust filter (criteria
unpublished) removes low-quality estimates. The release has no curation code. Ours, per clip:

1. ``stereo.clip_depth``: SGBM-3WAY + WLS + sub-pixel refinement (replaces SEA-RAFT);
2. ``pose.estimate_poses``: SIFT + local-map PnP-RANSAC + LM, two-pass dynamic rejection (replaces BA);
3. a **segmenter** (below) gives instance masks and object names/descriptions/categories;
4. ``objects.observe_objects``: eroded, depth-gated object points, truncation/visibility flags (our
   version of the unpublished robust filter); ``objects.build_meta`` -> ``clips.ClipMeta``.

Segmenter interface (the plug for GroundedSAM2 + Gemini + PixelRefer, which cannot run offline here)::

    Segmenter = Callable[[StereoClip], tuple[masks, names, descriptions, categories]]
    # masks: (T,H,W) int16, object index 0..M-1, negative = background; the three lists have length M.

``SEGMENTERS["given"]`` (default) uses masks supplied with the clip (``clip.masks`` + ``clip.objects``, or
the synthetic renderer's exact instance masks and object descriptions), else no objects; ``"none"`` never
finds objects (camera-only metadata). Add an entry to ``SEGMENTERS`` to plug a real model.

Deviations: stereo/pose/segmentation models (above); curated poses are anchored at the clip's given first
pose (synthetic GT / Stereo4D reference) when ``anchor_first_pose`` so curated and GT metadata share a
world frame — no other ground truth enters curation; ``obj_visible_frac`` is estimated (objects.py).
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, as_completed
import re
import sys
import time
import traceback
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from . import clips, common, geom_metrics, objects, pose, readers, stereo

Segmenter = Callable[[clips.StereoClip], tuple[np.ndarray, list, list, list]]
STAGE = "01_curation"


@dataclass(frozen=True)
class CurationParams:
    outputs_root: str = common.field(help="root folder of all stage outputs")
    run_name: str = common.field(help="run folder name under outputs/01_curation/")
    seed: int = common.field(help="seed; synthetic clip i uses np.random.default_rng([seed, i])")
    input_path: str = common.field(help="real clips (file or folder, readers.py formats); '' = synthetic")
    num_clips: int = common.field(help="synthetic clips to render, or the first N clips found", ge=1)
    num_frames: int = common.field(help="frames per clip (input clips are cut to their first N)", ge=2)
    fps: float = common.field(help="synthetic frame rate", gt=0)
    image_height: int = common.field(help="synthetic render height, pixels", ge=32)
    image_width: int = common.field(help="synthetic render width, pixels", ge=32)
    fx: float = common.field(help="synthetic focal length, pixels", gt=0)
    baseline: float = common.field(help="synthetic stereo baseline, metres", gt=0)
    num_objects_min: int = common.field(help="synthetic objects per scene, min", ge=1)
    num_objects_max: int = common.field(help="synthetic objects per scene, max", ge=1)
    render_backend: str = common.field(help="renderer", choices=("numpy", "moderngl", "auto"))
    supersample: int = common.field(help="renderer anti-aliasing factor", ge=1)
    noise_sigma: float = common.field(help="image noise std, grey levels", ge=0)
    segmenter: str = common.field(help="object masks + names source", choices=("given", "none"))
    wls: bool = common.field(help="WLS disparity filter")
    wls_right_sgbm: bool = common.field(help="WLS confidence from a right-view SGBM (real data) vs a warp")
    refine_iters: int = common.field(help="sub-pixel disparity refinement iterations", ge=0)
    pad_left: bool = common.field(help="pad SGBM input to recover the invalid left band")
    min_depth: float = common.field(help="nearest depth covered by the disparity range, m", gt=0)
    max_depth: float = common.field(help="farther depth is dropped, m", gt=0)
    sift_features: int = common.field(help="SIFT keypoints per frame", ge=50)
    sift_scale: float = common.field(help="SIFT on the left image resized by this factor (speed)", gt=0, le=1)
    pose_refs: list[int] = common.field(help="reference frame offsets of the pose local map")
    mask_objects_in_pose: bool = common.field(help="exclude segmented objects from pose features")
    erode_px: int = common.field(help="object mask erosion, pixels", ge=0)
    depth_gate_m: float = common.field(help="drop object points this far from the median depth, m", gt=0)
    min_points: int = common.field(help="min object points for a valid observation", ge=1)
    max_points: int = common.field(help="stored points per (frame, object)", ge=1, le=256)
    min_visible_frac: float = common.field(help="min estimated visible fraction for obj_valid", ge=0, le=1)
    anchor_first_pose: bool = common.field(help="anchor frame 0 at the clip's given pose (GT/reference)")
    workers: int = common.field(help="parallel worker processes", ge=1)
    jpeg_quality: int = common.field(help="quality of frames/<id>/<t>.jpg", ge=1, le=100)


def stereo_config(cfg: CurationParams) -> stereo.StereoConfig:
    return stereo.StereoConfig(wls=cfg.wls, wls_right_sgbm=cfg.wls_right_sgbm, refine_iters=cfg.refine_iters, pad_left=cfg.pad_left,
                               min_depth=cfg.min_depth, max_depth=cfg.max_depth)


def pose_config(cfg: CurationParams) -> pose.PoseConfig:
    return pose.PoseConfig(n_features=cfg.sift_features, sift_scale=cfg.sift_scale, refs=tuple(cfg.pose_refs))


def object_config(cfg: CurationParams) -> objects.ObjectConfig:
    return objects.ObjectConfig(erode_px=cfg.erode_px, depth_gate_m=cfg.depth_gate_m, min_points=cfg.min_points,
                                max_points=cfg.max_points, min_visible_frac=cfg.min_visible_frac)


# ----------------------------------------------------------------------------------------------------------
# Segmenters
# ----------------------------------------------------------------------------------------------------------
def no_objects(clip: clips.StereoClip) -> tuple[np.ndarray, list, list, list]:
    return np.full(clip.left.shape[:3], -1, np.int16), [], [], []


def given_masks(clip: clips.StereoClip) -> tuple[np.ndarray, list, list, list]:
    """Masks supplied with the clip: ``clip.masks`` (real clips), else the synthetic exact instance masks
    ``clip.gt["instance"]``; names from the GT metadata, else ``clip.objects``, else "object m". No masks:
    no objects."""
    gt = clip.gt or {}
    masks = clip.masks if clip.masks is not None else gt.get("instance")
    if masks is None or not (masks >= 0).any():
        return no_objects(clip)
    M = int(masks.max()) + 1
    # An object that is never in view has no mask pixels, so masks.max() undercounts: trust the GT object list
    # (the object then gets an all-invalid track, like any object that is never observed).
    if clip.masks is None and "meta" in gt and gt["meta"].num_objects >= M:
        m = gt["meta"]
        return masks, list(m.obj_names), list(m.obj_descriptions), list(m.obj_categories)
    o = clip.objects or {}
    get = lambda k, d: list(o.get(k) or [d.format(m) for m in range(M)])  # noqa: E731
    return masks, get("names", "object {}"), get("descriptions", "the object {}"), get("categories", "object")


SEGMENTERS: dict[str, Segmenter] = {"given": given_masks, "none": no_objects}


# ----------------------------------------------------------------------------------------------------------
# One clip
# ----------------------------------------------------------------------------------------------------------
def curate_clip(clip: clips.StereoClip, cfg: CurationParams, segmenter: Segmenter | None = None,
                rng: np.random.Generator | None = None) -> tuple[clips.ClipMeta, dict]:
    """Curated ``ClipMeta`` (source "curated") of one clip, and diagnostics.

    diagnostics: ``depth`` (T,H,W) float32 m (NaN invalid), ``masks`` (T,H,W) int16, ``band`` px,
    ``pose`` (pose.estimate_poses diagnostics), ``seconds`` per step (wall) and ``cpu_seconds`` (process).
    """
    clip.check(clip.name)
    segmenter = segmenter or SEGMENTERS[cfg.segmenter]
    rng = rng or np.random.default_rng(cfg.seed)
    secs, w0, c0 = {}, time.perf_counter(), time.process_time()
    scfg = stereo_config(cfg)
    depth = stereo.clip_depth(clip.left, clip.right, clip.K, clip.baseline, scfg)
    secs["depth"] = time.perf_counter() - w0
    masks, names, descs, cats = segmenter(clip)
    masks = np.asarray(masks, np.int16)
    if masks.shape != clip.left.shape[:3]:
        raise ValueError(f"{clip.name}: segmenter masks shape {masks.shape} != frames {clip.left.shape[:3]}")
    first = clip.gt["camera2world"][0] if cfg.anchor_first_pose and clip.gt and "camera2world" in clip.gt else None
    t1 = time.perf_counter()
    dyn = (masks >= 0) if cfg.mask_objects_in_pose and len(names) else None
    c2w, pdiag = pose.estimate_poses(clip.left, depth, clip.K, clip.baseline, pose_config(cfg), dyn, first)
    secs["pose"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    band = stereo.invalid_band(scfg, float(clip.K[0, 0]), clip.baseline)
    obs = objects.observe_objects(depth, c2w, clip.K, clip.baseline, masks, len(names), band, object_config(cfg), rng)
    meta = objects.build_meta(clip.name, clip.timestamps, c2w, clip.K, clip.baseline, clip.image_size, obs,
                              names, descs, cats, source="curated")
    secs["objects"] = time.perf_counter() - t2
    secs["total"] = time.perf_counter() - w0
    return meta, {"depth": depth, "masks": masks, "band": band, "pose": pdiag, "seconds": secs,
                  "cpu_seconds": time.process_time() - c0}


def evaluate(clip: clips.StereoClip, meta: clips.ClipMeta, depth: np.ndarray) -> dict[str, float]:
    """Accuracy of curated ``meta``/``depth`` against whatever ground truth the clip carries (may be none)."""
    gt, out = clip.gt or {}, {}
    if "depth" in gt:
        d = geom_metrics.depth_metrics(depth, gt["depth"])
        out.update({f"depth_{k}": d[k] for k in ("absrel", "delta1", "density", "within5", "rmse")})
        if "instance" in gt and (gt["instance"] >= 0).any():
            out["depth_objects_absrel"] = geom_metrics.depth_metrics(depth, gt["depth"], gt["instance"] >= 0)["absrel"]
    if "camera2world" in gt:
        p = geom_metrics.pose_metrics(meta.camera2world, gt["camera2world"])
        out.update({"pose_ate_m": p["ate_m"], "pose_rpe_trans_m": p["rpe_trans_m"], "pose_rpe_rot_deg": p["rpe_rot_deg"],
                    "pose_drift_pct": p["drift_pct"], "path_m": p["path_m"]})
    if "meta" in gt and meta.num_objects and gt["meta"].num_objects == meta.num_objects:
        g = gt["meta"]
        # the same world frame: map curated frame 0 onto the GT frame 0 (a no-op when anchored there)
        A = geom_metrics.to44(g.camera2world[:1])[0] @ np.linalg.inv(geom_metrics.to44(meta.camera2world[:1])[0])
        est = meta.obj_centre @ A[:3, :3].T + A[:3, 3]
        use = meta.obj_valid & g.obj_valid
        e = geom_metrics.object_centre_errors(est, g.obj_centre, use)
        out.update({"object_center_err_m": float(np.median(e)) if len(e) else float("nan"),
                    "object_center_err_p90_m": float(np.percentile(e, 90)) if len(e) else float("nan"),
                    "object_obs": int(len(e)), "object_valid_recall": float(use.sum() / max(g.obj_valid.sum(), 1))})
    return out


# ----------------------------------------------------------------------------------------------------------
# Batch: workers, files, resume
# ----------------------------------------------------------------------------------------------------------
def clip_id(job: tuple) -> str:
    kind, value = job
    return f"clip{value:04d}" if kind == "synthetic" else re.sub(r"[^A-Za-z0-9_.-]", "_", Path(value).stem)


def make_clip(job: tuple, cfg: CurationParams) -> clips.StereoClip:
    """Render synthetic clip i (seeded by [seed, i]) or read an input clip."""
    kind, value = job
    if kind != "synthetic":
        return readers.read_clip(value, max_frames=cfg.num_frames)
    from . import render, scene  # the renderer is only needed for synthetic runs
    rng = np.random.default_rng([cfg.seed, value])
    spec = scene.sample_scene(rng, num_frames=cfg.num_frames, fps=cfg.fps, name=clip_id(job),
                              num_objects=(cfg.num_objects_min, cfg.num_objects_max),
                              aspect=cfg.image_height / cfg.image_width,
                              hfov_deg=float(np.degrees(2 * np.arctan(cfg.image_width / 2 / cfg.fx))))
    return render.render_clip(spec, size=(cfg.image_height, cfg.image_width), fx=cfg.fx, baseline=cfg.baseline,
                              backend=cfg.render_backend, supersample=cfg.supersample, noise_sigma=cfg.noise_sigma,
                              rng=rng, name=clip_id(job))


def write_frames(folder: Path, left: np.ndarray, quality: int) -> None:
    for t, img in enumerate(left):
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        common.atomic_write_bytes(folder / f"{t:02d}.jpg", buf.tobytes())


def process(job: tuple, cfg: CurationParams, run_dir: Path) -> dict:
    """Curate one job and write its files; never raises (a failure becomes a row with status "failed")."""
    cv2.setNumThreads(1)  # one core per worker: parallelism comes from the process pool
    cid = clip_id(job)
    origin = str(job[1]) if job[0] != "synthetic" else f"synthetic clip {job[1]}"
    row = {"clip_id": cid, "source": job[0], "input": origin}
    if job[0] == "synthetic":
        from . import scene
        row["generator"] = scene.GENERATOR_VERSION
    try:
        t0 = time.perf_counter()
        clip = make_clip(job, cfg)
        make_s = time.perf_counter() - t0
        meta, diag = curate_clip(clip, cfg, rng=np.random.default_rng([cfg.seed, zlib.crc32(cid.encode())]))
        clips.save_meta(run_dir / "meta" / f"{cid}.npz", meta)
        row["meta"] = f"meta/{cid}.npz"
        if clip.gt and "meta" in clip.gt:
            clips.save_meta(run_dir / "gt" / f"{cid}.npz", clip.gt["meta"])
            row["gt"] = f"gt/{cid}.npz"
        write_frames(run_dir / "frames" / cid, clip.left, cfg.jpeg_quality)
        row.update(frames=f"frames/{cid}", status="ok", reason="", num_frames=clip.num_frames,
                   num_objects=meta.num_objects, pose_failed_frames=len(diag["pose"]["pose_failed_frames"]))
        m = {"clip_id": cid, "seconds": diag["seconds"]["total"], "cpu_seconds": diag["cpu_seconds"],
             "load_seconds": make_s, **{f"seconds_{k}": v for k, v in diag["seconds"].items() if k != "total"}}
        m.update(evaluate(clip, meta, diag["depth"]))
        row["metrics"] = m
    except Exception as e:  # one bad clip must not stop the batch: report file + reason
        row.update(status="failed", reason=f"{type(e).__name__}: {e}", trace=traceback.format_exc(limit=3))
    return row


def jobs_for(cfg: CurationParams) -> list[tuple]:
    """("synthetic", i) for i < num_clips, or ("input", path) for the first num_clips clips found."""
    if cfg.num_objects_min > cfg.num_objects_max:
        raise common.ParamError(f"num_objects_min={cfg.num_objects_min} > num_objects_max={cfg.num_objects_max}")
    if not cfg.input_path:
        return [("synthetic", i) for i in range(cfg.num_clips)]
    found = readers.find_clips(common.resolve(cfg.input_path))
    if not found:
        raise ValueError(f"{cfg.input_path}: no stereo clips found (formats: docs/CURATION.md)")
    return [("input", str(p)) for p in found[:cfg.num_clips]]


def done_ids(run_dir: Path) -> set[str]:
    """Clip ids whose latest index row is ok and whose metadata file exists (resume skips them); a synthetic
    clip also needs the current ``scene.GENERATOR_VERSION`` (its scene would differ otherwise)."""
    from . import scene
    path = run_dir / "index.jsonl"
    latest = {r["clip_id"]: r for r in common.read_jsonl(path)} if path.exists() else {}
    return {c for c, r in latest.items() if r.get("status") == "ok" and (run_dir / r.get("meta", "")).is_file()
            and (r.get("source") != "synthetic" or r.get("generator") == scene.GENERATOR_VERSION)}


AGG = ("depth_absrel", "depth_delta1", "depth_density", "depth_within5", "depth_objects_absrel", "pose_ate_m",
       "pose_rpe_trans_m", "pose_rpe_rot_deg", "pose_drift_pct")


def aggregate(rows: list[dict], failed: list[dict]) -> dict:
    """metrics.json: means over clips (object centre error: median over all pooled clip medians), counts."""
    def mean(k):
        v = [r[k] for r in rows if k in r and r[k] is not None and np.isfinite(r[k])]
        return float(np.mean(v)) if v else None
    out = {k: mean(k) for k in AGG}
    oc = [r["object_center_err_m"] for r in rows if np.isfinite(r.get("object_center_err_m", np.nan))]
    out["object_center_err_m"] = float(np.median(oc)) if oc else None
    out.update(clips_ok=len(rows), clips_failed=len(failed), seconds_per_clip=mean("seconds"),
               cpu_seconds_per_clip=mean("cpu_seconds"), load_seconds_per_clip=mean("load_seconds"),
               failed=[{"clip_id": f["clip_id"], "input": f["input"], "reason": f["reason"]} for f in failed])
    return out


def run(cfg: CurationParams, run_dir: str | Path, progress: bool = True) -> dict:
    """Curate every job (skipping done ones), append index/metric rows as clips finish, write metrics.json."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    jobs = jobs_for(cfg)
    done = done_ids(run_dir)
    todo = [j for j in jobs if clip_id(j) not in done]
    from tqdm.auto import tqdm
    bar = tqdm(total=len(todo), desc="curate", disable=not progress, unit="clip")
    if cfg.workers > 1 and len(todo) > 1:
        # spawn (not fork): OpenCV/BLAS thread pools do not survive a fork safely. A dead worker (segfault,
        # OOM) breaks the pool: its clips are reported failed (retried on the next run), never a hang.
        with ProcessPoolExecutor(min(cfg.workers, len(todo)), mp_context=mp.get_context("spawn")) as ex:
            futs = {ex.submit(process, j, cfg, run_dir): j for j in todo}
            for fut in as_completed(futs):
                try:
                    row = fut.result()
                except Exception as e:  # BrokenProcessPool and friends
                    j = futs[fut]
                    row = {"clip_id": clip_id(j), "source": j[0], "input": str(j[1]), "status": "failed",
                           "reason": f"worker process died: {type(e).__name__}: {e}"}
                _record(run_dir, row, bar)
    else:
        for j in todo:
            _record(run_dir, process(j, cfg, run_dir), bar)
    bar.close()
    latest = {r["clip_id"]: r for r in common.read_jsonl(run_dir / "index.jsonl")} if todo or done else {}
    ids = {clip_id(j) for j in jobs}
    mrows = {r["clip_id"]: r for r in common.read_jsonl(run_dir / "clips_metrics.jsonl")} \
        if (run_dir / "clips_metrics.jsonl").exists() else {}
    ok = [mrows[c] for c in sorted(ids) if latest.get(c, {}).get("status") == "ok" and c in mrows]
    failed = [latest[c] for c in sorted(ids) if latest.get(c, {}).get("status") == "failed"]
    metrics = aggregate(ok, failed)
    common.write_metrics(run_dir, metrics)
    return metrics


def _record(run_dir: Path, row: dict, bar) -> None:
    m = row.pop("metrics", None)
    if m is not None:
        common.append_jsonl(run_dir / "clips_metrics.jsonl", m)
    common.append_jsonl(run_dir / "index.jsonl", {k: v for k, v in row.items() if k != "trace"})
    if row["status"] != "ok":
        bar.write(f"[curate] FAILED {row['input']}: {row['reason']}")
    bar.update(1)


# ----------------------------------------------------------------------------------------------------------
# Notebook helpers (read the run's files; the notebook stays thin)
# ----------------------------------------------------------------------------------------------------------
TABLE_COLUMNS = ("clip_id", "depth_absrel", "depth_delta1", "depth_density", "depth_objects_absrel", "pose_ate_m",
                 "pose_rpe_rot_deg", "path_m", "object_center_err_m", "object_obs", "seconds", "cpu_seconds")


def metrics_table(run_dir: str | Path):
    """pandas DataFrame of clips_metrics.jsonl (latest row per clip) plus a mean row and a median row."""
    import pandas as pd
    path = Path(run_dir) / "clips_metrics.jsonl"
    rows = list({r["clip_id"]: r for r in common.read_jsonl(path)}.values()) if path.exists() else []
    df = pd.DataFrame(rows, columns=[c for c in TABLE_COLUMNS if not rows or c in rows[0] or c == "clip_id"])
    if df.empty:
        return df
    num = df.drop(columns="clip_id")
    summary = pd.DataFrame([num.mean(), num.median()], index=["mean", "median"]).assign(clip_id=["(mean)", "(median)"])
    return pd.concat([df, summary], ignore_index=True)


def preview(cfg: CurationParams, run_dir: str | Path, clip_index: int | None = None):
    """Re-make and re-curate one job in-process (for figures): (clip, curated meta, diagnostics).
    ``clip_index`` None: the clip with the longest ground-truth camera path in clips_metrics.jsonl (else 0)."""
    jobs = jobs_for(cfg)
    if clip_index is None:
        path = Path(run_dir) / "clips_metrics.jsonl"
        lengths = {r["clip_id"]: r.get("path_m", 0.0) for r in common.read_jsonl(path)} if path.exists() else {}
        clip_index = max(range(len(jobs)), key=lambda i: lengths.get(clip_id(jobs[i]), 0.0) or 0.0)
    job = jobs[clip_index]
    clip = make_clip(job, cfg)
    meta, diag = curate_clip(clip, cfg, rng=np.random.default_rng([cfg.seed, zlib.crc32(clip_id(job).encode())]))
    return clip, meta, diag


def add_metrics(run_dir: str | Path, **extra) -> dict:
    """Merge ``extra`` entries into metrics.json (e.g. the Middlebury check) and return the merged dict."""
    metrics = {**common.read_json(Path(run_dir) / "metrics.json"), **extra}
    common.write_metrics(run_dir, metrics)
    return metrics


# ----------------------------------------------------------------------------------------------------------
# CLI: real clips, no ground truth and no masks needed
# ----------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mllm4d.curate", description=__doc__.split("\n")[0])
    ap.add_argument("--input", required=True, help="a clip or a folder of clips (npz / sbs video / left+right folder)")
    ap.add_argument("--out", required=True, help="output folder (meta/, frames/, index.jsonl, metrics.json)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--num-frames", type=int, default=0, help="keep the first N frames (0 = all)")
    ap.add_argument("--params", default="", help="YAML of CurationParams overrides (default: notebook defaults)")
    a = ap.parse_args(argv)
    from . import runner
    values = dict(runner.notebook_defaults(STAGE))
    if a.params:
        values.update(runner.load_yaml(Path(a.params)))
    n_found = len(readers.find_clips(a.input))
    values.update(input_path=str(Path(a.input).resolve()), workers=a.workers, num_clips=max(n_found, 1),
                  num_frames=a.num_frames if a.num_frames >= 2 else 10**6)
    cfg = common.validate(CurationParams, values, source="curate CLI")
    metrics = run(cfg, Path(a.out))
    print(f"curated {metrics['clips_ok']} clip(s), {metrics['clips_failed']} failed -> {a.out}")
    for f in metrics["failed"]:
        print(f"  FAILED {f['input']}: {f['reason']}", file=sys.stderr)
    return 0 if metrics["clips_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
