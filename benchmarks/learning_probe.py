"""Learning probe for the tiny profile (issue 7): SFT with a held-out benchmark score every N steps, with and
without the video (blind control), so a lever's effect on *learning from video* can be measured in minutes.

    .venv/bin/python benchmarks/learning_probe.py NAME [key=value ...]
    # e.g. the tiny SFT recipe for 2500 steps, scored every 500:
    .venv/bin/python benchmarks/learning_probe.py text128 max_steps=2500 eval_every=500 \\
        frame_size=[128,128] batch_size=8 sft_prompt=direct_text
    # letter targets on 64x64 frames (the previous tiny profile):
    .venv/bin/python benchmarks/learning_probe.py letters64 max_steps=800 sft_prompt=direct frame_size=[64,64]

``key=value`` pairs override ``params/tiny/04_sft.yaml`` (values parsed as YAML); extra keys: ``dataset_run``
(default ``tiny``: run 01-03 of the tiny profile first), ``eval_every`` (steps), ``bench_max`` (items, 0 = all),
``warmup_clips`` (N > 0: train on N procedural motion clips of :mod:`mllm4d.warmup` instead of ``sft.jsonl``, cut
from frames of the run's *training* clips, still scored on the real benchmark; e.g. ``warmup_clips=3000``).
The stage is always ``sft`` and the run goes to ``outputs/04_sft/probe_<NAME>/`` (deleted first).

Scoring: ``direct`` (letter) models are scored by the arg-max over the four letter logits at the answer position
(the greedy first token restricted to A-D); ``direct_text`` models generate 8 greedy tokens, mapped to an option
by :func:`answer.extract_choice` (an answer that names no option scores 0). The blind score pairs every question
with the frames of the item 37 places further on (another clip for all but the smallest benchmarks).

Output: one ``EVAL {json}`` line per evaluation on stdout (per-subtask accuracy, letter counts, the blind scores,
step, seconds, last logged loss) and all of them in ``outputs/04_sft/probe_<NAME>/probe.json``.
Results of the runs behind docs/TRAINING.md ("What the tiny model learns") are listed there.
"""
from __future__ import annotations

import collections
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mllm4d import answer, collate, common, models, prompts, sft, warmup  # noqa: E402


def predictions(model, proc, rows: list[dict], coll: collate.VideoSFTCollator, mode: str, blind: bool,
                batch: int = 16) -> list[str]:
    """Chosen letters ("" = none) for ``rows`` under prompt ``mode``; ``blind`` swaps in another row's video."""
    import torch
    tok = proc.tokenizer
    letters = [tok.encode(x, add_special_tokens=False)[0] for x in prompts.LETTERS]
    out: list[str] = []
    for s in range(0, len(rows), batch):
        chunk = rows[s:s + batch]
        texts = [proc.apply_chat_template(prompts.messages(r, mode), tokenize=False, add_generation_prompt=True)
                 for r in chunk]
        videos = [coll._video(rows[(s + k + 37) % len(rows)] if blind else r) for k, r in enumerate(chunk)]
        enc = collate.encode_cached(proc, texts, videos, padding_side="left")
        with torch.no_grad():
            if mode == "direct":
                logits = model(**enc).logits[:, -1, letters]
                out += [prompts.LETTERS[i] for i in logits.argmax(-1).tolist()]
            else:
                ids = model.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id,
                                     suppress_tokens=models.vision_token_ids(proc))
                texts = tok.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                out += [answer.extract_choice(t, r["options"]) for t, r in zip(texts, chunk)]
    return out


def accuracy(rows: list[dict], preds: list[str]) -> dict:
    """Per-subtask and macro accuracy (fractions) and the chosen-letter counts."""
    res = {s: float(np.mean([p == r["answer"] for p, r in zip(preds, rows) if r["subtask"] == s]))
           for s in prompts.SUBTASKS if any(r["subtask"] == s for r in rows)}
    res["overall"] = float(np.mean(list(res.values())))
    res["letters"] = dict(collections.Counter(preds))
    return res


def warmup_run(dataset_run: str, n_clips: int, outputs_root: str = "outputs") -> str:
    """A dataset run ``<dataset_run>-warmup<N>``: N procedural clips as ``sft.jsonl``, the real ``bench.jsonl``."""
    src = common.stage_dir("03_dataset", dataset_run, outputs_root)
    name = f"{dataset_run}-warmup{n_clips}"
    dst = common.stage_dir("03_dataset", name, outputs_root)
    if not (dst / "metrics.json").exists():
        shutil.rmtree(dst, ignore_errors=True)
        (dst / "frames").mkdir(parents=True)
        train = sorted({r["clip_id"] for r in common.read_jsonl(src / "sft.jsonl")})
        for c in sorted({r["clip_id"] for r in common.read_jsonl(src / "bench.jsonl")}):
            (dst / "frames" / c).symlink_to((src / "frames" / c).resolve())
        bgs = [src / "frames" / c / f"{t:02d}.jpg" for c in train for t in (0, 10, 20, 31)]
        counts = warmup.write(dst, bgs, n_clips, np.random.default_rng(0))
        shutil.copy(src / "bench.jsonl", dst / "bench.jsonl")
        common.write_json(dst / "metrics.json", {"warmup_clips": n_clips, "labels": counts, "from": dataset_run})
    return name


def main(argv: list[str]) -> list[dict]:
    from transformers import TrainerCallback
    name, pairs = argv[0], dict(a.split("=", 1) for a in argv[1:])
    extra = {k: yaml.safe_load(pairs.pop(k, str(v))) for k, v in
             (("dataset_run", "tiny"), ("eval_every", 250), ("bench_max", 0), ("warmup_clips", 0))}
    if extra["warmup_clips"]:
        extra["dataset_run"] = warmup_run(extra["dataset_run"], extra["warmup_clips"])
    base = yaml.safe_load(common.resolve("params/tiny/04_sft.yaml").read_text())
    values = {**base, "run_name": f"probe_{name}", "stage": "sft", "dataset_run": extra["dataset_run"],
              "save_steps": 10**6, "logging_steps": 20, **{k: yaml.safe_load(v) for k, v in pairs.items()}}
    cfg = common.validate(sft.SFTParams, values, source="learning_probe")
    data_dir = common.upstream_dir("03_dataset", cfg.dataset_run, cfg.outputs_root, require=("bench.jsonl",))
    bench = common.read_jsonl(data_dir / "bench.jsonl")[:extra["bench_max"] or None]
    log: list[dict] = []
    t0 = time.time()

    class Probe(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, processing_class=None, **kw):
            if state.global_step % extra["eval_every"]:
                return
            model.eval()
            coll = collate.VideoSFTCollator(processing_class, data_dir, "direct", cfg.num_frames,
                                            tuple(cfg.frame_size), cfg.fps, video_cache=True,
                                            frame_window=cfg.frame_window)
            r = {mode: accuracy(bench, predictions(model, processing_class, bench, coll, cfg.sft_prompt, blind))
                 for mode, blind in (("video", False), ("blind", True))}
            losses = [h["loss"] for h in state.log_history if "loss" in h]
            r.update(step=state.global_step, seconds=round(time.time() - t0, 1), loss=losses[-1] if losses else None)
            log.append(r)
            print("EVAL", json.dumps(r), flush=True)
            model.train()

    run_dir = common.stage_dir("04_sft", cfg.run_name, cfg.outputs_root)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    sft.train(cfg, run_dir, callbacks=[Probe()])
    common.write_json(run_dir / "probe.json", log)
    return log


if __name__ == "__main__":
    main(sys.argv[1:])
