"""Stage 04: supervised fine-tuning (SFT) and ST-CoT cold start of a Qwen-VL model (paper §4.1-4.2, §8.1).

    python -m mllm4d.sft --params params/tiny/04_sft.yaml                      # one process
    accelerate launch --config_file configs/accelerate_multi_gpu.yaml --num_processes 8 \\
        -m mllm4d.sft --params params/paper/04_sft.yaml [--key value ...]   # many GPUs

Stages (``stage`` param): ``sft`` trains on ``sft.jsonl`` with direct-answer prompts (answer = the letter);
``coldstart`` trains on ``coldstart.jsonl`` with ST-CoT prompts (answer = ``<thinking>…</thinking>
<answer>X</answer>``); ``both`` runs SFT, then cold start from the SFT result (paper: MLLM-4D-SFT ->
MLLM-4D-SFT-CoT). Loss: cross-entropy on the assistant answer only (eq. 1; ``collate.VideoSFTCollator``).
*Not in the paper* (tiny lever, off in the paper profile): ``warmup_max_steps`` > 0 first trains a ``warmup`` stage
on procedural motion clips (:mod:`warmup`; ``warmup_data/`` in the run folder, built per rank with identical
bytes), and ``warmup_mix`` keeps a share of further procedural rows in the SFT split (``sft_mix.jsonl``).

Outputs, ``outputs/04_sft/<run_name>/``:
- ``<stage>/checkpoint-N/`` (every ``save_steps``; a rerun resumes from the last one), ``<stage>/runs/``
  (TensorBoard), ``<stage>/log_history.json``, ``<stage>/stage_metrics.json`` (marks the stage done);
- ``<stage>/model/``: the final model, **merged** (LoRA folded into the base: a plain full model, what GRPO
  and eval load with ``models.load(path)``); with LoRA also ``<stage>/adapter/`` (adapter + processor);
- ``metrics.json``: per stage loss_first, loss_last, steps, seconds, s_per_step, samples, skipped rows, and
  ``final_model``.

Deviations from the paper / release (qwen-vl-finetune):
- no flash-attn varlen packing (``data_flatten``): batches are padded (simpler, correct, slower on GPU);
- the LoRA of each stage is merged before the next: the cold start trains a fresh LoRA on the merged SFT
  model, like the release (its cold-start script loads the saved SFT model as ``llm``);
- video = ``num_frames`` frames uniformly sampled from the row's 32 stored frames (or from the question's
  frame_i..frame_j with ``frame_window: question``, tiny lever), resized to
  ``frame_size`` and presented at ``fps`` (the release's SFT script leaves its 8-frame / 2-fps defaults);
- LoRA dropout is a parameter (the release's code ends up at 0.05); DeepSpeed ZeRO-2 is optional
  (``configs/accelerate_zero2.yaml``): with LoRA the optimiser state is small and plain DDP fits.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import yaml

from . import collate, common, models, warmup
from .common import field

STAGE = "04_sft"
SPLITS = {"sft": ("sft.jsonl", "direct"), "coldstart": ("coldstart.jsonl", "st_cot")}
WARMUP_HELDOUT = 120  # procedural clips the warm-up is scored on (never trained on)


@dataclasses.dataclass(frozen=True)
class SFTParams:
    outputs_root: str = field(help="root of all stage outputs (relative = repo root)")
    run_name: str = field(help="this run's folder name under outputs/04_sft/")
    seed: int = field(help="seed for python/numpy/torch and the trainer's data order")
    dataset_run: str = field(help="run name of 03_dataset to read sft.jsonl / coldstart.jsonl from")
    model: str = field(help="model spec for models.load: hub id, local folder or tiny:<family>[:qwen-tokenizer]")
    stage: str = field(help="which stage(s) to train", choices=("sft", "coldstart", "both"))
    warmup_max_steps: int = field(help="perception warm-up steps on procedural clips before SFT (0 = none, the "
                                       "paper; tiny lever, mllm4d/warmup.py)", ge=0)
    warmup_tasks: str = field(help="comma list of warm-up tasks (warmup.TASKS: crd, ocrd, ocrdir-lateral, and the "
                                   "-multi object tasks with distractor shapes)")
    warmup_mix: float = field(help="share of SFT samples that are fresh procedural warm-up clips, so the warm-up "
                                   "skill is kept while the real mixture is learnt (0 = none)", ge=0, le=0.9)
    sft_prompt: str = field(help="SFT prompt/target: direct (the letter, paper) or direct_text (the option's text)",
                            choices=("direct", "direct_text"))
    coldstart_prompt: str = field(help="cold-start prompt/target: st_cot (<answer>letter</answer>, paper) or "
                                       "st_cot_text (<answer>the option's text</answer>)",
                                  choices=("st_cot", "st_cot_text"))
    finetune: str = field(help="LoRA adapters (paper) or full fine-tuning", choices=("lora", "full"))
    freeze_vision: bool = field(help="full fine-tuning: keep the vision encoder frozen (release default)")
    max_steps: int = field(help="SFT optimiser steps; -1 = run `epochs` epochs", ge=-1)
    coldstart_max_steps: int = field(help="cold-start optimiser steps; -1 = run `epochs` epochs", ge=-1)
    epochs: float = field(help="epochs when a max_steps is -1 (paper: 1)", gt=0)
    batch_size: int = field(help="per-device batch size (paper: 8)", ge=1)
    grad_accum: int = field(help="gradient accumulation steps", ge=1)
    lr: float = field(help="peak learning rate (paper: 2e-5)", gt=0)
    warmup_ratio: float = field(help="SFT warmup fraction of steps (paper: 0.01)", ge=0, le=0.99)
    coldstart_warmup_ratio: float = field(help="cold-start warmup fraction (release: 0.03)", ge=0, le=0.99)
    scheduler: str = field(help="learning-rate schedule", choices=("cosine", "linear", "constant",
                                                                 "constant_with_warmup"))
    weight_decay: float = field(help="AdamW weight decay (release: 0)", ge=0)
    max_grad_norm: float = field(help="gradient clipping norm (release: 1)", gt=0)
    lora_r: int = field(help="LoRA rank (paper: 128)", ge=1)
    lora_alpha: int = field(help="LoRA alpha (paper: 256)", ge=1)
    lora_dropout: float = field(help="LoRA dropout (release: 0.05)", ge=0, le=0.9)
    lora_targets: str = field(help="comma-separated module names for LoRA (release: q_proj,k_proj,v_proj,o_proj)")
    num_frames: int = field(help="frames sampled per clip (paper: 32)", ge=2)
    frame_size: tuple[int, ...] = field(help="[H, W] frames are resized to, pixels")
    frame_window: str = field(help="frames are sampled from the whole clip (paper) or from the question's "
                                   "frame_i..frame_j (tiny lever)", choices=models.FRAME_WINDOWS)
    fps: float = field(help="frame rate the sampled frames are presented at (Qwen3-VL timestamps)", gt=0)
    bf16: bool = field(help="bfloat16 weights and autocast (GPU only; ignored on CPU)")
    fused_lm_head: bool = field(help="trl's chunked log-prob LM head: never materialises the (B,L,vocab) logits "
                                     "(GPU memory); false = the model's own cross-entropy (10x faster on CPU)")
    gradient_checkpointing: bool = field(help="recompute activations to save memory")
    save_steps: int = field(help="checkpoint every N steps (resume point)", ge=1)
    save_total_limit: int = field(help="keep at most N checkpoints per stage", ge=1)
    logging_steps: int = field(help="log loss every N steps", ge=1)
    max_samples: int = field(help="use at most N rows per split (0 = all)", ge=0)
    video_cache: bool = field(help="cache processed video tensors per clip in memory (faster steps)")
    dataloader_workers: int = field(help="DataLoader worker processes (0 = in the training process)", ge=0)
    cpu_threads: int = field(help="torch CPU threads when training on CPU (0 = torch's default); 1 is fastest "
                                  "for tiny models on a shared machine", ge=0)
    num_gpus: int = field(help="GPUs; > 1 launches `accelerate launch` in a subprocess", ge=0)
    accelerate_config: str = field(help="accelerate config for num_gpus > 1 (multi_gpu or zero2)")


# ----------------------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------------------
def row_error(row: Any, mode: str) -> str | None:
    """Why a dataset row cannot be trained on in ``mode`` (None when it is fine)."""
    if not isinstance(row, dict):
        return "row is not an object"
    if not isinstance(row.get("question"), str) or not row["question"]:
        return "field 'question' missing or empty"
    opts = row.get("options")
    if not isinstance(opts, dict) or not opts:
        return "field 'options' missing or not an object"
    if row.get("answer") not in opts:
        return f"field 'answer'={row.get('answer')!r} is not an option key"
    frames = row.get("frames")
    if not isinstance(frames, list) or not frames or not all(isinstance(f, str) for f in frames):
        return "field 'frames' missing or not a list of paths"
    if mode.startswith("st_cot") and not (isinstance(row.get("cot"), str) and "<answer>" in row["cot"]):
        return "field 'cot' missing or without <answer>"
    return None


def load_rows(path: str | os.PathLike, mode: str, max_samples: int = 0) -> tuple[list[dict], dict]:
    """Valid rows of a split file (at most ``max_samples``, 0 = all) and a report of skipped rows."""
    if not Path(path).exists():
        raise FileNotFoundError(f"{path} is missing: run notebooks/03_dataset.ipynb first")
    rows, skipped, first = [], 0, None
    for i, row in enumerate(common.read_jsonl(path)):
        err = row_error(row, mode)
        if err:
            skipped += 1
            first = first or f"{path}: row {i + 1}: {err}"
            continue
        rows.append(row)
        if max_samples and len(rows) >= max_samples:
            break
    if not rows:
        raise ValueError(f"{path}: no usable rows ({skipped} skipped; first: {first})")
    return rows, {"rows": len(rows), "skipped": skipped, "first_error": first}


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------
def stage_plan(cfg: SFTParams) -> list[str]:
    """Stages in training order: [warmup] (when ``warmup_max_steps`` > 0 and SFT runs), sft, coldstart."""
    plan = ["sft", "coldstart"] if cfg.stage == "both" else [cfg.stage]
    return (["warmup"] if cfg.warmup_max_steps and "sft" in plan else []) + plan


def stage_mode(cfg: SFTParams, stage: str) -> str:
    """The prompt mode a stage trains with (:func:`prompts.messages`): ``sft_prompt`` for warm-up and SFT,
    ``coldstart_prompt`` for the cold start."""
    return cfg.coldstart_prompt if stage == "coldstart" else cfg.sft_prompt


def stage_data(cfg: SFTParams, run_dir: Path, stage: str) -> tuple[Path, str, str]:
    """(data folder, split file, prompt mode) a stage trains on: a 03_dataset split; for the warm-up the procedural
    clips :func:`warmup.build` makes under ``run_dir/warmup_data`` (one per training sample); for SFT with
    ``warmup_mix`` > 0 ``run_dir/sft_mix.jsonl`` (the real rows + that share of other procedural clips)."""
    dataset = common.upstream_dir("03_dataset", cfg.dataset_run, cfg.outputs_root,
                                  require=(SPLITS["sft" if stage == "warmup" else stage][0],))
    if stage == "coldstart" or (stage == "sft" and not cfg.warmup_mix):
        return dataset, SPLITS[stage][0], stage_mode(cfg, stage)
    n_real = len(common.read_jsonl(dataset / "sft.jsonl"))
    d = warmup.build(run_dir / "warmup_data", dataset, cfg.warmup_max_steps * cfg.batch_size * cfg.grad_accum,
                     WARMUP_HELDOUT, warmup.parse_tasks(cfg.warmup_tasks), int(cfg.frame_size[0]), cfg.seed,
                     n_mix=round(n_real * cfg.warmup_mix / (1 - cfg.warmup_mix)))
    if stage == "warmup":
        return d, "sft.jsonl", stage_mode(cfg, stage)
    warmup.mix_split(run_dir / "sft_mix.jsonl", dataset / "sft.jsonl", d / "mix.jsonl")
    return run_dir, "sft_mix.jsonl", stage_mode(cfg, stage)


# Parameters that change how fast a stage runs, not what it learns: a rerun may change them and still
# resume (or reuse) the stage's checkpoints and model.
EXECUTION_ONLY = ("outputs_root", "num_gpus", "accelerate_config", "dataloader_workers", "cpu_threads",
                  "video_cache", "save_total_limit", "logging_steps", "fused_lm_head")


def stage_fingerprint(cfg: SFTParams, stage: str, init: str) -> dict:
    """What a stage's result depends on; a stage folder made with another fingerprint is stale. ``init_files``:
    the initial model retrained under the same path (the SFT model a cold start starts from), or a tiny spec
    built on another small tokenizer, makes it stale too."""
    d = {k: v for k, v in common.as_dict(cfg).items() if k not in EXECUTION_ONLY}
    return {**d, "stage": stage, "init": init, "init_files": models.folder_fingerprint(init)}


def file_digest(path: Path, chunk: int = 1 << 24) -> str:
    """sha256 of a file's bytes (streamed: a 2M-row split of ~3 GB takes a few seconds)."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _claim_stage_dir(out: Path, fingerprint: dict) -> bool:
    """Prepare ``out`` for a stage run; True when it already holds the finished stage for ``fingerprint``.

    A folder left by different parameters (another lr, more steps: a different cosine schedule) is deleted
    rather than resumed from, so a rerun never mixes two configurations.
    """
    f = out / "stage_params.json"
    if int(os.environ.get("RANK", "0")) != 0:  # other ranks wait for rank 0 to clean and claim the folder
        common.wait_for_json(f, fingerprint)
    else:
        if f.exists() and common.read_json(f) != fingerprint:
            print(f"{out}: parameters changed since the last run, starting this stage afresh", flush=True)
            shutil.rmtree(out)
        if not f.exists():
            common.write_json(f, fingerprint)
    return (out / "stage_metrics.json").exists() and (out / "model" / "config.json").exists()


