"""Stage 03: the MLLM4D-style datasets — SFT, cold-start ST-CoT, RFT and a held-out benchmark (paper §3, §8.2-8.3).

``build(cfg, run_dir)`` reads the 01_curation run ``outputs/01_curation/<curation_run>/`` (``index.jsonl``,
``meta/<clip>.npz`` or, with ``use_gt_meta``, ``gt/<clip>.npz``, and ``frames/<clip>/<t:02d>.jpg``) and writes
``outputs/03_dataset/<run_name>/``:

- ``sft.jsonl``: MLLM4D-2M's composition, **7 equal slices** (paper Fig. 7): cad, crd, oad, ocad, ocrd,
  ocrdir-lateral, ocrdir-longitudinal; up to ``sft_items_per_slice`` each;
- ``coldstart.jsonl``: paper Alg. 1 — ``coldstart_per_scenario`` SFT items per slice, ``coldstart_k`` teacher
  paths each (``cot.TEACHERS``), scored by ``reward.REWARDS[coldstart_reward]``, kept by ``cot.alg1_select``;
  rows gain ``cot``. Candidates are cached in ``coldstart_candidates.jsonl`` (a rerun resumes); a teacher error
  (endpoint down) skips that item for this run and is counted in ``metrics["coldstart"]["teacher_errors"]``;
- ``rft.jsonl``: MLLM4D-R1-30k — ``rft_items`` items split over the six subtasks by ``rft_mix`` (paper Fig. 8,
  largest remainder), drawn from train items that show **significant 4D motion** (items outside the SFT set first,
  SFT items only to fill a subtask's quota; ``metrics["rft_in_sft"]`` counts them): the camera
  or the queried object moves ≥ ``rft_min_motion_m`` metres between ``frame_i`` and ``frame_j`` (the paper does not
  publish its criterion, paper.md §7 item 2). Rows carry ``solution`` (FORMATS.md);
- ``bench.jsonl``: six subtasks, balanced (each gets min(``bench_items_per_subtask``, the smallest non-empty
  subtask pool)) from the **benchmark clips**;
- ``frames/<clip>/<t:02d>.jpg`` (hard links to the curation run, copies across file systems), ``cards.md``,
  ``export/`` (``exports.write_exports``) and ``metrics.json``.

Split: the ok clip ids, sorted, are permuted with ``default_rng([seed, 1])``; the first
``round(bench_fraction · n)`` (at least 1 when n ≥ 2) are benchmark clips, the rest train clips;
``metrics["leakage_clips"]`` = |clip ids of sft ∪ coldstart ∪ rft rows ∩ clip ids of bench rows|, counted from
the written rows.

Per clip, relations come from ``solver.solve_clips`` and rows from ``qa.make_items`` (:func:`rows_for_clips`); the
solver constants are the ``params.json`` of the 02_solver run ``solver_run``. The per-clip generator is
``default_rng([seed, crc32(clip_id)])`` so a clip's items do not depend on which other clips exist, and items
are cached per clip under ``items-<params hash>/`` (a rerun resumes). At most ``cap_per_clip`` relations per clip
are templated, taken round-robin over the 7 scenarios (the paper caps QAs per video; its cap is unpublished).
The latest ``index.jsonl`` row of a clip decides whether it is ok (curation appends retries); a clip whose files
cannot be read is skipped and counted (``metrics["clips"]["skip_reasons"]``).

Memory: every item is held in memory during selection (~2.7 kB each: ~5.4 GB at the paper's 2M items).

Deviations: slices are equal by *target*; a slice with fewer items available keeps them all (shortfall in the
metrics) instead of shrinking the other six. SFT and cold-start rows may share items (the paper samples its
cold-start items from MLLM4D-2M); RFT items avoid SFT items where the pool allows (whether R1-30k overlaps
MLLM4D-2M is unpublished) and never avoid SFT clips.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import clips, common, cot, exports, ladder, prompts, qa, reward, solver
from .selection import _scen, select_bench, select_rft, select_sft, take

SPLITS = ("sft", "coldstart", "rft", "bench")
CACHE_VERSION = 2  # layout of items-<hash>/<clip>.json; part of the hash, so an older layout is never reused
RFT_MIX_FIG8 = (0.192, 0.167, 0.200, 0.192, 0.167, 0.083)  # prompts.SUBTASKS order (paper Fig. 8)


@dataclass(frozen=True)
class DatasetParams:
    outputs_root: str = common.field(help="root of all stage outputs")
    run_name: str = common.field(help="this run's folder name under outputs/03_dataset/")
    seed: int = common.field(help="seed of the split, sampling, option order and teacher")
    curation_run: str = common.field(help="01_curation run to read clips from")
    use_gt_meta: bool = common.field(help="build from exact GT metadata (gt/) instead of curated (meta/)")
    cap_per_clip: int = common.field(help="max relations templated per clip (round-robin over scenarios)", ge=1)
    solver_run: str = common.field(help="02_solver run whose parameters set the solver constants")
    option_order: str = common.field(help="option letters: shuffled (paper) or canonical",
                                     choices=("shuffled", "canonical"))
    distractor_lo: float = common.field(help="numeric distractors >= this x truth (paper 0.25)", gt=0.0, le=1.0)
    distractor_hi: float = common.field(help="numeric distractors <= this x truth (paper 1.75)", ge=1.0)
    min_gap_rel: float = common.field(help="min gap between numeric options, relative to the truth", ge=0.0)
    min_gap_abs: float = common.field(help="min gap between numeric options (m)", ge=0.0)
    decimals: int = common.field(help="decimals of numeric options (paper examples: 1)", ge=0)
    numeric_mode: str = common.field(help="numeric options: relative (paper: distractors around the truth) or "
                                          "ladder (four fixed rungs per subtask: no text prior, ladder.py)",
                                     choices=qa.NUMERIC_MODES)
    ladder_cad: list[float] = common.field(help="ladder mode: Camera Abs. Dist. rungs (m, ascending)")
    ladder_oad: list[float] = common.field(help="ladder mode: Object Abs. Dist. rungs (m, ascending)")
    ladder_ocad: list[float] = common.field(help="ladder mode: Object-Camera Abs. Dist. rungs (m, ascending)")
    ladder_margin: float = common.field(help="ladder mode: skip values this close (relative) to a cell boundary",
                                        ge=0.0, lt=1.0)
    bench_fraction: float = common.field(help="fraction of clips held out for the benchmark", ge=0.0, le=1.0)
    balance_labels: bool = common.field(help="balance answer labels (categorical) and answer ranks among the "
                                             "sorted options (numeric) within each subtask (no text prior)")
    sft_items_per_slice: int = common.field(help="SFT items per each of the 7 slices (paper: 2M / 7)", ge=0)
    bench_items_per_subtask: int = common.field(help="benchmark items per subtask (paper: ~1000)", ge=0)
    rft_items: int = common.field(help="RFT items in total (paper: 30000)", ge=0)
    rft_mix: list[float] = common.field(help="RFT share per subtask, prompts.SUBTASKS order (paper Fig. 8)")
    rft_min_motion_m: float = common.field(help="significant 4D motion: camera or object moves >= this (m)", ge=0.0)
    coldstart_per_scenario: int = common.field(help="Alg. 1 N: items sampled per scenario (paper 2000)", ge=0)
    coldstart_k: int = common.field(help="Alg. 1 K: teacher paths per item (paper 3)", ge=1)
    coldstart_reward: str = common.field(help="reward preset scoring the paths", choices=tuple(reward.PRESETS))
    teacher: str = common.field(help="CoT generator: geometric (local stand-in) or openai", choices=tuple(cot.TEACHERS))
    teacher_noise_m: float = common.field(help="geometric teacher: centre noise scale (m)", ge=0.0)
    teacher_wrong_prob: float = common.field(help="geometric teacher: P(answer a wrong option)", ge=0.0, le=1.0)
    cot_style: str = common.field(help="geometric teacher: full five-step chain (paper) or compact (states + "
                                       "synthesis, ~120 tokens)", choices=("full", "compact"))
    teacher_url: str = common.field(help="openai teacher: base URL of a /chat/completions endpoint")
    teacher_model: str = common.field(help="openai teacher: model name")


# ----------------------------------------------------------------------------------------------------------
# Pure helpers
# ----------------------------------------------------------------------------------------------------------
def clip_rng(seed: int, key: str, *extra: int) -> np.random.Generator:
    """Generator of one clip/item: independent of processing order (resume, parallel shards)."""
    return np.random.default_rng([int(seed), zlib.crc32(key.encode()), *extra])


def split_clips(clip_ids: list[str], bench_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, bench) clip ids, disjoint, each sorted; the permutation uses ``default_rng([seed, 1])``."""
    ids = sorted(set(clip_ids))
    n_bench = int(round(bench_fraction * len(ids)))
    if len(ids) >= 2 and bench_fraction > 0:
        n_bench = min(max(n_bench, 1), len(ids) - 1)
    perm = np.random.default_rng([int(seed), 1]).permutation(len(ids))
    bench = sorted(ids[k] for k in perm[:n_bench])
    return sorted(set(ids) - set(bench)), bench


