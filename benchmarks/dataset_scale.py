"""Scale benchmark of the 03_dataset item pipeline at the paper's size: ~2M QA items from ~100k clips (paper §3 p.4).

    .venv/bin/python benchmarks/dataset_scale.py                               # 100k clips -> 2M items, 2 workers
    .venv/bin/python benchmarks/dataset_scale.py --clips 2000 --items 40000 --repeat 2    # quick determinism check
    .venv/bin/python benchmarks/dataset_scale.py --clips 300 --items 6000 --profile      # cProfile, one process

Per batch of ``--batch`` clips (no rendering): ``scene.sample_scenes`` (vectorised over the batch) with the batch's
generator ``SeedSequence(seed, spawn_key=(first clip, 0))`` → ``scene.gt_meta_batch`` (exact metadata) →
``dataset.rows_for_clips`` (``solver.solve_clips`` + ``qa.make_items``, the code 03_dataset runs) with the batch's
generator ``SeedSequence(seed, spawn_key=(first clip, 1))`` → one JSON line per item (FORMATS.md row with its 32
frame paths), streamed into gzip shards (level 1, header mtime 0 and no file name, so equal input gives equal
bytes).

Items per clip: shard s owns clips [a_s, b_s) and a quota of ``items`` split in proportion (largest remainder);
the clips of a batch are capped at ceil(remaining quota / remaining clips) (``qa.make_items`` balances the capped
subset across the 7 scenarios), so clips that yield fewer items raise the cap of the following batches; the
shard's last batch is uncapped and levelled (:func:`level`), so the total hits ``items`` exactly whenever the
clips hold that many relations. The shard contents therefore depend on
(seed, clips, items, workers, batch).

Solver constants: the 02_solver notebook's defaults updated by ``params/<profile>/02_solver.yaml``, or
``--solver-params FILE`` (YAML/JSON mapping holding the ``solver.SolverConfig`` fields); QA constants likewise from
03_dataset. ``--pairs-per-clip`` (default 6) overrides the solver's frame pairs per clip: the 02_solver default (4)
yields ~21 relations per clip on these scenes, too few for 20 items from *every* clip, and the total would stop
about 2 % short of 2M. Reported: wall seconds, per-stage CPU seconds, peak RSS (``ru_maxrss`` of the parent and
of the largest worker; their sum bounds the total), sha256 per shard and whether the repetitions are
byte-identical. Results go to ``<out>/report.json``.
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import cProfile
import ctypes
import gc
import gzip
import hashlib
import json
import multiprocessing as mp
import os
import pstats
import resource
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mllm4d import common, dataset, qa, runner, scene, selection, solver  # noqa: E402


def stage_params(stem: str, profile: str, path: str | None) -> dict:
    """A stage's effective parameters: notebook defaults + ``params/<profile>/<stem>.yaml``, or a file."""
    if path:
        return yaml.safe_load(Path(path).read_text())
    if not (runner.NOTEBOOKS / f"{stem}.ipynb").exists():
        flag = "--solver-params" if stem == "02_solver" else "--dataset-params"
        raise SystemExit(f"notebooks/{stem}.ipynb not found: pass its parameters with {flag} FILE")
    out = runner.notebook_defaults(stem)
    y = runner.PARAMS / profile / f"{stem}.yaml"
    out.update(yaml.safe_load(y.read_text()) or {} if y.exists() else {})
    return out


def shard_plan(clips: int, items: int, workers: int) -> list[tuple[int, int, int]]:
    """(first clip, end clip, item quota) per shard; clips split evenly, quotas by largest remainder."""
    bounds = np.linspace(0, clips, workers + 1).round().astype(int)
    quotas = selection.allocate(items, np.diff(bounds).tolist())
    return [(int(a), int(b), int(q)) for a, b, q in zip(bounds[:-1], bounds[1:], quotas)]


_ENCODER = json.JSONEncoder(ensure_ascii=False, check_circular=False)  # json.dumps builds one per call


def encode_rows(rows: list[dict]) -> str:
    """JSONL text of ``rows``, byte-equal to ``json.dumps(row, ensure_ascii=False)`` per line; the ``frames`` list
    (the last key, ~60 % of a row, shared by a clip's rows) is encoded once per clip and spliced in. The head is
    a copy without that key (``dict.copy`` + ``del`` keeps the key order and is ~10x cheaper than a comprehension)."""
    out, cache = [], {}
    for r in rows:
        fr = r["frames"]
        if id(fr) not in cache:
            cache[id(fr)] = _ENCODER.encode(fr)
        head = r.copy()
        del head["frames"]
        out.append(f'{_ENCODER.encode(head)[:-1]}, "frames": {cache[id(fr)]}}}\n')
    return "".join(out)


