"""Synthetic-data throughput: stereo pairs/s per render backend, and scenes/metadata per second without rendering.

    .venv/bin/python benchmarks/render_bench.py                 # full table (~1-2 min on 2 cores)
    .venv/bin/python benchmarks/render_bench.py --quick         # fewer frames/clips

Rendering is timed end to end through ``render.render_clip`` (ray casting, shading, read-back, uint8
conversion and the exact GT metadata), one process, wall clock. The 2-core machines are shared: treat the
numbers as +-2x and compare backends within one run (stereo.md §0).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from mllm4d import render, scene  # noqa: E402


def _rate(fn, n: int) -> tuple[float, float]:
    """(items per wall-clock second, items per CPU second of this process, all its threads included).
    The CPU rate is robust to other jobs on a shared machine; wall ~ CPU rate x usable cores."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def agreement(n_scenes: int, T: int, backend: str) -> dict:
    """Accuracy of the fast paths: moderngl vs numpy renders (depth, ids, colour) at 320x240, and
    ``gt_meta_fast`` (no render) vs the exact render's metadata at 320x240 (``backend`` renders)."""
    specs = scene.sample_scenes(np.random.default_rng(1), n_scenes, num_frames=T)
    out: dict = {}
    if render.gl_available():
        a, b = (render.render_clip(specs[0], backend=k) for k in ("numpy", "moderngl"))
        da, db = a.gt["depth"], b.gt["depth"]
        out["gl_vs_numpy"] = {"median_rel_depth": float(np.median(np.abs(da - db) / da)),
                              "p99_rel_depth": float(np.percentile(np.abs(da - db) / da, 99)),
                              "instance_agree": float((a.gt["instance"] == b.gt["instance"]).mean()),
                              "colour_mae_grey_levels": float(np.abs(a.left.astype(int) - b.left).mean())}
    metas = [render.render_clip(s, backend=backend).gt["meta"] for s in specs]
    for occlusion in (False, True):
        err, err_occ, frac, valid_agree, trunc_agree = [], [], [], [], []
        for s, m in zip(specs, metas):
            f = scene.gt_meta_fast(s, occlusion=occlusion)
            both = m.obj_valid & f.obj_valid
            e = np.linalg.norm(m.obj_centre - f.obj_centre, axis=-1)
            err.append(e[both & (m.obj_visible_frac > 0.99)])                  # unoccluded, usable
            err_occ.append(e[both & (m.obj_visible_frac < 0.95)])              # partly occluded, usable
            frac.append(np.abs(m.obj_visible_frac - f.obj_visible_frac)[m.obj_point_counts > 0])
            valid_agree.append((m.obj_valid == f.obj_valid).mean())
            trunc_agree.append((m.obj_truncated == f.obj_truncated).mean())
        e, eo = np.concatenate(err), np.concatenate(err_occ)
        out[f"fast_meta_vs_render{'_occlusion' if occlusion else ''}"] = {
            "unoccluded_obs": len(e), "centre_err_median_m": float(np.median(e)),
            "centre_err_p90_m": float(np.percentile(e, 90)), "occluded_obs": len(eo),
            "occluded_centre_err_median_m": float(np.median(eo)),
            "occluded_centre_err_p90_m": float(np.percentile(eo, 90)),
            "visible_frac_mae": float(np.concatenate(frac).mean()), "valid_agree": float(np.mean(valid_agree)),
            "truncated_agree": float(np.mean(trunc_agree))}
    return out


def _row(what: str, size: str, ss, r: tuple[float, float], unit: str) -> dict:
    return {"what": what, "size": size, "ss": ss, "rate": r[0], "cpu_rate": r[1], "unit": unit}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8-frame clips and 500 metadata clips")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args(argv)
    T = 8 if args.quick else 32
    n_meta = 500 if args.quick else 4000
    rng = np.random.default_rng(0)
    spec = scene.sample_scene(rng, num_frames=T, num_objects=(4, 4), name="bench")
    backends = ["numpy"] + (["moderngl"] if render.gl_available() else [])
    if "moderngl" in backends:                       # compile the shader / create the context outside the timing
        render.render_clip(spec, size=(24, 32), fx=26.0, backend="moderngl")
    rows = []
    for backend in backends:
        for size, fx, ss in (((240, 320), 260.0, 1), ((240, 320), 260.0, 2), ((128, 128), 104.0, 1)):
            n = T if backend == "moderngl" or ss == 1 else max(4, T // 4)
            s = spec if n == T else scene.sample_scene(np.random.default_rng(0), num_frames=n, num_objects=(4, 4))
            r = _rate(lambda: render.render_clip(s, size=size, fx=fx, backend=backend, supersample=ss), n)
            rows.append(_row(f"render {backend}", f"{size[1]}x{size[0]}", ss, r, "pairs/s"))
    # Screen-space ROI culling on/off (numpy) on the same 8-frame scene; the culling is exact (test_render.py).
    n = max(4, T // 4)
    s = scene.sample_scene(np.random.default_rng(0), num_frames=n, num_objects=(4, 4))
    rows.insert(1, _row("render numpy, ROI culling", "320x240", 1,
                        _rate(lambda: render.render_clip(s, backend="numpy"), n), "pairs/s"))
    roi = render._roi
    try:
        render._roi = lambda pc, rad, fx, fy, cx, cy, H, W, ss: (0, H * ss, 0, W * ss)
        r = _rate(lambda: render.render_clip(s, backend="numpy"), n)
    finally:
        render._roi = roi
    rows.insert(2, _row("render numpy, no ROI culling", "320x240", 1, r, "pairs/s"))
    specs = []
    rows.append(_row("scene.sample_scenes", "-", "-", _rate(lambda: specs.extend(scene.sample_scenes(rng, n_meta)),
                                                            n_meta), "clips/s"))
    rows.append(_row("scene.gt_meta_fast", "320x240", "-",
                     _rate(lambda: [scene.gt_meta_fast(s) for s in specs], n_meta), "clips/s"))
    for occ in (False, True):
        rows.append(_row(f"scene.gt_meta_batch(256{', occl.' if occ else ''})", "320x240", "-",
                         _rate(lambda: [scene.gt_meta_batch(specs[i:i + 256], occlusion=occ)
                                        for i in range(0, n_meta, 256)], n_meta), "clips/s"))
    x = np.random.default_rng(0).random(1_000_000)
    t0 = time.perf_counter()
    for _ in range(20):
        np.sin(x)
    calib = time.perf_counter() - t0
    print(f"{'what':28s} {'size':>8s} {'ss':>3s} {'wall rate':>10s} {'CPU rate':>10s}")
    for row in rows:
        print(f"{row['what']:28s} {row['size']:>8s} {row['ss']!s:>3s} {row['rate']:10.1f} {row['cpu_rate']:10.1f}"
              f" {row['unit']}")
    print(f"machine load: 20 x np.sin(1e6 floats) took {calib:.2f} s wall (an idle core: ~0.2 s)")
    acc = agreement(4 if args.quick else 12, T, "moderngl" if "moderngl" in backends else "numpy")
    print(json.dumps(acc, indent=1))
    out = {"frames_per_clip": T, "objects": 4, "rows": rows, "calibration_s": calib, "agreement": acc}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