def ok_clip_ids(curation_dir: Path) -> list[str]:
    """Sorted ids of the clips whose latest ``index.jsonl`` row is ok (curation appends retries: the last wins)."""
    latest = {r["clip_id"]: r for r in common.read_jsonl(Path(curation_dir) / "index.jsonl")}
    return sorted(c for c, r in latest.items() if r.get("status") == "ok")


def frame_paths(clip_id: str, n_frames: int) -> list[str]:
    """The row's ``frames``: paths relative to the dataset run directory."""
    return [f"frames/{clip_id}/{t:02d}.jpg" for t in range(n_frames)]


def rows_for_clips(metas: list[clips.ClipMeta], solver_cfg: solver.SolverConfig, qa_cfg: qa.QAConfig,
                   caps: list[int | None], rng: np.random.Generator) -> tuple[list[list[dict]], collections.Counter]:
    """Rows (FORMATS.md, with ``frames``) of several clips: ``solver.solve_clips`` (one vectorised call) →
    ``qa.make_items`` per clip with cap ``caps[k]`` (balanced over the 7 scenarios; None = every relation).

    The rows of all clips are built by one ``qa.make_items_clips`` call (the same draws as ``make_items`` clip
    after clip, at a fraction of the cost). ``qa.make_items`` raises if one numeric value admits no four
    distinct options; then the generator is rewound and :func:`_rows_one_by_one` redoes the clips, where such a
    clip falls back to item-by-item templating, skipping (and counting) the bad relations.
    """
    per_clip, counts = solver.solve_clips(metas, solver_cfg, rng)
    if qa_cfg.numeric_mode == "ladder":
        counts["ladder_ambiguous"] += sum(len(r) - len(qa.askable(r, qa_cfg)) for r in per_clip)
    state = rng.bit_generator.state
    try:
        out = qa.make_items_clips(per_clip, metas, rng, qa_cfg, caps)
    except ValueError:
        rng.bit_generator.state = state
        out = _rows_one_by_one(per_clip, metas, qa_cfg, caps, rng, counts)
    for meta, rows in zip(metas, out):
        frames = frame_paths(meta.name, meta.num_frames)
        for row in rows:
            row["frames"] = frames
    return out, counts