def level(per_clip: list[list[dict]], total: int) -> list[list[dict]]:
    """Each clip's first L rows with the smallest L such that the clips give ``total`` rows (or all they have).

    >>> [len(r) for r in level([[1] * 5, [1] * 30, [1] * 12], 30)]
    [5, 13, 12]
    """
    for L in range(max((len(r) for r in per_clip), default=0) + 1):
        if sum(min(len(r), L) for r in per_clip) >= total:
            break
    return [r[:L] for r in per_clip]


_M_TOP_PAD = -2  # mallopt(3) parameter number (glibc <malloc.h>)


def keep_heap(pad_mb: int = 64) -> bool:
    """Let glibc keep ``pad_mb`` MB of freed memory at the top of the heap instead of returning it to the OS.

    Why: a batch allocates tens of MB of numpy temporaries and frees them all when it ends; by default glibc
    then trims the heap, so the next batch faults every page back in, zeroed by the kernel (~70 page faults
    per clip, ~9 % of a worker's CPU as system time). Output is unaffected, peak RSS barely (the pages were
    resident at the batch's peak anyway). Returns whether it applied (glibc's ``mallopt``; elsewhere a no-op).
    """
    try:
        return bool(ctypes.CDLL(None).mallopt(_M_TOP_PAD, pad_mb << 20))
    except (AttributeError, OSError):
        return False


def run_batch(k0: int, k1: int, seed: int, scfg, qcfg, cap: int | None, remaining: int) -> tuple[bytes, dict]:
    """Clips [k0, k1) of a shard, at most ``remaining`` rows (``cap`` per clip; None: uncapped, then levelled):
    their JSONL bytes and statistics (per-stage CPU seconds, counters, rows, clips without items).

    Scenes are sampled for the whole batch with the generator of ``(seed, (k0, 0))``; metadata and relations are
    computed for the whole batch (``scene.gt_meta_batch``, ``dataset.rows_for_clips``) with that of
    ``(seed, (k0, 1))``. Every object the batch builds dies when this returns (the caller pauses the GC).
    """
    t0 = time.process_time()  # CPU seconds of this worker (robust to other load on the machine)
    specs = scene.sample_scenes(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k0, 0))), k1 - k0,
                                names=[f"s{k:06d}" for k in range(k0, k1)])
    t1 = time.process_time()
    metas = scene.gt_meta_batch(specs)
    t2 = time.process_time()
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k0, 1)))
    per_clip, counts = dataset.rows_for_clips(metas, scfg, qcfg, [cap] * len(metas), rng)
    if cap is None:
        per_clip = level(per_clip, remaining)
    rows = [r for rs in per_clip for r in rs][:remaining]
    t3 = time.process_time()
    data = encode_rows(rows).encode()
    t4 = time.process_time()
    stats = {"sec": dict(scene=t1 - t0, gt_meta=t2 - t1, solve_and_qa=t3 - t2, encode=t4 - t3),
             "rel": collections.Counter({str(key): v for key, v in counts.items()}),
             "subtask": collections.Counter(r["subtask"] for r in rows),
             "scenario": collections.Counter(f"{r['subtask']}-{r['variant']}" if r["variant"] else r["subtask"]
                                             for r in rows),
             "answer": collections.Counter(r["answer"] for r in rows),
             "items": len(rows), "empty": sum(not rs for rs in per_clip)}
    return data, stats