def _last_checkpoint(out: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint
    return get_last_checkpoint(str(out)) if out.is_dir() else None


def _freeze_vision(model: Any) -> None:
    for name, p in model.named_parameters():
        if ".visual." in f".{name}" and "merger" not in name:  # keep the vision->LLM projector trainable
            p.requires_grad_(False)


def _plain_loss_trainer() -> type:
    """SFTTrainer whose loss is the model's own cross-entropy over ``labels`` (transformers' Trainer path).

    trl 1.16 always routes the loss through its chunked log-prob kernel; on CPU that kernel took 92 % of a
    real-tokenizer tiny step (12 s/step). Same objective (mean CE over label tokens, grad-accumulation aware);
    trl's extra metrics (entropy, token accuracy) are not logged on this path.
    """
    from transformers import Trainer
    from trl import SFTTrainer

    class PlainLossSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)
    return PlainLossSFTTrainer


def trainer_args(cfg: SFTParams, out: Path, stage: str) -> Any:
    """The trl ``SFTConfig`` of one stage (the paper's schedule; video batches come from our collator)."""
    import importlib.util
    import torch
    from trl import SFTConfig
    cuda = torch.cuda.is_available()
    return SFTConfig(
        output_dir=str(out), seed=cfg.seed, data_seed=cfg.seed,
        max_steps={"warmup": cfg.warmup_max_steps, "sft": cfg.max_steps}.get(stage, cfg.coldstart_max_steps),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=cfg.lr, lr_scheduler_type=cfg.scheduler, weight_decay=cfg.weight_decay,
        warmup_steps=cfg.coldstart_warmup_ratio if stage == "coldstart" else cfg.warmup_ratio,
        max_grad_norm=cfg.max_grad_norm, bf16=cfg.bf16 and cuda, use_cpu=not cuda,
        gradient_checkpointing=cfg.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        logging_steps=cfg.logging_steps, save_strategy="steps", save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, dataloader_num_workers=cfg.dataloader_workers,
        # a worker keeps its decoded-video cache across epochs only when it is not restarted each epoch
        dataloader_persistent_workers=cfg.dataloader_workers > 0,
        report_to="tensorboard" if importlib.util.find_spec("tensorboard") else "none",
        max_length=None, dataset_kwargs={"skip_prepare_dataset": True}, remove_unused_columns=False,
        ddp_find_unused_parameters=False)


