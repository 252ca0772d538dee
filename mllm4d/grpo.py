"""Stage 05: GRPO on the RFT split with the spatiotemporal reward (paper §4.3, eq. 3; Table 3).

Thin glue over trl 1.16's ``GRPOTrainer`` (through :class:`mllm4d.video_grpo.VideoGRPOTrainer`, which keeps the
video in every log-prob forward), in open-r1's order:

1) seed → 2) data: ``rft.jsonl`` rows of ``outputs/03_dataset/<dataset_run>/``, ST-CoT prompts
(``prompts.messages(row, cfg.prompt_mode)``: ``st_cot``, or ``st_cot_text`` where the cold start answered with the
option's text), frames decoded lazily per batch (``set_transform``) → 3) model/processor:
the cold-start model ``outputs/04_sft/<sft_run>/coldstart/model`` or any ``models.load`` spec (``init_model``),
plus a fresh LoRA adapter → 4) rewards: every term of ``reward.TERMS`` as its own trl reward function with
``reward_weights = reward.PRESETS[cfg.reward]`` (0 for unused terms), so trl's reward Σ w·term equals
``reward.REWARDS[cfg.reward]`` while every term is logged as ``rewards/<term>/mean`` → 5) trainer (KL to the
reference = the initial model: with LoRA, trl's ref forward is the adapter-disabled model) → 6) train, resuming
from the last checkpoint in ``<run_dir>/checkpoints`` → 7) merge LoRA, save ``<run_dir>/model``, write
``log.jsonl`` (trl's log history) and ``metrics.json``.

Paper vs release vs here (paper.md §4.4):

- β (KL): paper 0.1, release 0.001; lr: paper 5e-5, release 1e-4 — parameters, the paper profile uses the
  paper's values. G = 12, temperature 1.0, max completion 4096, 32 frames as in both.
- loss: the paper's eq. 3 (per-sequence mean, ε-clipped ratio; ms-swift's default ``grpo`` loss) is
  ``loss_type="grpo"``; trl's own default (``dapo``) is available. ε = 0.2 (unstated in the paper; ms-swift default).
- a fresh LoRA adapter (release: ms-swift defaults r=8, α=32 on all LLM linears, ViT frozen; the paper profile
  uses the same); the tiny profile adapts q/k/v/o only.
- frames: the dataset's stored frames, uniformly subsampled to ``num_frames`` and resized (``models.read_frames``)
  instead of ms-swift's ``FPS_MAX_FRAMES=32`` / ``MAX_PIXELS`` video reader.
- ``use_vllm`` is trl's option; trl 1.16 sends only images to vLLM, so it is refused for video prompts.
- ``generation_kwargs.suppress_tokens`` = the vision special tokens: a tiny random model may otherwise emit
  ``<|video_pad|>`` and break the video forward (env.md §3); a trained model never emits them.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from mllm4d import common, models, prompts, reward

STAGE = "05_grpo"
LOG_FILE = "log.jsonl"


class LogToFile(TrainerCallback):
    """Rewrites ``<run_dir>/log.jsonl`` with trl's log history at every log event (curves during training;
    after a resume the history restored from the checkpoint is included, so the file never duplicates steps)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_log(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            common.write_jsonl(self.path, state.log_history)


@dataclasses.dataclass(frozen=True)
class GRPOParams:
    outputs_root: str = common.field(help="root of all stage outputs (relative = repo root)")
    run_name: str = common.field(help="subfolder of outputs/05_grpo/")
    seed: int = common.field(help="seeds python/numpy/torch and GRPOConfig.seed")
    dataset_run: str = common.field(help="03_dataset run whose rft.jsonl is the training set")
    sft_run: str = common.field(help="04_sft run whose coldstart/model is the initial (and reference) policy")
    init_model: str = common.field(help="models.load spec or path; '' = outputs/04_sft/<sft_run>/coldstart/model")
    reward: str = common.field(help="reward preset (reward.PRESETS)", choices=tuple(reward.PRESETS))
    prompt_mode: str = common.field(help="rollout prompt: st_cot (answer = the letter, paper) or st_cot_text (the "
                                         "option's text; the cold start's coldstart_prompt)",
                                    choices=("st_cot", "st_cot_text"))
    max_samples: int = common.field(help="use the first N rft rows (0 = all)", ge=0)
    num_frames: int = common.field(help="frames per video (paper: 32)", ge=2)
    frame_size: list[int] = common.field(help="(H, W) the frames are resized to, pixels")
    frame_window: str = common.field(help="frames from the whole clip (paper) or the question's frame_i..frame_j "
                                          "(tiny lever, as 04_sft/06_eval)", choices=models.FRAME_WINDOWS)
    fps: float = common.field(help="rate the frames are presented at (Qwen3-VL timestamps; as 04_sft/06_eval)",
                              gt=0)
    num_generations: int = common.field(help="G, rollouts per prompt (paper: 12)", ge=2)
    batch_size: int = common.field(help="completions per device per micro-step (a multiple of G / grad_accum)",
                                   ge=1)
    grad_accum: int = common.field(help="micro-steps per optimiser step", ge=1)
    max_steps: int = common.field(help="optimiser steps; -1 = `epochs` passes over the prompts", ge=-1)
    epochs: float = common.field(help="passes over the prompts when max_steps = -1", gt=0)
    lr: float = common.field(help="peak learning rate (paper 5e-5, release 1e-4)", gt=0)
    warmup_ratio: float = common.field(help="warm-up fraction of the steps (release 0.001)", ge=0, le=0.5)
    beta: float = common.field(help="KL weight to the reference (paper 0.1, release 0.001)", ge=0)
    epsilon: float = common.field(help="ratio clip ε of eq. 3", gt=0)
    loss_type: str = common.field(help="trl loss aggregation; 'grpo' = paper eq. 3",
                                  choices=("grpo", "dapo", "dr_grpo", "bnpo"))
    num_iterations: int = common.field(help="policy updates per generation batch (μ)", ge=1)
    temperature: float = common.field(help="rollout sampling temperature (paper 1.0)", gt=0)
    max_completion_length: int = common.field(help="max new tokens per rollout (paper 4096)", ge=1)
    finetune: str = common.field(help="lora: a LoRA adapter merged into <run_dir>/model at the end; full",
                                 choices=("lora", "full"))
    lora_r: int = common.field(help="LoRA rank", ge=1)
    lora_alpha: int = common.field(help="LoRA alpha", ge=1)
    lora_dropout: float = common.field(help="LoRA dropout", ge=0, le=1)
    lora_targets: str = common.field(help="comma-separated module names that get adapters")
    bf16: bool = common.field(help="bfloat16 weights/autocast (GPU only; ignored on CPU)")
    gradient_checkpointing: bool = common.field(help="recompute activations to save memory")
    use_vllm: bool = common.field(help="trl vLLM rollouts (refused for video prompts under trl 1.16)")
    num_gpus: int = common.field(help="> 1: run under `accelerate launch` in a subprocess", ge=0)
    accelerate_config: str = common.field(help="accelerate config file for num_gpus > 1 ('' = accelerate's default)")
    logging_steps: int = common.field(help="log every N steps", ge=1)
    save_steps: int = common.field(help="checkpoint every N steps (resume point)", ge=1)
    save_total_limit: int = common.field(help="checkpoints kept", ge=1)


# ----------------------------------------------------------------------------------------------------------
# 2) data
# ----------------------------------------------------------------------------------------------------------
def row_problem(row: Any, data_dir: Path) -> str:
    """Why an rft row cannot be trained on ("" when it can): missing fields or frame files."""
    if not isinstance(row, dict):
        return "not a JSON object"
    missing = [k for k in ("question", "options", "frames", "solution") if k not in row]
    if missing:
        return f"missing {missing}"
    if not isinstance(row["solution"], dict) or not isinstance(row["solution"].get("answer"), str):
        return "solution is not {'answer': <letter>, ...}"
    if not row["frames"] or not all((data_dir / f).exists() for f in row["frames"]):
        return "frame files missing"
    return ""


def load_rows(cfg: GRPOParams) -> tuple[list[dict], Path, dict[str, str]]:
    """The usable RFT rows (FORMATS.md schema), their dataset directory (frame paths are relative to it) and
    the skipped rows as ``{id: reason}`` (a bad row is skipped and reported, never fatal)."""
    ddir = common.upstream_dir("03_dataset", cfg.dataset_run, cfg.outputs_root, require=("rft.jsonl",))
    rows = common.read_jsonl(ddir / "rft.jsonl")
    rows = rows[: cfg.max_samples] if cfg.max_samples else rows
    problems = {i: row_problem(r, ddir) for i, r in enumerate(rows)}
    skipped = {str(rows[i].get("id", i) if isinstance(rows[i], dict) else i): why
               for i, why in problems.items() if why}
    good = [r for i, r in enumerate(rows) if not problems[i]]
    if not good:
        raise ValueError(f"{ddir / 'rft.jsonl'}: no usable rows ({len(rows)} read; e.g. {list(skipped.items())[:3]})")
    return good, ddir, skipped


def make_example(row: dict, frames: Any, mode: str = "st_cot") -> dict:
    """One trl example: the ST-CoT ``prompt`` with the frames in its video part, plus reward columns.

    ``frames``: what the processor takes as a video (list of PIL images or (T, H, W, 3) uint8).
    ``solution`` is list-wrapped as in the release's RFT data; ``options`` feeds the shared answer parser.
    """
    msgs = prompts.messages(row, mode=mode)
    for m in msgs:
        m["content"] = [dict(p, video=frames) if p.get("type") == "video" else p for p in m["content"]]
    return {"prompt": msgs, "solution": [row["solution"]], "options": row["options"],
            "subtask": row.get("subtask", "")}


def build_dataset(rows: list[dict], data_dir: Path, num_frames: int, frame_size: tuple[int, int],
                  frame_window: str = "clip", mode: str = "st_cot"):
    """A ``datasets.Dataset`` of row JSON with a lazy transform decoding frames per accessed batch."""
    from datasets import Dataset


    def transform(batch: dict) -> dict:
        out: dict[str, list] = {"prompt": [], "solution": [], "options": [], "subtask": []}
        for text in batch["row"]:
            row = json.loads(text)
            paths = models.window_frames(row["frames"], row, frame_window)
            frames = models.read_frames([str(data_dir / p) for p in paths], num_frames, frame_size)
            for k, v in make_example(row, frames, mode).items():
                out[k].append(v)
        return out

    ds = Dataset.from_dict({"row": [json.dumps(r) for r in rows]})  # JSON text: no Arrow schema unification
    ds.set_transform(transform)
    return ds


# ----------------------------------------------------------------------------------------------------------
# 3-5) model, trainer
# ----------------------------------------------------------------------------------------------------------
def init_spec(cfg: GRPOParams) -> str:
    """The ``models.load`` spec of the initial policy (= the KL reference)."""
    if cfg.init_model:
        return cfg.init_model
    d = common.upstream_dir("04_sft", cfg.sft_run, cfg.outputs_root, require=("coldstart/model",))
    return str(d / "coldstart" / "model")


def grpo_config(cfg: GRPOParams, out_dir: Path, vision_ids: list[int], reward_weights: list[float]):
    """trl ``GRPOConfig`` from the stage parameters (trl defaults for everything not listed)."""
    import torch
    from trl import GRPOConfig

    gpu = torch.cuda.is_available()
    return GRPOConfig(
        output_dir=str(out_dir), seed=cfg.seed, data_seed=cfg.seed, report_to="none", use_cpu=not gpu,
        bf16=cfg.bf16 and gpu, gradient_checkpointing=cfg.gradient_checkpointing,
        per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.grad_accum,
        num_generations=cfg.num_generations, max_steps=cfg.max_steps, num_train_epochs=cfg.epochs,
        learning_rate=cfg.lr,
        lr_scheduler_type="cosine", warmup_steps=cfg.warmup_ratio,  # < 1: a fraction (transformers 5)
        beta=cfg.beta, epsilon=cfg.epsilon,
        loss_type=cfg.loss_type, num_iterations=cfg.num_iterations, temperature=cfg.temperature,
        max_completion_length=cfg.max_completion_length, reward_weights=reward_weights,
        generation_kwargs={"suppress_tokens": vision_ids}, use_vllm=cfg.use_vllm,
        logging_steps=cfg.logging_steps, save_strategy="steps", save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit, remove_unused_columns=False, dataloader_num_workers=0,
    )


def build_trainer(cfg: GRPOParams, run_dir: Path, model: Any = None, processor: Any = None, dataset: Any = None):
    """The configured :class:`VideoGRPOTrainer` (model/processor/dataset built from ``cfg`` unless given)."""
    from peft import LoraConfig

    from mllm4d.video_grpo import VideoGRPOTrainer

    if cfg.use_vllm:
        raise ValueError("use_vllm=True: trl 1.16 passes only images to vLLM (generation/vllm_generation.py), so "
                         "video prompts would be rolled out without their video; keep use_vllm=False")
    if dataset is None:
        rows, ddir, skipped = load_rows(cfg)
        common.write_json(Path(run_dir) / "skipped_rows.json", skipped)
        if skipped:
            print(f"05_grpo: skipped {len(skipped)} of {len(rows) + len(skipped)} rft rows: "
                  f"{list(skipped.items())[:5]}", flush=True)
        dataset = build_dataset(rows, ddir, cfg.num_frames, tuple(cfg.frame_size), cfg.frame_window,
                                cfg.prompt_mode)
    if model is None:
        model, processor = models.load(init_spec(cfg))
    funcs, weights = reward.trainer_rewards(cfg.reward)
    args = grpo_config(cfg, Path(run_dir) / "checkpoints", models.vision_token_ids(processor), weights)
    targets = [t.strip() for t in cfg.lora_targets.split(",") if t.strip()]
    peft = (LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                       target_modules=targets, task_type="CAUSAL_LM") if cfg.finetune == "lora" else None)
    return VideoGRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=dataset,
                            processing_class=processor, peft_config=peft, video_fps=cfg.fps,
                            callbacks=[LogToFile(Path(run_dir) / LOG_FILE)])