def _rows_one_by_one(per_clip: list[list], metas: list[clips.ClipMeta], qa_cfg: qa.QAConfig, caps: list[int | None],
                     rng: np.random.Generator, counts: collections.Counter) -> list[list[dict]]:
    """Rows of each clip by ``qa.make_items``; a clip it rejects is templated relation by relation instead,
    counting the relations that admit no options as ``counts["qa_rejected"]``."""
    out = []
    for meta, relations, cap in zip(metas, per_clip, caps):
        try:
            rows = qa.make_items(relations, meta, rng, qa_cfg, cap)
        except ValueError:
            rows, seen = [], collections.Counter()
            for rel in qa.select(relations, rng, cap):
                try:
                    rows.append(qa.make_item(rel, meta, rng, qa_cfg, seen[rel.scenario]))
                    seen[rel.scenario] += 1
                except ValueError:
                    counts["qa_rejected"] += 1
        out.append(rows)
    return out


def clip_rows(meta: clips.ClipMeta, solver_cfg: solver.SolverConfig, qa_cfg: qa.QAConfig, cap: int,
              rng: np.random.Generator) -> tuple[list[dict], collections.Counter]:
    """:func:`rows_for_clips` for one clip."""
    rows, counts = rows_for_clips([meta], solver_cfg, qa_cfg, [cap], rng)
    return rows[0], counts


