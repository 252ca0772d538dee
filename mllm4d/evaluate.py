"""Stage 06: evaluate a checkpoint on MLLM4D-Bench (our bench split) and on local VLM4D-format questions.

Model (``model`` param, or ``model_stage`` + ``model_run`` naming an upstream run):

- any :func:`models.load` spec: a folder, a hub id (in the HF cache when offline), ``"tiny:qwen3_vl"``;
- ``model_stage`` in :data:`MODEL_STAGES`: ``04_sft/sft`` -> ``outputs/04_sft/<model_run>/sft/model``,
  ``04_sft/coldstart`` -> ``…/coldstart/model``, ``05_grpo`` -> ``outputs/05_grpo/<model_run>/model``.

Items: ``outputs/03_dataset/<dataset_run>/bench.jsonl`` (docs/FORMATS.md; frames relative to that folder) and,
when ``vlm4d_questions`` names a VLM4D ``*_mc.json``, its items whose video is on disk (``vlm4d_video_root``
joined with the URL's ``videos_real/…`` / ``videos_synthetic/…`` tail; missing videos are counted, not fatal).

Protocol (paper.md §5.1, deviations marked): chat prompts from :func:`prompts.messages` (``direct`` = the SFT
prompt, ``st_cot`` = the cold-start/GRPO prompt; *deviation*: the release evaluates with VLM4D's own prompt
texts); ``num_frames`` uniformly sampled frames; greedy decoding by default (*deviation*: the release leaves
the model's default generation config, unrecorded); ``choice`` picks the letter either from generated text
(``generate``: :func:`answer.extract_choice`, the release's cascade, improved) or by score (choice.py:
``letter_logits``, the arg-max over the four letter tokens' logits, for untrained base models, which rarely
generate a letter; ``option_loglik``, the option text with the highest log-likelihood, for ``direct_text`` SFT
models, whose free numeric answers are often none of the options; ``answer_loglik``, the option scoring highest
as the answer after the model's own generated reasoning, for ST-CoT models whose replies rarely close an
``<answer>`` block; their parsed-text score is kept as ``generated_accuracy``). The letter is matched exactly to
the GT letter (the judge step of the release is then redundant: only a letter reaches it). Every generation
setting is written to ``metrics.json``.

``blind_video``: each question is paired with the frames of *another* clip (a control: accuracy that
survives it comes from the text prior, not from the video).

Outputs, ``outputs/06_eval/<run_name>/``: ``predictions.jsonl`` (one row per item, appended and flushed as
generated; a rerun skips ids already answered under the same settings) and ``metrics.json``: ``overall``
(macro over subtasks, as Table 1), ``micro``, ``per_subtask`` (fractions), ``ci95`` (bootstrap), ``chance``,
``constant_letter`` (best single-letter policy), ``n``, ``empty_rate``, ``seconds``, ``generation``, and
``vlm4d`` (the VLM4D table) when VLM4D items were evaluated.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from mllm4d import answer, choice, common, models, prompts, scoring

STAGE = "06_eval"
PREDICTIONS = "predictions.jsonl"
JUDGEMENTS = "judgements.jsonl"
# choice -> the prompt_modes it accepts (() = any): constrained choices score what the model was trained to answer
CHOICE_PROMPT: dict[str, tuple[str, ...]] = {"generate": (), "letter_logits": ("direct",),
                                             "option_loglik": ("direct_text",),
                                             "answer_loglik": ("st_cot", "st_cot_text")}
# model_stage -> (upstream stage folder, model folder inside its run)
MODEL_STAGES: dict[str, tuple[str, str]] = {
    "04_sft/sft": ("04_sft", "sft/model"),
    "04_sft/coldstart": ("04_sft", "coldstart/model"),
    "05_grpo": ("05_grpo", "model"),
}
# settings that change a prediction: rows made under other values are not reused on resume
_GEN_KEYS = ("prompt_mode", "choice", "num_frames", "frame_window", "frame_size", "fps", "max_new_tokens", "do_sample", "temperature",
             "top_p", "blind_video", "seed")


@dataclasses.dataclass(frozen=True)
class EvalParams:
    outputs_root: str = common.field(help="root of all stage outputs (relative = repo root)")
    run_name: str = common.field(help="subfolder of outputs/06_eval/")
    seed: int = common.field(help="seeds sampling, the blind-video pairing and the bootstrap")
    dataset_run: str = common.field(help="03_dataset run whose bench.jsonl is evaluated ('' = none)")
    model: str = common.field(help="models.load spec (folder, hub id, tiny:<family>); '' = model_stage/model_run")
    model_stage: str = common.field(help="upstream model when model is ''", choices=("",) + tuple(MODEL_STAGES))
    model_run: str = common.field(help="run name of model_stage")
    prompt_mode: str = common.field(help="prompts.messages mode", choices=prompts.MODES)
    choice: str = common.field(help="generate: free text -> answer.extract_choice; letter_logits: arg-max over "
                                    "the option letters' logits (direct prompt only); option_loglik: the option "
                                    "text with the highest log-likelihood (direct_text prompt only); answer_loglik: "
                                    "generate the reasoning, then the option scoring highest as its answer "
                                    "(st_cot / st_cot_text prompts; choice.py)",
                               choices=tuple(CHOICE_PROMPT))
    max_items: int = common.field(help="evaluate the first N bench items (0 = all)", ge=0)
    num_frames: int = common.field(help="frames per video, uniformly sampled (paper: 32)", ge=1)
    frame_window: str = common.field(help="sample frames from the whole clip (paper) or the question's frame_i.."
                                          "frame_j (tiny lever; VLM4D items always use the whole video)",
                                     choices=models.FRAME_WINDOWS)
    frame_size: int = common.field(help="square frame side in pixels after resizing", ge=28)
    fps: float = common.field(help="rate the frames are presented at (Qwen3-VL timestamps)", gt=0)
    max_new_tokens: int = common.field(help="generation budget (release: 4096)", ge=1)
    do_sample: bool = common.field(help="sample instead of greedy decoding")
    temperature: float = common.field(help="sampling temperature (do_sample only)", gt=0)
    top_p: float = common.field(help="nucleus mass (do_sample only)", gt=0, le=1)
    batch_size: int = common.field(help="items per generate call", ge=1)
    dtype: str = common.field(help="model dtype", choices=("auto", "float32", "bfloat16", "float16"))
    blind_video: bool = common.field(help="control: pair every question with another clip's frames")
    vlm4d_questions: str = common.field(help="VLM4D-format *_mc.json to evaluate too ('' = none)")
    vlm4d_video_root: str = common.field(help="folder holding videos_real/ and videos_synthetic/ (VLM4D on HF)")
    n_boot: int = common.field(help="bootstrap resamples for the 95 % intervals", ge=10)
    judge_url: str = common.field(help="optional OpenAI-compatible judge endpoint ('' = off), see judge.py")
    judge_model: str = common.field(help="model name sent to the judge endpoint")


# ----------------------------------------------------------------------------------------------------------
# Items
# ----------------------------------------------------------------------------------------------------------
def model_spec(cfg: EvalParams) -> str:
    """The :func:`models.load` spec the config names (an upstream model folder is checked to exist)."""
    if cfg.model:
        return cfg.model
    if not cfg.model_stage:
        raise common.ParamError("set either model (a models.load spec) or model_stage + model_run")
    stage, sub = MODEL_STAGES[cfg.model_stage]
    d = common.upstream_dir(stage, cfg.model_run, cfg.outputs_root, require=(f"{sub}/config.json",))
    return str(d / sub)


def bench_items(cfg: EvalParams) -> list[dict]:
    """Bench rows as eval items ``{id, source, subtask, clip, question, options, gt, frames}`` (abs paths)."""
    if not cfg.dataset_run:
        return []
    d = common.upstream_dir("03_dataset", cfg.dataset_run, cfg.outputs_root, require=("bench.jsonl",))
    items = []
    for i, r in enumerate(common.read_jsonl(d / "bench.jsonl")):
        missing = [k for k in ("id", "subtask", "question", "options", "answer", "frames") if k not in r]
        if missing:
            raise ValueError(f"{d / 'bench.jsonl'}: row {i + 1} lacks {missing}")
        items.append({"id": str(r["id"]), "source": "bench", "subtask": r["subtask"],
                      "clip": r.get("clip_id", r["id"]), "question": r["question"], "options": r["options"],
                      "gt": [r["answer"]], "frames": [str(d / f) for f in r["frames"]],
                      "frame_i": r.get("frame_i"), "frame_j": r.get("frame_j")})
    return items[:cfg.max_items] if cfg.max_items else items


def vlm4d_video_path(video: str, root: str | Path) -> Path:
    """Local file of a VLM4D ``video`` field: the path itself if it exists, else ``root`` joined with the
    part from ``videos_real/`` or ``videos_synthetic/`` on (HF URL or another machine's path).

    >>> str(vlm4d_video_path("https://hf.co/d/VLM4D/resolve/main/videos_real/davis/a.mp4", "/data"))
    '/data/videos_real/davis/a.mp4'
    """
    p = Path(video)
    if p.exists():
        return p
    for marker in ("videos_real/", "videos_synthetic/"):
        i = video.find(marker)
        if i >= 0:
            return Path(root) / video[i:]
    return Path(root) / Path(video).name


def vlm4d_items(path: str | Path, video_root: str | Path) -> tuple[list[dict], int]:
    """VLM4D questions whose video exists locally, as eval items; and how many were skipped (no video)."""
    if not path:
        return [], 0
    path = common.resolve(path)
    if not path.exists():
        raise FileNotFoundError(f"vlm4d_questions={str(path)!r} does not exist: take real_mc.json / synthetic_mc.json "
                                "from github.com/ShijieZhou-UCLA/VLM4D (data/) and the videos from the HF dataset "
                                "shijiezhou/VLM4D (docs/EVALUATION.md)")
    split = "synthetic" if "synthetic" in path.name else "real"
    items, skipped = [], 0
    for q in common.read_json(path):
        video = vlm4d_video_path(str(q.get("video", "")), common.resolve(video_root or "."))
        if not video.exists():
            skipped += 1
            continue
        options = {k: str(v) for k, v in q["choices"].items()}
        items.append({"id": f"vlm4d-{split}-{q['id']}", "source": "vlm4d", "split": split, "vlm4d_id": q["id"],
                      "subtask": f"vlm4d_{split}", "clip": str(video), "question": q["question"],
                      "options": options, "gt": sorted(scoring.gt_letters(q["choices"], q["answer"])),
                      "answer_text": q["answer"], "frames": str(video)})
    return items, skipped


def blind_pairing(clips: list[str], rng: np.random.Generator) -> list[int]:
    """For each item, the index of a donor item from a *different* clip (the item itself only when every
    item shares one clip). A random derangement at the clip level.

    >>> d = blind_pairing(["a", "a", "b", "c"], np.random.default_rng(0))
    >>> all(["a", "a", "b", "c"][j] != c for j, c in zip(d, ["a", "a", "b", "c"]))
    True
    """
    order = rng.permutation(len(clips))
    out = []
    for i, c in enumerate(clips):
        donor = next((int(j) for j in np.roll(order, -i) if clips[j] != c), i)
        out.append(donor)
    return out


def blind_donors(items: list[dict], rng: np.random.Generator) -> list[int]:
    """:func:`blind_pairing` within each source (bench clips for bench questions, VLM4D videos for VLM4D)."""
    donors = list(range(len(items)))
    for source in sorted({it["source"] for it in items}):
        idx = [i for i, it in enumerate(items) if it["source"] == source]
        for i, d in zip(idx, blind_pairing([items[i]["clip"] for i in idx], rng)):
            donors[i] = idx[d]
    return donors


# ----------------------------------------------------------------------------------------------------------
# Generation (resumable)
# ----------------------------------------------------------------------------------------------------------
def generation_settings(cfg: EvalParams, spec: str) -> dict:
    """Everything that determines a prediction, recorded in metrics.json and on every prediction row."""
    s = {k: getattr(cfg, k) for k in _GEN_KEYS}
    s["model"] = spec
    s["model_files"] = models.folder_fingerprint(spec)
    s["key"] = hashlib.sha1(json.dumps(s, sort_keys=True).encode()).hexdigest()[:12]
    return s


def load_done(path: Path, key: str) -> dict[str, dict]:
    """Prediction rows already made under settings ``key`` (others are dropped from the file)."""
    if not path.exists():
        return {}
    rows = common.read_jsonl(path)
    keep = [r for r in rows if r.get("key") == key]
    if len(keep) != len(rows):  # settings changed since: start those items afresh
        common.write_jsonl(path, keep)
    return {r["id"]: r for r in keep}


def predict(cfg: EvalParams, items: list[dict], run_dir: str | Path, model: Any = None, processor: Any = None,
            progress: bool = True) -> tuple[list[dict], list[dict]]:
    """Generate, extract and score every item not yet in ``predictions.jsonl``.

    Returns (prediction rows in item order, failures ``[{"id", "error"}]``): an item whose frames cannot be read
    is skipped and reported, never fatal. ``model``/``processor`` may be passed in (tests); otherwise loaded
    from :func:`model_spec`.
    """
    spec = model_spec(cfg) if model is None else (cfg.model or "<given>")
    gen = generation_settings(cfg, spec)
    path = Path(run_dir) / PREDICTIONS
    done = load_done(path, gen["key"])
    todo = [i for i, it in enumerate(items) if it["id"] not in done]
    donors = blind_donors(items, np.random.default_rng(cfg.seed)) if cfg.blind_video else list(range(len(items)))
    if todo and model is None:
        import torch
        model, processor = models.load(spec, dtype=cfg.dtype, device="cuda" if torch.cuda.is_available() else None)
    size = (cfg.frame_size, cfg.frame_size)
    failed = []
    for s in range(0, len(todo), cfg.batch_size):
        t0 = time.time()
        batch, frames = [], []
        for i in todo[s:s + cfg.batch_size]:
            try:
                # blind: another clip's frames over *this* question's window (same frame indices)
                paths = models.window_frames(items[donors[i]]["frames"], items[i], cfg.frame_window)
                frames.append(models.read_frames(paths, cfg.num_frames, size))
                batch.append(i)
            except (OSError, ValueError) as e:  # one unreadable clip must not end the run
                failed.append({"id": items[i]["id"], "error": f"{type(e).__name__}: {e}"})
                print(f"warning: skipped {items[i]['id']}: {failed[-1]['error']}", flush=True)
        if not batch:
            continue
        chats = [prompts.messages({"question": items[i]["question"], "options": items[i]["options"]},
                                  cfg.prompt_mode) for i in batch]
        if cfg.choice == "letter_logits":
            texts = choice.letter_choices(model, processor, chats, frames, batch_size=cfg.batch_size, fps=cfg.fps)
        elif cfg.choice == "option_loglik":
            texts = choice.option_choices(model, processor, chats, frames, [items[i]["options"] for i in batch],
                                          batch_size=cfg.batch_size, fps=cfg.fps)
        else:
            texts = models.generate(model, processor, chats, frames, max_new_tokens=cfg.max_new_tokens,
                                    do_sample=cfg.do_sample, temperature=cfg.temperature, top_p=cfg.top_p,
                                    batch_size=cfg.batch_size, fps=cfg.fps)
        forced = (choice.reasoned_choices(model, processor, chats, frames, [items[i]["options"] for i in batch],
                                          texts, cfg.prompt_mode == "st_cot_text", cfg.batch_size, cfg.fps)
                  if cfg.choice == "answer_loglik" else [None] * len(batch))
        dt = (time.time() - t0) / len(batch)
        for i, text, letter in zip(batch, texts, forced):
            it = items[i]
            parsed = answer.extract_choice(text, it["options"])
            pred = parsed if letter is None else letter
            row = {"id": it["id"], "source": it["source"], "subtask": it["subtask"], "gt": it["gt"], "pred": pred,
                   "correct": scoring.is_correct(pred, it["gt"]), "response": text,
                   "video_of": items[donors[i]]["id"], "seconds": round(dt, 4), "key": gen["key"]}
            if letter is not None:  # answer_loglik: what parsing the generated text alone would have scored
                row.update(parsed=parsed, parsed_correct=scoring.is_correct(parsed, it["gt"]))
            if it["source"] == "vlm4d":
                row.update(split=it["split"], vlm4d_id=it["vlm4d_id"], answer_text=it["answer_text"])
            common.append_jsonl(path, row)
            done[it["id"]] = row
        if progress:
            print(f"{min(s + cfg.batch_size, len(todo))}/{len(todo)} generated ({dt:.2f} s/item)", flush=True)
    return [done[it["id"]] for it in items if it["id"] in done], failed


# ----------------------------------------------------------------------------------------------------------
# Metrics
# ----------------------------------------------------------------------------------------------------------
def bench_metrics(rows: list[dict], n_options: list[int], rng: np.random.Generator, n_boot: int = 1000) -> dict:
    """Table-1 metrics of bench prediction rows (``subtask``, ``gt``, ``pred``, ``correct``); fractions."""
    if not rows:
        return {"overall": None, "micro": None, "per_subtask": {}, "n": 0}
    subs = [r["subtask"] for r in rows]
    ok = [bool(r["correct"]) for r in rows]
    out = scoring.summary(subs, ok, order=prompts.SUBTASKS)
    ci = {"overall": scoring.bootstrap_macro_ci(subs, ok, rng, n_boot),
          "micro": scoring.bootstrap_ci(ok, rng, n_boot)}
    for s in out["per_subtask"]:
        ci[s] = scoring.bootstrap_ci([c for c, g in zip(ok, subs) if g == s], rng, n_boot)
    base = scoring.constant_letter_baseline([r["gt"][0] for r in rows], subs)
    out.update(ci95=ci, chance=scoring.chance(n_options), constant_letter=base["accuracy"],
               constant_letter_choice=base["letter"], empty_rate=float(np.mean([r["pred"] == "" for r in rows])),
               pred_letter_counts={k: sum(r["pred"] == k for r in rows) for k in ("A", "B", "C", "D", "")})
    if all("parsed" in r for r in rows):  # answer_loglik rows: the parsed-text score beside the chosen one
        out.update(generated_accuracy=float(np.mean([r["parsed_correct"] for r in rows])),
                   generated_empty_rate=float(np.mean([r["parsed"] == "" for r in rows])))
    return out


def vlm4d_metrics(rows: list[dict], skipped: int) -> dict:
    """VLM4D table (fractions) of VLM4D prediction rows, plus empty answers and skipped (no video) items."""
    recs = [{"split": r["split"], "id": r["vlm4d_id"], "answer": r["answer_text"], "correct": r["correct"]}
            for r in rows]
    out = scoring.vlm4d_table(recs) if recs else {}
    return {**{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in out.items()},
            "empty_rate": float(np.mean([r["pred"] == "" for r in rows])) if rows else None,
            "skipped_no_video": skipped}


def load_items(cfg: EvalParams) -> tuple[list[dict], int]:
    """Bench items then VLM4D items (those with a local video); and the number of VLM4D items skipped."""
    vlm, skipped = vlm4d_items(cfg.vlm4d_questions, cfg.vlm4d_video_root)
    return bench_items(cfg) + vlm, skipped


def judge_rows(cfg: EvalParams, items: list[dict], rows: list[dict], run_dir: str | Path,
               transport: Any = None) -> dict:
    """Optional cross-check: the LLM judge's verdict on every prediction (``judgements.jsonl``, resumable).

    Returns ``{"accuracy", "agreement", "n", "errors"}``: the judge's accuracy and how often its letter equals
    the rule-based letter.
    """
    from mllm4d import judge
    path = Path(run_dir) / JUDGEMENTS
    done = {r["id"]: r for r in common.read_jsonl(path)} if path.exists() else {}
    key = f"{cfg.judge_url}|{cfg.judge_model}"
    by_id = {it["id"]: it for it in items}
    out = []
    for r in rows:
        j = done.get(r["id"])
        if j is None or j.get("key") != key or j.get("response_key") != r["key"]:
            it = by_id[r["id"]]
            gt_text = it.get("answer_text", it["options"].get(it["gt"][0], ""))
            j = judge.judge(it["question"], it["options"], gt_text, r["response"], url=cfg.judge_url,
                            model=cfg.judge_model, **({"transport": transport} if transport else {}))
            j.update(id=r["id"], key=key, response_key=r["key"])
            common.append_jsonl(path, j)
        out.append((r, j))
    ok = [j["correct"] for _, j in out]
    return {"accuracy": scoring.accuracy(ok) if ok else None, "n": len(out),
            "agreement": float(np.mean([r["pred"] == j["letter"] for r, j in out])) if out else None,
            "errors": sum(bool(j["error"]) for _, j in out), "model": cfg.judge_model}


def run(cfg: EvalParams, run_dir: str | Path, model: Any = None, processor: Any = None) -> dict:
    """Items -> predictions -> metrics.json; returns the metrics."""
    t0 = time.time()
    need = CHOICE_PROMPT[cfg.choice]
    if need and cfg.prompt_mode not in need:
        raise common.ParamError(f"parameter 'choice'={cfg.choice!r} needs prompt_mode {' or '.join(need)} (what the "
                                f"model was trained to answer), got prompt_mode={cfg.prompt_mode!r}")
    items, skipped = load_items(cfg)
    bench = [it for it in items if it["source"] == "bench"]
    vlm = [it for it in items if it["source"] == "vlm4d"]
    if not bench and not vlm:
        raise ValueError("nothing to evaluate: dataset_run is '' and no VLM4D video was found "
                         f"(vlm4d_questions={cfg.vlm4d_questions!r}, skipped {skipped} without video)")
    rows, failed = predict(cfg, bench + vlm, run_dir, model, processor)
    spec = cfg.model or (model_spec(cfg) if model is None else "<given>")
    rng = np.random.default_rng(cfg.seed)
    b_rows = [r for r in rows if r["source"] == "bench"]
    metrics = bench_metrics(b_rows, [len(it["options"]) for it in bench], rng, cfg.n_boot)
    if cfg.vlm4d_questions:
        metrics["vlm4d"] = vlm4d_metrics([r for r in rows if r["source"] == "vlm4d"], skipped)
    if cfg.judge_url:
        metrics["judge"] = judge_rows(cfg, items, rows, run_dir)
    metrics["failed_items"] = {"n": len(failed), "first": failed[:10]}
    metrics.update(model=spec, prompt_mode=cfg.prompt_mode, blind_video=cfg.blind_video,
                   generation=generation_settings(cfg, spec), seconds=round(time.time() - t0, 2),
                   seconds_per_item=float(np.mean([r["seconds"] for r in rows])) if rows else None)
    common.write_metrics(run_dir, metrics)
    return metrics


def metrics_table(m: dict) -> Any:
    """Per-subtask accuracy (%) with 95 % CI and n, then macro, micro, chance and the constant-letter baseline."""
    import pandas as pd
    rows = []
    for s, acc in m.get("per_subtask", {}).items():
        lo, hi = m["ci95"].get(s, (np.nan, np.nan))
        rows.append({"row": prompts.SUBTASK_NAMES.get(s, s), "accuracy": 100 * acc, "ci95_low": 100 * lo,
                     "ci95_high": 100 * hi, "n": m["n_per_subtask"][s]})
    if m.get("n"):
        for key, label in (("overall", "Overall (macro, Table 1 Avg)"), ("micro", "Micro")):
            lo, hi = m["ci95"][key]
            rows.append({"row": label, "accuracy": 100 * m[key], "ci95_low": 100 * lo, "ci95_high": 100 * hi,
                         "n": m["n"]})
        rows.append({"row": "Chance", "accuracy": 100 * m["chance"], "n": m["n"]})
        rows.append({"row": f"Always '{m['constant_letter_choice']}' (best constant letter)",
                     "accuracy": 100 * m["constant_letter"], "n": m["n"]})
    return pd.DataFrame(rows).set_index("row").round(1) if rows else pd.DataFrame()


def summary_line(m: dict) -> str:
    """One-line result for the notebook's summary."""
    pct = lambda x: "-" if x is None else f"{100 * x:.1f} %"  # noqa: E731
    parts = [f"{m['model']} ({m['prompt_mode']}{', blind video' if m['blind_video'] else ''})"]
    if m.get("n"):
        lo, hi = m["ci95"]["overall"]
        parts.append(f"bench overall {pct(m['overall'])} (95 % CI {pct(lo)}-{pct(hi)}) on {m['n']} items, chance "
                     f"{pct(m['chance'])}, best constant letter {pct(m['constant_letter'])}, no answer "
                     f"{pct(m['empty_rate'])}")
    if m.get("vlm4d"):
        v = m["vlm4d"]
        parts.append(f"VLM4D real {pct(v.get('real'))} / synthetic {pct(v.get('synthetic'))} / overall "
                     f"{pct(v.get('overall'))} ({v.get('n_overall', 0)} items, {v['skipped_no_video']} without video)")
    return "; ".join(parts) + f"; {m['seconds']:.0f} s"