def run_shard(args: tuple) -> dict:
    """Generate one shard's items into ``path`` (gzip JSONL, atomic); return its statistics.

    Clips go in batches of ``batch`` (:func:`run_batch`); the shard's last batch is uncapped and levelled, so
    it makes up any shortfall. The cyclic GC is paused during each batch: a batch allocates ~10^5 small
    acyclic objects (scene specs, relations, rows) that reference counting frees when it ends, and collections
    triggered while they are alive only re-scan them (measured ~13 % of the worker's CPU).
    """
    path, a, b, quota, seed, scfg, qcfg, batch = args
    path, heap_kept = Path(path), keep_heap()
    tmp = path.with_name(f".{path.name}.tmp")
    sec, subtask, scenario, letters, rel = (collections.Counter() for _ in range(5))
    n_items, empty = 0, 0
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0, filename="") as gz:
        for k0 in range(a, b, batch):
            remaining = quota - n_items
            if remaining <= 0:
                break
            last = k0 + batch >= b
            with solver.no_gc():
                data, st = run_batch(k0, min(k0 + batch, b), seed, scfg, qcfg,
                                     None if last else -(-remaining // (b - k0)), remaining)
            t0 = time.process_time()
            gz.write(data)
            sec.update(st["sec"], gzip=time.process_time() - t0)
            rel.update(st["rel"])
            subtask.update(st["subtask"])
            scenario.update(st["scenario"])
            letters.update(st["answer"])
            n_items += st["items"]
            empty += st["empty"]
    os.replace(tmp, path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return {"file": path.name, "items": n_items, "clips": b - a, "clips_without_items": empty,
            "sha256": h.hexdigest(), "bytes": path.stat().st_size,
            "stage_cpu_s": {k: round(v, 2) for k, v in sec.items()}, "heap_kept": heap_kept,
            "subtask": dict(sorted(subtask.items())), "scenario": dict(sorted(scenario.items())),
            "answer": dict(sorted(letters.items())), "relations": dict(sorted(rel.items())),
            "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_once(out: Path, plan: list, seed: int, scfg, qcfg, workers: int, batch: int) -> dict:
    """One full generation into ``out`` with ``workers`` processes (fork); timing and memory of the whole run."""
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(str(out / f"shard-{s:02d}-of-{len(plan):02d}.jsonl.gz"), a, b, q, seed, scfg, qcfg, batch)
            for s, (a, b, q) in enumerate(plan)]
    t0 = time.perf_counter()
    gc.freeze()  # what the parent holds (~150k objects, mostly nbformat's) is never re-scanned by a worker's GC
    try:
        if workers == 1:
            shards = [run_shard(j) for j in jobs]
        else:
            with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
                shards = list(pool.map(run_shard, jobs))
    finally:
        gc.unfreeze()
    wall = time.perf_counter() - t0
    parent = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = max((s["maxrss_mb"] for s in shards), default=0.0)
    return {"wall_s": round(wall, 2), "items": sum(s["items"] for s in shards),
            "peak_rss_mb": {"parent": round(parent, 1), "largest_worker": round(child, 1),
                            "total_upper_bound": round(parent + sum(s["maxrss_mb"] for s in shards), 1)},
            "items_per_s": round(sum(s["items"] for s in shards) / wall, 1), "shards": shards}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=2_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64, help="clips per vectorised metadata/solver call")
    ap.add_argument("--repeat", type=int, default=1, help="runs to compare byte for byte (sha256 per shard)")
    ap.add_argument("--out", default="outputs/benchmarks/dataset_scale")
    ap.add_argument("--profile-name", default="paper", help="params/<profile>/ to read stage parameters from")
    ap.add_argument("--solver-params", default=None, help="YAML/JSON with the SolverConfig fields")
    ap.add_argument("--dataset-params", default=None, help="YAML/JSON with the QA fields of 03_dataset")
    ap.add_argument("--pairs-per-clip", type=int, default=6,
                    help="override SolverConfig.pairs_per_clip (0 = keep the profile's); 6 pairs give ~30 relations "
                         "per clip, enough slack for the 20-per-clip cap of 2M items from 100k clips")
    ap.add_argument("--profile", action="store_true", help="cProfile one in-process shard of --clips clips")
    a = ap.parse_args(argv)
    sp = stage_params("02_solver", a.profile_name, a.solver_params)
    scfg = solver.config_from({**sp, **({"pairs_per_clip": a.pairs_per_clip} if a.pairs_per_clip else {})})
    d = stage_params("03_dataset", a.profile_name, a.dataset_params)
    qcfg = qa.QAConfig(**{k: d[k] for k in ("option_order", "distractor_lo", "distractor_hi", "min_gap_rel",
                                           "min_gap_abs", "decimals")})
    out = common.resolve(a.out)
    plan = shard_plan(a.clips, a.items, 1 if a.profile else a.workers)
    if a.profile:
        prof = cProfile.Profile()
        prof.enable()
        res = run_once(out / "profile", plan, a.seed, scfg, qcfg, 1, a.batch)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        print(json.dumps({k: res[k] for k in ("wall_s", "items", "items_per_s")}))
        return res
    runs = [run_once(out / f"rep{r}", plan, a.seed, scfg, qcfg, a.workers, a.batch) for r in range(a.repeat)]
    digests = [[s["sha256"] for s in r["shards"]] for r in runs]
    report = {"clips": a.clips, "items_target": a.items, "workers": a.workers, "batch": a.batch, "seed": a.seed,
              "cpu_count": os.cpu_count(), "loadavg_1m_at_end": os.getloadavg()[0],
              "solver": common.as_dict(scfg), "qa": common.as_dict(qcfg),
              "byte_identical": all(x == digests[0] for x in digests) if len(runs) > 1 else None, "runs": runs}
    common.write_json(out / "report.json", report)
    for r in runs:
        print(json.dumps({k: r[k] for k in ("wall_s", "items", "items_per_s", "peak_rss_mb")}))
    print(json.dumps({"byte_identical": report["byte_identical"], "sha256": digests[0]}))
    return report


if __name__ == "__main__":
    main()