def clip_items(meta: clips.ClipMeta, solver_cfg: solver.SolverConfig, qa_cfg: qa.QAConfig, cap: int,
               rng: np.random.Generator) -> tuple[list[dict], collections.Counter]:
    """Items of one clip: ``{"row": row, "motion": {"camera": m, "object": m | None}}``.

    ``motion``: camera and queried-object displacement (metres) between ``frame_i`` and ``frame_j``, from the
    metadata (the RFT "significant 4D motion" filter's input; the row's ``solution`` nulls what is not asked).
    """
    rows, counts = clip_rows(meta, solver_cfg, qa_cfg, cap, rng)
    items = []
    for row in rows:
        geom = cot.geometry_from_meta(meta, row["frame_i"], row["frame_j"], row.get("object", -1))
        obj = None if geom.obj is None else float(np.linalg.norm(geom.obj[1] - geom.obj[0]))
        items.append({"row": row, "motion": {"camera": float(np.linalg.norm(geom.cam[1] - geom.cam[0])),
                                             "object": obj if obj is None or np.isfinite(obj) else None}})
    return items, counts


def qa_config(cfg: DatasetParams) -> qa.QAConfig:
    """The QA templater's configuration from the dataset parameters."""
    return qa.QAConfig(option_order=cfg.option_order, distractor_lo=cfg.distractor_lo,
                       distractor_hi=cfg.distractor_hi, min_gap_rel=cfg.min_gap_rel, min_gap_abs=cfg.min_gap_abs,
                       decimals=cfg.decimals, numeric_mode=cfg.numeric_mode, ladder_margin=cfg.ladder_margin,
                       ladders=tuple((s, tuple(getattr(cfg, f"ladder_{s}")))   # sorted: the cache key must not
                                     for s in sorted(ladder.NUMERIC)))          # follow set order (hash seed)


# ----------------------------------------------------------------------------------------------------------
# I/O edge: cold start, frames, build
# ----------------------------------------------------------------------------------------------------------
def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def teacher_config(cfg: DatasetParams) -> dict:
    """The teacher's ``cfg`` dict (see ``cot.geometric_teacher`` / ``cot.openai_teacher``)."""
    return {"noise_m": cfg.teacher_noise_m, "wrong_prob": cfg.teacher_wrong_prob, "compact": cfg.cot_style == "compact",
            "url": cfg.teacher_url,
            "model": cfg.teacher_model, "api_key_env": "MLLM4D_TEACHER_API_KEY"}


def _read_cache(path: Path, key: str) -> dict[str, dict]:
    """Valid candidate records of ``key``; the file is rewritten without a torn last line before appending."""
    if not path.exists():
        return {}
    rows = common.read_jsonl(path)
    common.write_jsonl(path, rows)
    return {r["id"]: r for r in rows if r.get("key") == key}


