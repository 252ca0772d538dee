"""Curation accuracy and speed against exact ground truth (targets from the H1b brief, probe in stereo.md §4).

    python benchmarks/curation_bench.py --clips 8 [--noise 2] [--ablate] [--out bench.json]

Scenes: ``scene.sample_scene`` rendered at 320x240, fx=260, baseline 0.12 m, 32 frames at 10 fps (camera
paths 0-1.5 m). Curation runs in this process with OpenCV limited to one thread, so ``cpu_s`` is seconds
per clip *per core* (process time: robust to other jobs sharing the machine; wall time is reported too).
Targets: depth AbsRel <= 0.030, ATE <= 0.01 m, median object-centre error <= 0.06 m, <= 2 s per clip per core.
The Middlebury 2014 Motorcycle pair (real, bundled by scikit-image) is checked with the same stereo settings.
"""
from __future__ import annotations

import argparse
import dataclasses
import time
import warnings

import cv2
import numpy as np

from mllm4d import common, curate, runner, stereo

TARGETS = {"depth_absrel": 0.030, "pose_ate_m": 0.01, "object_center_err_m": 0.06, "cpu_s": 2.0}
ABLATIONS = {
    "default": {},
    "no WLS": {"wls": False},
    "no sub-pixel refinement": {"refine_iters": 0},
    "frame-to-frame pose (refs=[1])": {"pose_refs": [1]},
    "no object masks in pose": {"mask_objects_in_pose": False},
    "left padding": {"pad_left": True},
}


def bench(n_clips: int, noise: float, overrides: dict, seed: int) -> dict:
    values = {**runner.notebook_defaults("01_curation"), "num_frames": 32, "image_height": 240, "image_width": 320,
              "fx": 260.0, "baseline": 0.12, "noise_sigma": noise, "seed": seed, "render_backend": "auto", **overrides}
    cfg = common.validate(curate.CurationParams, values)
    rows = []
    for i in range(n_clips):
        clip = curate.make_clip(("synthetic", i), cfg)
        w0, c0 = time.perf_counter(), time.process_time()
        meta, diag = curate.curate_clip(clip, cfg)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        rows.append({"clip": i, **curate.evaluate(clip, meta, diag["depth"]), "cpu_s": cpu, "wall_s": wall,
                     "pose_failed": len(diag["pose"]["pose_failed_frames"])})
    agg = {k: float(np.nanmean([r[k] for r in rows])) for k in ("depth_absrel", "depth_delta1", "depth_density",
                                                                 "depth_objects_absrel", "pose_ate_m",
                                                                 "pose_rpe_rot_deg", "cpu_s", "wall_s")}
    errs = [r["object_center_err_m"] for r in rows if np.isfinite(r.get("object_center_err_m", np.nan))]
    agg["object_center_err_m"] = float(np.median(errs)) if errs else float("nan")
    agg["pose_ate_max_m"] = float(np.max([r["pose_ate_m"] for r in rows]))
    return {"aggregate": agg, "clips": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--noise", type=float, default=0.0, help="image noise std, grey levels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ablate", action="store_true", help="also run each ablation (slower)")
    ap.add_argument("--out", default="", help="write the full results as JSON here")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    warnings.filterwarnings("ignore", message="render_clip: moderngl")
    results = {}
    for name, over in (ABLATIONS if a.ablate else {"default": {}}).items():
        results[name] = bench(a.clips, a.noise, over, a.seed)
        g = results[name]["aggregate"]
        print(f"{name:34s} AbsRel {g['depth_absrel']:.4f} (objects {g['depth_objects_absrel']:.4f}) "
              f"density {g['depth_density']:.3f} | ATE {100 * g['pose_ate_m']:.2f} cm (max {100 * g['pose_ate_max_m']:.2f})"
              f" RPE {g['pose_rpe_rot_deg']:.3f} deg | obj centre {100 * g['object_center_err_m']:.1f} cm | "
              f"{g['cpu_s']:.2f} s CPU / {g['wall_s']:.2f} s wall per clip", flush=True)
    defaults = curate.stereo_config(common.validate(curate.CurationParams, runner.notebook_defaults("01_curation")))
    mb_fast = stereo.middlebury_motorcycle(defaults)["metrics"]
    mb = stereo.middlebury_motorcycle(dataclasses.replace(defaults, wls_right_sgbm=True))["metrics"]
    print(f"Middlebury Motorcycle (notebook default, warped right map): EPE {mb_fast['epe_px']:.2f} px, "
          f"bad-2px {100 * mb_fast['bad2px']:.1f} %, AbsRel {mb_fast['absrel']:.4f}")
    print(f"Middlebury Motorcycle (real-data setting wls_right_sgbm): EPE {mb['epe_px']:.2f} px, bad-2px {100 * mb['bad2px']:.1f} %, "
          f"AbsRel {mb['absrel']:.4f}, density {mb['density']:.2f}")
    g = results["default"]["aggregate"]
    ok = all(g[k] <= v for k, v in TARGETS.items())
    for k, v in TARGETS.items():
        print(f"  {k:22s} {g[k]:.4f}  target <= {v}  {'PASS' if g[k] <= v else 'FAIL'}")
    if a.out:
        common.write_json(a.out, {"args": vars(a), "results": results, "middlebury": mb, "middlebury_warped_right": mb_fast, "targets": TARGETS})
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
