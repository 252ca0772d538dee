"""Perception warm-up: procedural motion clips with exact labels, a stand-in for the video pretraining a random
tiny model lacks (issue 7 lever). Never part of the benchmark; the paper profile does not use it.

Why: a random tiny model trained on the ~150 curated training clips of the tiny profile memorises those clips
instead of learning motion (docs/TRAINING.md, "What the tiny model learns"). Procedural clips are free and
unlimited, so the motion features have to generalise.

One clip = ``num_frames`` frames (T, S, S, 3) uint8 cut from a still background image (a frame of a *training*
clip: appearance like the real data, no benchmark frame is ever used) plus one question in the dataset's row
format (docs/FORMATS.md: question from :data:`qa.TEMPLATES`, four shuffled options, answer letter):

- ``crd``: the camera moves — the crop window slides right/left/down/up (camera translates that way: the scene
  slides the other way) or shrinks/grows (forward/backward, a zoom standing in for a dolly);
- ``ocrd``: the camera is still and a coloured disc or square (named like the scene objects: "the red ball")
  grows (closer), shrinks (farther) or keeps its size (not moving), drifting slightly;
- ``ocrdir-lateral``: the shape moves left/right across the image, or stays (not moving);
- ``ocrd-multi`` / ``ocrdir-lateral-multi``: the same with :data:`DISTRACTORS` more shapes of other colours,
  each with its own random label, so the answer needs the shape the question names (as in the real clips),
  not the only thing that changes.

Image axes follow the camera convention (+x right, +y down). The question names "frame 0 and frame 31 of 31" as
the real data do; the row's ``frame_i``/``frame_j`` index the written files (0 and T-1), so a question window
(``models.window_frames``) is the whole procedural clip. Randomness comes from the ``rng`` argument only.

:func:`build` makes the warm-up split of a 04_sft run (``warmup_max_steps`` > 0): one fresh clip per training
sample, backgrounds from the frames of the dataset's *training* clips, plus a held-out set for its accuracy.
Measured (docs/TRAINING.md): a single-task ``crd`` warm-up transfers to the real benchmark's camera questions,
a mixed three-task warm-up learns nothing in the same number of steps.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import common, qa, scene
from .prompts import LETTERS

TASKS = ("crd", "ocrd", "ocrdir-lateral", "ocrd-multi", "ocrdir-lateral-multi")
DISTRACTORS = 2   # "-multi" tasks: other shapes (other colours, their own random motion) besides the named one
CRD = ("right", "left", "down", "up", "forward", "backward")
OBJECT = {"ocrd": ("closer", "farther", "not moving"), "ocrdir-lateral": ("left", "right", "not moving")}
_SHAPES = {"ball": "disc", "drum": "disc", "box": "square", "crate": "square"}


def _window(label: str, t: np.ndarray, W: int, H: int, rng: np.random.Generator) -> np.ndarray:
    """(T, 4) crop boxes (x0, y0, x1, y1) in background pixels for a camera moving ``label``."""
    side = rng.uniform(0.55, 0.7) * min(W, H)
    cx, cy = rng.uniform(side / 2 + 0.15 * W, W - side / 2 - 0.15 * W), rng.uniform(side / 2, H - side / 2)
    cx, cy = np.full_like(t, cx), np.full_like(t, cy)
    s = np.full_like(t, side)
    shift = rng.uniform(0.12, 0.25) * min(W, H)
    if label in ("right", "left"):
        cx = cx + (1 if label == "right" else -1) * shift * (t - 0.5)
    elif label in ("down", "up"):
        cy = np.clip(cy + (1 if label == "down" else -1) * shift * (t - 0.5), side / 2, H - side / 2)
    else:
        zoom = rng.uniform(0.25, 0.4)
        s = side * (1 - zoom * (t - 0.5)) if label == "forward" else side * (1 + zoom * (t - 0.5))
        s = np.minimum(s, min(W, H) * 0.98)
    half = s / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], -1)


def _crop(img: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """Resample ``img`` (H,W,3) inside ``box`` to (size, size, 3), nearest-clamped at the borders."""
    import cv2
    x0, y0, x1, y1 = box
    m = np.array([[(x1 - x0) / size, 0, x0], [0, (y1 - y0) / size, y0]], np.float64)
    return cv2.warpAffine(img, m, (size, size), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def _paste(frames: np.ndarray, label: str, task: str, colour: np.ndarray, shape: str,
           rng: np.random.Generator) -> None:
    """Draw the moving shape into ``frames`` (T,S,S,3) in place."""
    import cv2
    T, S = frames.shape[:2]
    t = np.linspace(0, 1, T)
    r0 = rng.uniform(0.08, 0.13) * S
    x, y = rng.uniform(0.3, 0.7) * S, rng.uniform(0.35, 0.75) * S
    xs, rs = np.full(T, x), np.full(T, r0)
    if task == "ocrd" and label != "not moving":
        rs = r0 * (1 + (1 if label == "closer" else -1) * rng.uniform(0.5, 0.8) * (t - 0.5))
    if task == "ocrdir-lateral" and label != "not moving":
        xs = x + (1 if label == "right" else -1) * rng.uniform(0.3, 0.45) * S * (t - 0.5)
    xs = xs + rng.normal(0, 0.005 * S, T)  # a little jitter: "not moving" must not mean pixel-identical
    bgr = tuple(int(c) for c in (np.asarray(colour) * 255))
    for k in range(T):
        c, r = (int(round(xs[k])), int(round(y))), max(int(round(rs[k])), 2)
        if shape == "disc":
            cv2.circle(frames[k], c, r, bgr, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(frames[k], (c[0] - r, c[1] - r), (c[0] + r, c[1] + r), bgr, -1, cv2.LINE_AA)


def make_clip(background: np.ndarray, rng: np.random.Generator, num_frames: int = 8, size: int = 128,
              task: str | None = None) -> tuple[np.ndarray, dict]:
    """One procedural clip: frames (T, size, size, 3) uint8 RGB and its row fields (question, options, answer,
    subtask, variant, frame_i, frame_j). ``background``: (H, W, 3) uint8 RGB still image."""
    task = task or TASKS[int(rng.integers(len(TASKS)))]
    H, W = background.shape[:2]
    t = np.linspace(0, 1, num_frames)
    cam = CRD[int(rng.integers(6))] if task == "crd" else "static"
    boxes = _window(cam, t, W, H, rng) if task == "crd" else np.repeat(_window("right", t[:1], W, H, rng), num_frames, 0)
    frames = np.stack([_crop(background, b, size) for b in boxes])
    n = 31  # questions name frames as in the real data ("frame 0 and frame 31 of 31")
    if task == "crd":
        label = cam
        pool = [l for l in CRD if l != label]
        texts = [qa.OPTION_TEXT[l] for l in [label] + [pool[q] for q in rng.permutation(5)[:3]]]
        obj = ""
    else:
        multi = task.endswith("-multi")
        task = task.removesuffix("-multi")
        label = OBJECT[task][int(rng.integers(3))]
        colours = rng.permutation(len(scene.COLOURS))[:1 + DISTRACTORS * multi]
        names = [list(scene.COLOURS)[c] for c in colours]
        cats = [list(_SHAPES)[int(rng.integers(len(_SHAPES)))] for _ in names]
        for c, cat in list(zip(names, cats))[1:]:  # distractors first: the named shape is drawn on top
            _paste(frames, OBJECT[task][int(rng.integers(3))], task, scene.COLOURS[c], _SHAPES[cat], rng)
        _paste(frames, label, task, scene.COLOURS[names[0]], _SHAPES[cats[0]], rng)
        obj = f"the {names[0]} {cats[0]}"
        texts = [qa.OPTION_TEXT[l] for l in [label] + [l for l in OBJECT[task] if l != label]] + [qa.CANNOT]
    templates = qa.TEMPLATES[task]
    question = templates[int(rng.integers(len(templates)))].format(i=0, j=n, n=n, obj=obj)
    perm = rng.permutation(4)
    options = {LETTERS[k]: texts[p] for k, p in enumerate(perm)}
    sub, _, variant = task.partition("-")
    return frames, {"subtask": sub, "variant": variant, "question": question, "options": options,
                    "answer": LETTERS[int(np.flatnonzero(perm == 0)[0])], "frame_i": 0, "frame_j": n}


def write(out_dir: str | Path, backgrounds: Sequence[str | Path], n_clips: int, rng: np.random.Generator,
          num_frames: int = 8, size: int = 128, quality: int = 90, tasks: Sequence[str] = TASKS,
          split: str = "sft.jsonl", prefix: str = "w") -> dict:
    """Write ``n_clips`` procedural clips of ``tasks`` as a dataset run folder: ``frames/<prefix><k>/<t>.jpg``
    and ``split`` (rows with ``frames`` relative to ``out_dir``). A rerun with the same arguments rewrites the
    same bytes. Returns counts per subtask/label."""
    import cv2
    out = Path(out_dir)
    rows, counts = [], {}
    bgs = [cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in backgrounds]
    for k in range(n_clips):
        task = tasks[int(rng.integers(len(tasks)))]
        frames, row = make_clip(bgs[int(rng.integers(len(bgs)))], rng, num_frames, size, task=task)
        row["frame_j"] = num_frames - 1  # index of the last written file (the question text says 31)
        cid = f"{prefix}{k:05d}"
        paths = []
        for t, f in enumerate(frames):
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
            common.atomic_write_bytes(out / "frames" / cid / f"{t:02d}.jpg", buf.tobytes())
            paths.append(f"frames/{cid}/{t:02d}.jpg")
        key = f"{row['subtask']}{'-' + row['variant'] if row['variant'] else ''}:{row['options'][row['answer']]}"
        counts[key] = counts.get(key, 0) + 1
        rows.append({"id": f"{cid}-{row['subtask']}", "clip_id": cid, "object": 0, **row, "frames": paths})
    common.write_jsonl(out / split, rows)
    return counts


def parse_tasks(text: str) -> tuple[str, ...]:
    """``"crd,ocrd"`` -> ("crd", "ocrd"); unknown names raise ValueError naming them."""
    tasks = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise ValueError(f"warm-up tasks must be a comma list of {TASKS}, got {text!r}")
    return tasks


def build(out_dir: str | Path, dataset_dir: str | Path, n_clips: int, n_heldout: int, tasks: Sequence[str],
          size: int, seed: int, num_frames: int = 2, n_mix: int = 0) -> Path:
    """The warm-up split of a 04_sft run under ``out_dir``: ``sft.jsonl`` (``n_clips`` clips), ``heldout.jsonl``
    (``n_heldout`` other clips, never trained on) and ``mix.jsonl`` (``n_mix`` more, mixed into the SFT split by
    :func:`mix_split`), backgrounds = frames 0/16/31 of the clips in
    ``dataset_dir/sft.jsonl`` (training clips only: no benchmark frame). Reused when ``meta.json`` matches;
    written atomically per file, so a killed build is redone. Returns ``out_dir``."""
    out, d = Path(out_dir), Path(dataset_dir)
    clips = sorted({r["clip_id"] for r in common.read_jsonl(d / "sft.jsonl")})
    meta = {"n_clips": n_clips, "n_heldout": n_heldout, "tasks": list(tasks), "size": size, "seed": seed,
            "num_frames": num_frames, "n_mix": n_mix, "train_clips": clips, "version": 1}
    if (out / "meta.json").exists() and {k: v for k, v in common.read_json(out / "meta.json").items()
                                         if k != "labels"} == meta:
        return out
    bgs = [p for c in clips for t in (0, 16, 31) if (p := d / "frames" / c / f"{t:02d}.jpg").exists()]
    if not bgs:
        raise FileNotFoundError(f"{d / 'frames'}: no frames of the training clips to cut warm-up clips from")
    rng = np.random.default_rng(seed)
    counts = write(out, bgs, n_clips, rng, num_frames, size, tasks=tasks)
    write(out, bgs, n_heldout, rng, num_frames, size, tasks=tasks, split="heldout.jsonl", prefix="h")
    write(out, bgs, n_mix, rng, num_frames, size, tasks=tasks, split="mix.jsonl", prefix="m")
    common.write_json(out / "meta.json", {**meta, "labels": counts})
    return out


def mix_split(out_path: str | Path, real_split: str | Path, mix_split_path: str | Path) -> Path:
    """Write ``out_path``: the rows of ``real_split`` followed by those of ``mix_split_path`` (the trainer
    shuffles), every ``frames`` path rewritten relative to ``out_path``'s folder so one data folder serves both."""
    out = Path(out_path)
    rows = []
    for src in (Path(real_split), Path(mix_split_path)):
        for r in common.read_jsonl(src):
            rows.append({**r, "frames": [os.path.relpath(src.parent / f, out.parent) for f in r["frames"]]})
    common.write_jsonl(out, rows)
    return out