def train_stage(cfg: SFTParams, run_dir: Path, stage: str, init: str, callbacks: Sequence[Any] = ()) -> dict:
    """Train one stage from model spec ``init``; resumes from the stage's last checkpoint; returns metrics.

    A stage whose ``stage_metrics.json`` and ``model/`` exist for the same parameters is complete and is
    not retrained; a stage folder from different parameters is discarded (``_claim_stage_dir``).
    """
    import datasets
    import torch
    from peft import LoraConfig
    from trl import SFTTrainer
    out = Path(run_dir) / stage
    data_dir, split, mode = stage_data(cfg, Path(run_dir), stage)
    # The data are part of what a stage depends on: a rebuilt dataset (other CoT style, more clips) under the same
    # run name must retrain, not reuse or resume the old stage.
    fingerprint = {**stage_fingerprint(cfg, stage, init), "data_sha256": file_digest(data_dir / split)}
    if _claim_stage_dir(out, json.loads(json.dumps(fingerprint))):
        return {**common.read_json(out / "stage_metrics.json"), "reused": True}
    rows, report = load_rows(data_dir / split, mode, cfg.max_samples)
    dtype = "bfloat16" if cfg.bf16 and torch.cuda.is_available() else "float32"
    model, proc = models.load(init, dtype=dtype)
    model.train()
    if cfg.finetune == "full" and cfg.freeze_vision:
        _freeze_vision(model)
    peft_cfg = (LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                           target_modules=[t.strip() for t in cfg.lora_targets.split(",") if t.strip()],
                           task_type="CAUSAL_LM") if cfg.finetune == "lora" else None)
    collator = collate.VideoSFTCollator(proc, data_dir, mode, cfg.num_frames, tuple(cfg.frame_size), cfg.fps,
                                        video_cache=cfg.video_cache, frame_window=cfg.frame_window)
    train_ds = datasets.Dataset.from_dict({"row": [json.dumps(r) for r in rows]})
    trainer_cls = SFTTrainer if cfg.fused_lm_head else _plain_loss_trainer()
    trainer = trainer_cls(model=model, args=trainer_args(cfg, out, stage), train_dataset=train_ds,
                        processing_class=proc, data_collator=collator, peft_config=peft_cfg,
                        callbacks=list(callbacks) or None)
    ckpt = _last_checkpoint(out)
    start_step = int(ckpt.rsplit("-", 1)[-1]) if ckpt else 0
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=ckpt)
    seconds = time.perf_counter() - t0
    state = trainer.state
    losses = [(h["step"], h["loss"]) for h in state.log_history if "loss" in h]
    steps_run = max(state.global_step - start_step, 1)
    metrics = {
        "init": init, "split": split, "mode": mode, **{f"data_{k}": v for k, v in report.items()},
        "loss_first": losses[0][1] if losses else None, "loss_last": losses[-1][1] if losses else None,
        "steps": state.global_step, "resumed_from_step": start_step, "seconds": round(seconds, 2),
        "s_per_step": round(seconds / steps_run, 4), "samples": len(rows),
        "samples_seen": state.global_step * cfg.batch_size * cfg.grad_accum * trainer.accelerator.num_processes,
        "trainable_params": models.num_params(trainer.model, trainable=True),
        "total_params": models.num_params(trainer.model), "finetune": cfg.finetune,
        "video_cache": cfg.video_cache, "collator": dict(collator.stats),
        "bf16": bool(trainer.args.bf16), "device": str(trainer.args.device),
    }
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        common.write_json(out / "log_history.json", state.log_history)
        final = trainer.accelerator.unwrap_model(trainer.model)
        if cfg.finetune == "lora":
            models.save(final, proc, out / "adapter", merge=False)
        models.save(final, proc, out / "model", merge=True)
        metrics["model"] = str(out / "model")
        if stage == "warmup":
            metrics["heldout_accuracy"] = warmup.heldout_accuracy(final, proc, data_dir, cfg.sft_prompt, cfg.num_frames,
                                                                  cfg.frame_size, cfg.fps, cfg.frame_window)
        common.write_json(out / "stage_metrics.json", metrics)
    trainer.accelerator.wait_for_everyone()
    return metrics


