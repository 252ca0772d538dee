"""Steps to learn (issue 7, item 5): the tiny recipe trained for as many steps as a budget allows, scored on the
benchmark every ``eval_every`` SFT steps exactly as Table 3 scores its SFT row (06_eval, option likelihood, with
the video and blind), so the curve says how many steps each subtask needs before the video helps.

    # on the CPU (a check that it runs: 60 steps, scored every 30 on 48 benchmark items)
    .venv/bin/python benchmarks/steps_to_learn.py cpu max_steps=60 eval_every=30 bench_max=48 warmup_max_steps=20
    # on a GPU machine (benchmarks/device_pack.py makes what it needs; docs/TRAINING.md "Steps to learn")
    python3 benchmarks/steps_to_learn.py gpu max_steps=20000 eval_every=1000 budget_s=420 dataloader_workers=4

``key=value`` pairs override ``params/tiny/04_sft.yaml`` (values parsed as YAML; the stage is always ``sft``, so
the warm-up runs first as in the recipe); ``subtasks`` and ``clip_fraction`` train on a derived dataset as in
``recipe_probe.py`` (the benchmark untouched). Extra keys: ``eval_every`` (SFT steps, default 500), ``bench_max``
(benchmark items, 0 = all; the first items of ``bench.jsonl`` in file order, which groups them by subtask, so
keep it 0 for a real measurement), ``budget_s`` (0 = none: else training stops at the first evaluation after
this many seconds of the SFT stage; the cosine schedule is then cut, not finished) and ``out`` (a folder the
curve is also copied to, e.g. ``$OUT`` on the device machine).

Scoring: each evaluation is a full ``06_eval`` run (``evaluate.run`` with the in-memory model) under the tiny
``06_eval@sft.yaml`` (with the video) and ``06_eval@blind.yaml`` (another clip's video) settings; step 0 is the
warm-up model before any SFT step. A subtask counts as **learnt** at the first evaluation where the Wilson 95 %
lower bound of its video accuracy lies above the upper bound of its blind accuracy *and* above its chance level
(1/4; 1/3 for ``ocrd``/``ocrdir``, whose fourth option is never right: docs/DATASETS.md). ``above_chance`` alone
(the video's lower bound above chance) is reported as well: accuracy over chance that the blind control also
reaches is text, not video.

Output (in ``outputs/04_sft/steps_<NAME>/``, the run folder, deleted first; and in ``out``): ``curve.json``,
rewritten after every evaluation so a run stopped at a time limit keeps what it measured: ``{"name", "device",
"overrides", "evals": [{"step", "seconds", "loss", "video": {overall, <subtask>...}, "blind": {...}, "n":
{<subtask>: items}}], "learnt_at": {<subtask>: step or null}, "above_chance_at": {...}, "steps_per_s"}``. One
``CURVE {json}`` line per evaluation on stdout.
"""
from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from mllm4d import common, evaluate, prompts, sft  # noqa: E402
from recipe_probe import eval_configs, sft_values  # noqa: E402  (the Table 3 SFT-row and blind settings)

EXTRA = {"eval_every": 500, "bench_max": 0, "budget_s": 0, "out": ""}
CHANCE = {"ocrd": 1 / 3, "ocrdir": 1 / 3}   # the fourth option ("Cannot be determined") is never right


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed on ``n`` items (fractions); (0, 1) for n = 0."""
    if n <= 0:
        return 0.0, 1.0
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def first_steps(evals: list[dict]) -> tuple[dict, dict]:
    """(learnt_at, above_chance_at): per subtask the first evaluated step that meets the rule in the module
    docstring, or None."""
    learnt, above = {}, {}
    for s in prompts.SUBTASKS:
        learnt[s] = above[s] = None
        for e in evals:
            if s not in e["video"]:
                continue
            lo = wilson(e["video"][s], e["n"][s])[0]
            if above[s] is None and lo > CHANCE.get(s, 0.25):
                above[s] = e["step"]
            if learnt[s] is None and lo > CHANCE.get(s, 0.25) and lo > wilson(e["blind"][s], e["n"][s])[1]:
                learnt[s] = e["step"]
    return learnt, above


def score(ecfgs: dict, run_dir: Path, step: int, model, proc) -> dict:
    """One evaluation with the video and blind at ``step``; per-subtask accuracy (fractions) and item counts."""
    res: dict = {}
    for mode, ecfg in ecfgs.items():
        d = run_dir / "curve" / f"{step:06d}_{mode}"
        shutil.rmtree(d, ignore_errors=True)
        m = evaluate.run(ecfg, d, model=model, processor=proc)
        res[mode] = {"overall": round(m["overall"], 4), **{k: round(v, 4) for k, v in m["per_subtask"].items()}}
        res["n"] = m["n_per_subtask"]
    return res


def main(argv: list[str]) -> dict:
    import torch
    from transformers import TrainerCallback
    name, pairs = argv[0], dict(a.split("=", 1) for a in argv[1:])
    extra = {k: type(v)(yaml.safe_load(pairs.pop(k))) if k in pairs else v for k, v in EXTRA.items()}
    overrides = dict(pairs)
    values, _ = sft_values(name, "steps", pairs)
    cfg = common.validate(sft.SFTParams, values, source="steps_to_learn")
    ecfgs = eval_configs(f"steps_{name}", cfg, dataset_run=cfg.dataset_run, max_items=int(extra["bench_max"]))
    run_dir = common.stage_dir("04_sft", cfg.run_name, cfg.outputs_root)
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    record = {"name": name, "device": device, "date": time.strftime("%Y-%m-%d"), "overrides": overrides,
              "extra": extra, "evals": []}

    def save() -> None:
        record["learnt_at"], record["above_chance_at"] = first_steps(record["evals"])
        for d in [run_dir] + ([Path(extra["out"])] if extra["out"] else []):
            common.write_json(d / "curve.json", record)

    class Curve(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, processing_class=None, **kw):
            self.sft = Path(args.output_dir).name == "sft"
            self.t0 = time.time()
            if self.sft:
                self.evaluate(state, model, processing_class)

        def on_step_end(self, args, state, control, model=None, processing_class=None, **kw):
            if not self.sft or (state.global_step % extra["eval_every"] and state.global_step != state.max_steps):
                return
            self.evaluate(state, model, processing_class)
            if extra["budget_s"] and time.time() - self.t0 > extra["budget_s"]:
                control.should_training_stop = True

        def evaluate(self, state, model, proc) -> None:
            t = time.time()
            model.eval()
            with torch.no_grad():
                r = score(ecfgs, run_dir, state.global_step, model, proc)
            model.train()
            losses = [h["loss"] for h in state.log_history if "loss" in h]
            train_s = t - self.t0 - sum(e["eval_seconds"] for e in record["evals"])
            r.update(step=state.global_step, seconds=round(time.time() - self.t0, 1), loss=losses[-1] if losses else None,
                     eval_seconds=round(time.time() - t, 1))
            record["evals"].append(r)
            if state.global_step:
                record["steps_per_s"] = round(state.global_step / max(train_s, 1e-9), 2)
            save()
            print("CURVE", json.dumps(r), flush=True)

    sft.train(cfg, run_dir, callbacks=[Curve()])
    save()
    print("LEARNT", json.dumps({"learnt_at": record["learnt_at"], "above_chance_at": record["above_chance_at"],
                                "steps_per_s": record.get("steps_per_s")}), flush=True)
    return record


if __name__ == "__main__":
    main(sys.argv[1:])
