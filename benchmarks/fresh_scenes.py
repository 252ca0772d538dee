"""Fresh synthetic scenes for the object subtasks (issue 7, a lever of the seventh round): a dataset run whose SFT
split is the tiny one plus object questions about *new* scenes, each asked about a scene no other row shows, so
the model cannot memorise them (what the 600-1200 object rows of the 144 training clips allow; docs/TRAINING.md).

    .venv/bin/python benchmarks/fresh_scenes.py fresh3k --clips 3000 --per-clip 2
    # then train on it and score as Table 3's SFT row, e.g. with the steps curve:
    .venv/bin/python benchmarks/steps_to_learn.py fresh3k dataset_run=tiny-fresh3k max_steps=4000 eval_every=1000

Per batch of 64 scenes (``scene.sample_scenes`` with the generator of ``SeedSequence(seed, (batch, 0))``, never
the 01_curation scenes): exact metadata (``scene.gt_meta_batch``, the 01_curation camera: 320×240, fx 260), the
tiny solver and QA settings (notebook defaults + ``params/tiny/02_solver.yaml`` / ``03_dataset.yaml``, as
03_dataset's), the rows of ``--subtasks`` only, ``--per-clip`` per scene on average, label-balanced over each batch
(``selection.take``); batches run in ``--workers`` processes. Only the two frames a row's question window gives the recipe (``frame_i``, ``frame_j``) are rendered (numpy ray caster, left view), directly at
128×128 with the intrinsics of the 320×240 camera scaled to it (fx 104, fy 138.7: what resizing the 320×240 frame
gives), and written as JPEG quality 90; the row lists all 32 paths as 03_dataset does, the others are not
written. Deviations from the curated rows: exact labels (no curation error), no image noise, point-sampled
pixels instead of a resized render.

Output: ``outputs/03_dataset/<dataset_run>-<NAME>/``: ``sft.jsonl`` = the tiny rows + the fresh ones (shuffled
together), ``fresh.jsonl`` (the fresh rows alone), ``frames/`` (links to the tiny run's clips + the fresh scenes),
everything else linked; ``fresh_report.json`` (rows per subtask and label, seconds).
"""
from __future__ import annotations

import argparse
import collections
import os
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from mllm4d import common, dataset, render, scene, selection, solver  # noqa: E402
from dataset_scale import stage_params  # noqa: E402  (notebook defaults + params/<profile>/<stem>.yaml)

SIZE, SRC_SIZE, FX = 128, (240, 320), 260.0
BATCH = 64


def intrinsics_128() -> np.ndarray:
    """K of the 01_curation camera (320×240, fx = fy = 260, centred) scaled to a 128×128 image."""
    sx, sy = SIZE / SRC_SIZE[1], SIZE / SRC_SIZE[0]
    return np.array([[FX * sx, 0, (SIZE - 1) / 2], [0, FX * sy, (SIZE - 1) / 2], [0, 0, 1.0]])


def render_frames(spec: scene.SceneSpec, frames: set[int], out_dir: Path) -> None:
    """Write left-view frames ``frames`` of ``spec`` as ``out_dir/TT.jpg`` (128×128, JPEG 90)."""
    p, c2w, K = render.prepare(spec), scene.camera2world(spec), intrinsics_128()
    out_dir.mkdir(parents=True, exist_ok=True)
    for t in sorted(frames):
        rgb = render.render_view(p, t, c2w[t], K, (SIZE, SIZE))[0]
        img = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
        cv2.imwrite(str(out_dir / f"{t:02d}.jpg"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])