def train(cfg: SFTParams, run_dir: str | os.PathLike, callbacks: Sequence[Any] = ()) -> dict:
    """Run the planned stage(s) in this process (or this accelerate rank); writes and returns metrics.json."""
    import torch
    run_dir = Path(run_dir)
    if cfg.cpu_threads and not torch.cuda.is_available():
        # OpenMP threads spin at barriers: on an oversubscribed CPU 2 threads ran a tiny step 20x slower than 1
        torch.set_num_threads(cfg.cpu_threads)
    init, out = cfg.model, {}
    for stage in stage_plan(cfg):
        out[stage] = train_stage(cfg, run_dir, stage, init, callbacks)
        init = str(run_dir / stage / "model")
    metrics = {**out, "final_model": init, "stages": stage_plan(cfg)}
    if int(os.environ.get("RANK", "0")) == 0:
        common.write_metrics(run_dir, metrics)
    return metrics


def launch(cfg: SFTParams, run_dir: str | os.PathLike) -> dict:
    """Train in-process (``num_gpus`` <= 1) or via ``accelerate launch --num_processes num_gpus`` (subprocess;
    its output goes to ``run_dir/launch.log``). Returns metrics.json."""
    run_dir = Path(run_dir)
    if cfg.num_gpus <= 1:
        return train(cfg, run_dir)
    params = run_dir / "params.yaml"
    common.atomic_write_text(params, yaml.safe_dump(common.as_dict(cfg), sort_keys=False))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
           str(common.resolve(cfg.accelerate_config)), "--num_processes", str(cfg.num_gpus),
           "-m", "mllm4d.sft", "--params", str(params)]
    log = run_dir / "launch.log"
    print("+", " ".join(cmd), f"> {log}", flush=True)
    with open(log, "w") as f:  # a notebook kernel does not show a child's stdout: keep it in a file
        rc = subprocess.run(cmd, cwd=common.REPO_ROOT, stdout=f, stderr=subprocess.STDOUT).returncode
    if rc:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-30:])
        raise RuntimeError(f"accelerate launch failed (exit {rc}); last lines of {log}:\n{tail}")
    return common.read_json(run_dir / "metrics.json")