def coldstart(sft: list[dict], cfg: DatasetParams, run_dir: Path, load) -> tuple[list[dict], dict]:
    """Paper Alg. 1 over the SFT items: sample N per scenario, K paths each, score, keep by τ_s.

    ``load(clip_id) -> ClipMeta`` supplies the geometry. Returns (cold-start rows with ``cot``, statistics).
    """
    chosen = []
    rng = np.random.default_rng([cfg.seed, 3])
    for key in cot.SCENARIOS:
        chosen += take([it for it in sft if _scen(it) == key], cfg.coldstart_per_scenario, rng)
    tcfg = teacher_config(cfg)
    ckey = _digest([cfg.seed, cfg.teacher, cfg.coldstart_k, cfg.coldstart_reward, tcfg])
    path = run_dir / "coldstart_candidates.jsonl"
    done = _read_cache(path, ckey)
    score = reward.REWARDS[cfg.coldstart_reward]
    metas: dict[str, clips.ClipMeta] = {}
    errors: collections.Counter = collections.Counter()
    for it in chosen:
        row = it["row"]
        if row["id"] in done:
            continue
        if row["clip_id"] not in metas:
            metas[row["clip_id"]] = load(row["clip_id"])
        geom = cot.geometry_from_meta(metas[row["clip_id"]], row["frame_i"], row["frame_j"], row.get("object", -1))
        try:  # an endpoint error skips the item (not cached: a rerun asks again), never the run
            cands = cot.candidates(row, geom, clip_rng(cfg.seed, row["id"], 3), cfg.coldstart_k, cfg.teacher, tcfg)
        except (OSError, ValueError, KeyError, IndexError) as e:
            errors[f"{type(e).__name__}: {str(e)[:120]}"] += 1
            continue
        k = len(cands)
        rec = {"id": row["id"], "key": ckey, "candidates": cands,
               "scores": score(cands, [[row["solution"]]] * k, options=[row["options"]] * k)}
        common.append_jsonl(path, rec)
        done[row["id"]] = rec
    chosen = [it for it in chosen if it["row"]["id"] in done]
    scen = [_scen(it) for it in chosen]
    keep, tau = cot.alg1_select([done[it["row"]["id"]]["scores"] for it in chosen], scen)
    rows = [{**it["row"], "cot": done[it["row"]["id"]]["candidates"][b]}
            for it, b in zip(chosen, keep) if b is not None]
    acc = {s: float(np.mean([b is not None for b, sc in zip(keep, scen) if sc == s])) for s in tau}
    return rows, {"sampled": len(chosen), "kept": len(rows), "tau": tau, "acceptance": acc,
                  "teacher_errors": sum(errors.values()), "teacher_error_reasons": dict(errors)}


def link_frames(src_root: Path, dst_root: Path, clip_id: str, n_frames: int) -> None:
    """Hard-link (or copy) a clip's frames into the dataset run; existing files are kept (resume)."""
    for rel in frame_paths(clip_id, n_frames):
        src, dst = src_root / rel, dst_root / rel
        if dst.exists():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)


def _clip_cached(cur: Path, cid: str, cfg: DatasetParams, scfg: solver.SolverConfig, cache: Path
                 ) -> tuple[list[dict], dict]:
    """A clip's items, from ``cache/<clip>.json`` when present. The cache stores each row without ``frames``;
    all rows of a clip share one frame list in memory (about 2.5 kB less per row at 32 frames)."""
    path = cache / f"{cid}.json"
    rec = common.read_json(path) if path.exists() else {}
    if not {"num_frames", "counts", "items"} <= set(rec):  # absent or from an older layout: rebuild
        meta = clips.load_meta(cur / ("gt" if cfg.use_gt_meta else "meta") / f"{cid}.npz")
        missing = [p for p in frame_paths(cid, meta.num_frames) if not (cur / p).exists()]
        if missing:
            raise FileNotFoundError(f"{cur / missing[0]}: frame missing for clip {cid}")
        items, c = clip_items(meta, scfg, qa_config(cfg), cfg.cap_per_clip, clip_rng(cfg.seed, cid))
        rec = {"num_frames": meta.num_frames, "counts": dict(c),
               "items": [{**it, "row": {k: v for k, v in it["row"].items() if k != "frames"}} for it in items]}
        common.write_json(path, rec, indent=None)
    frames = frame_paths(cid, rec["num_frames"])
    for it in rec["items"]:
        it["row"]["frames"] = frames
    return rec["items"], rec["counts"]