def heldout_accuracy(model: Any, proc: Any, data_dir: Path, mode: str, num_frames: int, frame_size: Sequence[int],
                     fps: float, frame_window: str) -> dict:
    """Greedy accuracy (fraction) of a warm-up model on ``data_dir/heldout.jsonl`` per task and overall (04_sft
    reports it in ``warmup/stage_metrics.json``; never part of the benchmark). ``mode``: prompts.messages mode."""
    from . import answer, models, prompts
    rows = common.read_jsonl(Path(data_dir) / "heldout.jsonl")
    frames = [models.read_frames([Path(data_dir) / f for f in models.window_frames(r["frames"], r, frame_window)],
                                 num_frames, frame_size) for r in rows]
    model.eval()
    outs = models.generate(model, proc, [prompts.messages(r, mode) for r in rows], frames, max_new_tokens=8, fps=fps)
    hits: dict[str, list[bool]] = {}
    for r, o in zip(rows, outs):
        hits.setdefault(r["subtask"] + (f"-{r['variant']}" if r.get("variant") else ""), []).append(
            answer.extract_choice(o, r["options"]) == r["answer"])
    return {**{k: sum(v) / len(v) for k, v in hits.items()},
            "overall": sum(map(sum, hits.values())) / max(len(rows), 1), "n": len(rows)}