# ----------------------------------------------------------------------------------------------------------
# 6-7) train, save, metrics
# ----------------------------------------------------------------------------------------------------------
def _window_mean(log: list[dict], key: str, first: bool) -> float | None:
    """Mean of ``key`` over the first (or last) tenth of the logged steps that have it (at least one step)."""
    vals = [r[key] for r in log if key in r and "step" in r]
    if not vals:
        return None
    k = max(1, len(vals) // 10)
    sel = vals[:k] if first else vals[-k:]
    return float(sum(sel) / len(sel))


def summarize(log: list[dict], cfg: GRPOParams, seconds: float, steps: int, world_size: int = 1) -> dict:
    """metrics.json content from trl's log history (first/last = mean over the first/last tenth of steps)."""
    m: dict[str, Any] = {"reward_preset": cfg.reward, "steps": steps, "seconds": round(seconds, 2),
                         "seconds_per_step": round(seconds / max(steps, 1), 3)}
    prompts_per_step = cfg.batch_size * cfg.grad_accum * world_size // cfg.num_generations
    m["samples_seen"] = steps * prompts_per_step  # prompts (each rolled out G times)
    m["completions_seen"] = m["samples_seen"] * cfg.num_generations
    keys = {"reward": "reward", "kl": "kl", "accuracy": "rewards/accuracy/mean", "loss": "loss"}
    keys |= {f"term_{t}": f"rewards/{t}/mean" for t in reward.TERMS}
    for name, key in keys.items():
        m[f"{name}_first"] = _window_mean(log, key, True)
        m[f"{name}_last"] = _window_mean(log, key, False)
    return m


# Parameters a rerun may change and still resume its checkpoints: how the run executes, and the step budget
# (GRPO's schedule has no warmup-to-end coupling here, so "train 3 steps instead of 2" continues from step 2).
EXECUTION_ONLY = ("outputs_root", "num_gpus", "accelerate_config", "logging_steps", "save_steps", "save_total_limit",
                  "max_steps", "epochs")


def run_fingerprint(cfg: GRPOParams) -> dict:
    """What the checkpoints depend on: the learning parameters, the RFT rows' bytes and the initial policy's files
    (name, size, mtime: a retrained cold-start model under the same path counts as new)."""
    from mllm4d.sft import file_digest
    ddir = common.upstream_dir("03_dataset", cfg.dataset_run, cfg.outputs_root, require=("rft.jsonl",))
    spec = init_spec(cfg)
    return {"params": {k: v for k, v in common.as_dict(cfg).items() if k not in EXECUTION_ONLY},
            "data_sha256": file_digest(ddir / "rft.jsonl"), "init": [spec, models.folder_fingerprint(spec)]}


def _claim_checkpoints(ckpt_dir: Path, fingerprint: dict) -> None:
    """Delete checkpoints made under another fingerprint (resuming them would mix two runs); record ours."""
    import shutil
    f = ckpt_dir / "run_fingerprint.json"
    fp = json.loads(json.dumps(fingerprint))
    if int(os.environ.get("RANK", "0")) != 0:  # other ranks wait for rank 0 to clean and claim the folder
        common.wait_for_json(f, fp)
        return
    if ckpt_dir.is_dir() and (not f.exists() or common.read_json(f) != fp):
        print(f"{ckpt_dir}: parameters, data or initial model changed since the last run, starting afresh", flush=True)
        shutil.rmtree(ckpt_dir)
    common.write_json(f, fp)


def train(cfg: GRPOParams, run_dir: str | os.PathLike) -> dict:
    """Run GRPO in this process (resuming from the last checkpoint); returns the metrics dict."""
    from transformers.trainer_utils import get_last_checkpoint

    run_dir = Path(run_dir)
    common.seed_everything(cfg.seed)
    ckpt_dir = run_dir / "checkpoints"
    _claim_checkpoints(ckpt_dir, run_fingerprint(cfg))
    trainer = build_trainer(cfg, run_dir)
    last = get_last_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    t0 = time.time()
    trainer.train(resume_from_checkpoint=last)
    seconds = time.time() - t0
    if not trainer.accelerator.is_main_process:
        return {}
    save_model(trainer, run_dir / "model")
    log = trainer.state.log_history
    common.write_jsonl(run_dir / LOG_FILE, log)
    steps_now = trainer.state.global_step - (int(Path(last).name.split("-")[-1]) if last else 0)
    skipped = run_dir / "skipped_rows.json"
    metrics = summarize(log, cfg, seconds, trainer.state.global_step, trainer.args.world_size) | {
        "resumed_from": last and Path(last).name, "seconds_per_step": round(seconds / max(steps_now, 1), 3),
        "rows_used": len(trainer.train_dataset),
        "rows_skipped": len(common.read_json(skipped)) if skipped.exists() else 0}
    common.write_metrics(run_dir, metrics)
    return metrics


def save_model(trainer: Any, out: Path) -> Path:
    """Save the trained policy (LoRA merged into the weights) and the processor to ``out`` (atomic)."""

    return models.save(trainer.accelerator.unwrap_model(trainer.model), trainer.processing_class, out, merge=True)


def launch_command(cfg: GRPOParams, params_file: str | os.PathLike) -> list[str]:
    """argv of ``accelerate launch [--config_file F] --num_processes <num_gpus> -m mllm4d.grpo --params P``."""
    config = ["--config_file", str(common.resolve(cfg.accelerate_config))] if cfg.accelerate_config else []
    return [sys.executable, "-m", "accelerate.commands.launch", *config, "--num_processes", str(cfg.num_gpus),
            "-m", "mllm4d.grpo", "--params", str(params_file)]


def launch(cfg: GRPOParams, run_dir: str | os.PathLike) -> dict:
    """Run :func:`launch_command` in a subprocess (output streams here); returns the run's metrics.json."""
    run_dir = Path(run_dir)
    params = common.write_json(run_dir / "launch_params.json", common.as_dict(cfg))
    cmd = launch_command(cfg, params)
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=common.REPO_ROOT)
    return common.read_json(run_dir / "metrics.json")