def batch_rows(b: int, n_clips: int, subtasks: tuple[str, ...], per_clip: int, seed: int, scfg, qcfg,
               frames_root: Path) -> list[dict]:
    """Rows of batch ``b`` (scenes ``b*BATCH`` …): ``per_clip`` × scenes, label-balanced over the batch."""
    names = [f"fresh{k:05d}" for k in range(b * BATCH, min((b + 1) * BATCH, n_clips))]
    specs = scene.sample_scenes(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b, 0))),
                                len(names), names=names)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(b, 1)))
    per, _ = dataset.rows_for_clips(scene.gt_meta_batch(specs), scfg, qcfg, [None] * len(specs), rng)
    pool = [{"row": r} for rows in per for r in rows if r["subtask"] in subtasks]
    picked = [it["row"] for it in selection.take(pool, per_clip * len(specs), rng, balance=True)]
    for spec in specs:
        ts = {t for r in picked if r["clip_id"] == spec.name for t in (r["frame_i"], r["frame_j"])}
        if ts:
            render_frames(spec, ts, frames_root / spec.name)
    return picked


def fresh_rows(n_clips: int, subtasks: tuple[str, ...], per_clip: int, seed: int, scfg, qcfg, frames_root: Path,
               workers: int = 2) -> list[dict]:
    """Rows about ``n_clips`` new scenes (module docstring), their frames rendered under ``frames_root``; batches
    run in ``workers`` processes, rows in batch order (the same rows for any ``workers``)."""
    from concurrent.futures import ProcessPoolExecutor
    args = (n_clips, subtasks, per_clip, seed, scfg, qcfg, frames_root)
    if workers == 1:
        return [r for b in range(-(-n_clips // BATCH)) for r in batch_rows(b, *args)]
    with ProcessPoolExecutor(workers) as ex:
        futs = [ex.submit(batch_rows, b, *args) for b in range(-(-n_clips // BATCH))]
        return [r for f in futs for r in f.result()]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name")
    ap.add_argument("--clips", type=int, default=3000)
    ap.add_argument("--per-clip", type=int, default=2)
    ap.add_argument("--subtasks", default="ocrd,ocrdir")
    ap.add_argument("--dataset-run", default="tiny")
    ap.add_argument("--outputs-root", default="outputs")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    t0 = time.time()
    src = common.upstream_dir("03_dataset", a.dataset_run, a.outputs_root, require=("sft.jsonl", "bench.jsonl"))
    dst = common.stage_dir("03_dataset", f"{a.dataset_run}-{a.name}", a.outputs_root)
    scfg = solver.config_from(stage_params("02_solver", "tiny", None))
    dvals = stage_params("03_dataset", "tiny", None)
    qcfg = dataset.qa_config(common.validate(dataset.DatasetParams, dvals, source="params/tiny/03_dataset.yaml"))
    shutil.rmtree(dst, ignore_errors=True)
    (dst / "frames").mkdir(parents=True)
    for f in src.iterdir():
        if f.name not in ("sft.jsonl", "frames", "export") and not f.name.startswith("items-"):
            os.symlink(f.resolve(), dst / f.name)
    for c in (src / "frames").iterdir():
        os.symlink(c.resolve(), dst / "frames" / c.name)
    fresh = fresh_rows(a.clips, tuple(a.subtasks.split(",")), a.per_clip, a.seed, scfg, qcfg, dst / "frames",
                       a.workers)
    real = common.read_jsonl(src / "sft.jsonl")
    mixed = [*real, *fresh]
    order = np.random.default_rng(a.seed).permutation(len(mixed))
    common.write_jsonl(dst / "fresh.jsonl", fresh)
    common.write_jsonl(dst / "sft.jsonl", [mixed[i] for i in order])
    labels = collections.Counter(f"{r['subtask']}:{r['options'][r['answer']]}" for r in fresh)
    report = {"fresh_rows": len(fresh), "real_rows": len(real), "clips": a.clips, "per_clip": a.per_clip,
              "labels": dict(sorted(labels.items())), "seconds": round(time.time() - t0, 1)}
    common.write_json(dst / "fresh_report.json", report)
    print(report, flush=True)
    return report


if __name__ == "__main__":
    main()