# ----------------------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------------------
def log_history(stage_dir: str | os.PathLike) -> list[dict]:
    """A stage's logged entries: ``log_history.json`` when finished, else the last checkpoint's state."""
    d = Path(stage_dir)
    if (d / "log_history.json").exists():
        return common.read_json(d / "log_history.json")
    ckpt = _last_checkpoint(d)
    return common.read_json(Path(ckpt) / "trainer_state.json")["log_history"] if ckpt else []


def plot_losses(run_dir: str | os.PathLike) -> Any:
    """Figure: training loss (and learning rate, right axis) vs optimiser step, one panel per stage."""
    import matplotlib.pyplot as plt
    stages = [s for s in ("warmup", *SPLITS) if log_history(Path(run_dir) / s)]
    fig, axes = plt.subplots(1, max(len(stages), 1), figsize=(5 * max(len(stages), 1), 3.2), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        hist = [h for h in log_history(Path(run_dir) / stage) if "loss" in h]
        ax.plot([h["step"] for h in hist], [h["loss"] for h in hist], "o-", ms=3, label="loss")
        ax.set(title=f"{stage} ({SPLITS.get(stage, ('', 'procedural'))[1]} prompts)", xlabel="step", ylabel="cross-entropy (answer tokens)")
        lr = ax.twinx()
        lr.plot([h["step"] for h in hist], [h.get("learning_rate", float("nan")) for h in hist], "--", c="grey")
        lr.set_ylabel("learning rate", color="grey")
    if not stages:
        axes[0][0].text(0.5, 0.5, "no logged steps yet", ha="center")
    fig.tight_layout()
    return fig


def sample_predictions(model_spec: str, dataset_dir: str | os.PathLike, split: str, mode: str, n: int,
                       num_frames: int, frame_size: Sequence[int], fps: float, max_new_tokens: int = 16,
                       frame_window: str = "clip") -> list[dict]:
    """Greedy answers of a trained model on the first ``n`` rows of a split: a quick look, not an eval."""
    import torch
    from . import prompts
    cuda = torch.cuda.is_available()
    model, proc = models.load(model_spec, dtype="bfloat16" if cuda else "auto", device="cuda" if cuda else None)
    rows, _ = load_rows(Path(dataset_dir) / split, mode, n)
    frames = [models.read_frames([Path(dataset_dir) / f for f in models.window_frames(r["frames"], r, frame_window)],
                                 num_frames, frame_size) for r in rows]
    outs = models.generate(model, proc, [prompts.messages(r, mode) for r in rows], frames,
                           max_new_tokens=max_new_tokens, fps=fps)
    return [{"id": r["id"], "answer": r["answer"], "output": o} for r, o in zip(rows, outs)]


# ----------------------------------------------------------------------------------------------------------
# CLI (the multi-GPU entry point)
# ----------------------------------------------------------------------------------------------------------
def params_from_cli(argv: Sequence[str]) -> SFTParams:
    """``--params FILE.yaml [--key value ...]`` over the tiny defaults (params/tiny/04_sft.yaml, which
    mirrors the notebook's parameters cell); values are parsed as YAML (``--lr 2e-5``, ``--bf16 true``)."""
    ap = argparse.ArgumentParser(prog="python -m mllm4d.sft", description=__doc__.split("\n")[0])
    ap.add_argument("--params", required=True, help="YAML of parameters (a profile file or a run's params.yaml)")
    args, rest = ap.parse_known_args(list(argv))
    if len(rest) % 2 or any(not k.startswith("--") for k in rest[::2]):
        raise common.ParamError(f"overrides must be '--key value' pairs, got {rest}")
    base = yaml.safe_load(common.resolve(f"params/tiny/{STAGE}.yaml").read_text()) or {}
    given = yaml.safe_load(Path(args.params).read_text()) or {}
    values = {**base, **given, **{k[2:].replace("-", "_"): yaml.safe_load(v) for k, v in zip(rest[::2], rest[1::2])}}
    return common.validate(SFTParams, values, source=args.params)


def main(argv: Sequence[str] | None = None) -> dict:
    cfg = params_from_cli(sys.argv[1:] if argv is None else argv)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    run_dir = common.start_run(STAGE, cfg) if rank0 else common.stage_dir(STAGE, cfg.run_name, cfg.outputs_root)
    if not rank0:
        common.seed_everything(cfg.seed)
    return train(cfg, run_dir)


if __name__ == "__main__":
    main()