def run(cfg: GRPOParams, run_dir: str | os.PathLike) -> dict:
    """The notebook's entry point: train in-process, or under accelerate when ``num_gpus > 1``."""
    return launch(cfg, run_dir) if cfg.num_gpus > 1 else train(cfg, run_dir)


# ----------------------------------------------------------------------------------------------------------
# Curves
# ----------------------------------------------------------------------------------------------------------
def read_log(run_dir: str | os.PathLike) -> list[dict]:
    """trl's per-step log rows (``log.jsonl``) of a run; [] when it has not logged yet."""
    p = Path(run_dir) / LOG_FILE
    return [r for r in common.read_jsonl(p) if "step" in r and "reward" in r] if p.exists() else []


def plot_curves(run_dir: str | os.PathLike):
    """Figure with three panels over optimiser steps: reward and its terms, KL to the reference, accuracy."""
    import matplotlib.pyplot as plt

    log = read_log(run_dir)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    steps = [r["step"] for r in log]
    axes[0].plot(steps, [r["reward"] for r in log], "k-", lw=2, label="reward (weighted)")
    for t in reward.TERMS:
        key = f"rewards/{t}/mean"
        if any(key in r for r in log):
            axes[0].plot(steps, [r.get(key, float("nan")) for r in log], lw=1, label=t)
    axes[1].plot(steps, [r.get("kl", float("nan")) for r in log], "C3-")
    axes[2].plot(steps, [r.get("rewards/accuracy/mean", float("nan")) for r in log], "C2-")
    for ax, title in zip(axes, ("reward terms", "KL(π_θ ‖ π_ref)", "accuracy (shared parser)")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="best")
    fig.suptitle(f"GRPO {Path(run_dir).name}" + ("" if log else " (no log yet)"))
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------------------
# CLI: python -m mllm4d.grpo --params FILE.yaml [--key value ...]   (what `accelerate launch` runs)
# ----------------------------------------------------------------------------------------------------------
def parse_cli(argv: list[str]) -> GRPOParams:
    """Parameters: ``params/tiny/05_grpo.yaml`` (the notebook defaults), updated by ``--params FILE`` (YAML or
    JSON, e.g. a profile's overrides), updated by ``--key value`` pairs (values parsed as YAML)."""
    import yaml

    if len(argv) < 2 or argv[0] != "--params":
        raise SystemExit("usage: python -m mllm4d.grpo --params FILE.yaml [--key value ...]")
    values = yaml.safe_load((common.REPO_ROOT / "params" / "tiny" / f"{STAGE}.yaml").read_text())
    values |= yaml.safe_load(Path(argv[1]).read_text()) or {}
    rest = argv[2:]
    if len(rest) % 2 or any(not k.startswith("--") for k in rest[::2]):
        raise SystemExit(f"overrides must be --key value pairs, got {rest}")
    values |= {k[2:]: yaml.safe_load(v) for k, v in zip(rest[::2], rest[1::2])}
    return common.validate(GRPOParams, values, source=argv[1])


def main(argv: list[str] | None = None) -> None:
    cfg = parse_cli(sys.argv[1:] if argv is None else argv)
    if int(os.environ.get("RANK", "0")) == 0:
        run_dir = common.start_run(STAGE, cfg)
    else:
        run_dir = common.stage_dir(STAGE, cfg.run_name, cfg.outputs_root)
    metrics = train(cfg, run_dir)
    if metrics:
        print(json.dumps(metrics, indent=1))


if __name__ == "__main__":
    main()