def build(cfg: DatasetParams, run_dir: str | Path) -> dict[str, Any]:
    """Build every split of a dataset run (module docstring); returns the metrics also written to metrics.json."""
    t0, run_dir = time.time(), Path(run_dir)
    if len(cfg.rft_mix) != len(prompts.SUBTASKS) or min(cfg.rft_mix) < 0 or sum(cfg.rft_mix) <= 0:
        raise common.ParamError(f"parameter 'rft_mix' must be {len(prompts.SUBTASKS)} non-negative shares "
                                f"(order {prompts.SUBTASKS}) with a positive sum, got {list(cfg.rft_mix)}")
    try:
        qa_config(cfg)
    except ValueError as e:
        raise common.ParamError(f"parameters 'ladder_cad'/'ladder_oad'/'ladder_ocad': {e}") from None
    cur = common.upstream_dir("01_curation", cfg.curation_run, cfg.outputs_root, require=("index.jsonl",))
    ok = ok_clip_ids(cur)
    train_ids, bench_ids = split_clips(ok, cfg.bench_fraction, cfg.seed)
    sdir = common.upstream_dir("02_solver", cfg.solver_run, cfg.outputs_root, require=("params.json",))
    sparams = common.read_json(sdir / "params.json").get("params", {})
    missing = [f.name for f in dataclasses.fields(solver.SolverConfig)
               if f.name not in sparams and f.default is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{sdir / 'params.json'}: field(s) {missing} missing (solver.SolverConfig needs them)")
    scfg = solver.config_from(sparams)
    key = [CACHE_VERSION, cfg.seed, cfg.curation_run, cfg.use_gt_meta, cfg.cap_per_clip, common.as_dict(scfg),
           common.as_dict(qa_config(cfg))]
    cache = run_dir / f"items-{_digest(key)}"
    per_clip: dict[str, list[dict]] = {}
    relations, skipped = collections.Counter(), collections.Counter()
    for cid in ok:
        try:
            per_clip[cid], c = _clip_cached(cur, cid, cfg, scfg, cache)
            relations.update(c)
        except (ValueError, FileNotFoundError, KeyError) as e:
            skipped[f"{type(e).__name__}: {str(e)[:200]}"] += 1
    if ok and not per_clip:
        raise ValueError(f"{cur}: none of the {len(ok)} ok clips could be read; first reasons: {dict(skipped)}")
    train = [it for cid in train_ids for it in per_clip.get(cid, [])]
    bench_pool = [it for cid in bench_ids for it in per_clip.get(cid, [])]
    sft = select_sft(train, cfg.sft_items_per_slice, np.random.default_rng([cfg.seed, 2]), cfg.balance_labels)
    load = lambda cid: clips.load_meta(cur / ("gt" if cfg.use_gt_meta else "meta") / f"{cid}.npz")  # noqa: E731
    cold_rows, cold_stats = coldstart(sft, cfg, run_dir, load)
    rft = select_rft(train, {it["row"]["id"] for it in sft}, cfg, np.random.default_rng([cfg.seed, 4]))
    bench = select_bench(bench_pool, cfg.bench_items_per_subtask, np.random.default_rng([cfg.seed, 5]),
                         cfg.balance_labels)
    splits = {"sft": [it["row"] for it in sft], "coldstart": cold_rows, "rft": [it["row"] for it in rft],
              "bench": [it["row"] for it in bench]}
    used = sorted({(r["clip_id"], len(r["frames"])) for rows in splits.values() for r in rows})
    for cid, n in used:
        link_frames(cur, run_dir, cid, n)
    for name, rows in splits.items():
        common.write_jsonl(run_dir / f"{name}.jsonl", rows)
    cards = "\n".join(exports.card(n, r) for n, r in splits.items())
    src = "gt" if cfg.use_gt_meta else "curated"
    head = f"# Dataset cards\n\nFrom 01_curation run `{cfg.curation_run}` ({src} metadata), seed {cfg.seed}.\n\n"
    common.atomic_write_text(run_dir / "cards.md", head + cards)
    export_paths = exports.write_exports(run_dir, splits, cards)
    fig = exports.plot_distributions(splits)
    fig.savefig(run_dir / "distributions.png", dpi=110)
    train_clips = {r["clip_id"] for n in ("sft", "coldstart", "rft") for r in splits[n]}
    metrics = {
        "leakage_clips": len(train_clips & {r["clip_id"] for r in splits["bench"]}),
        "rft_in_sft": len({r["id"] for r in splits["rft"]} & {r["id"] for r in splits["sft"]}),
        "clips": {"ok": len(ok), "train": len(train_ids), "bench": len(bench_ids), "used": len(used),
                  "skipped": sum(skipped.values()), "skip_reasons": dict(skipped)},
        "relations": dict(sorted(relations.items())), "items_total": sum(len(v) for v in per_clip.values()),
        "splits": {n: exports.counts(r) for n, r in splits.items()},
        "coldstart": cold_stats, "exports": export_paths, "source": src,
        "seconds": round(time.time() - t0, 2),
    }
    common.write_metrics(run_dir, metrics)
    return metrics
