"""Run the numbered notebooks in order with a parameter profile (the repo's main job).

    python -m mllm4d run --profile tiny                 # every stage, skipping complete ones
    python -m mllm4d run --profile smoke --outputs-root /tmp/o --force
    python -m mllm4d run --profile tiny --only 05_grpo  # one stage (all its runs)
    python -m mllm4d list --profile paper               # what would run, with effective parameters

A stage's runs are ``params/<profile>/<stem>.yaml`` followed by ``params/<profile>/<stem>@<variant>.yaml``
(extra runs, e.g. ``05_grpo@acc.yaml``). Each run's effective parameters are the notebook's defaults (its
``parameters`` cell) updated by the YAML file; a YAML key the notebook does not declare is an error here
(papermill would only warn). The executed copy goes to ``<outputs_root>/<stem>/<run_name>/<stem>.ipynb``.

A run is *complete* when its ``metrics.json`` exists and its ``params.json`` holds the same effective
parameters; complete runs are skipped unless ``--force``, or unless an earlier stage was executed in the
same invocation (its outputs changed, so everything downstream is redone). The first failing cell stops
the runner with the cell's error (with ``--jobs N`` the runs already started finish first).

``--jobs N`` runs up to N runs at once, each as its own process and kernel, in the order of a dependency
graph read from the parameters (``depends_on``); each then gets ``cpu_count // N`` torch/BLAS threads
(``OMP_NUM_THREADS``), so on 2 cores ``--jobs 2`` runs two single-threaded runs side by side. Training
runs that fix ``cpu_threads`` are unaffected; evaluation and GRPO sampling use one thread instead of two,
which can change a float's last bits (the tiny Table 3 came out identical to the serial runs: README).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import common

NOTEBOOKS = common.REPO_ROOT / "notebooks"
PARAMS = common.REPO_ROOT / "params"


@dataclass(frozen=True)
class Run:
    stem: str            # e.g. "05_grpo"
    variant: str         # "" or the part after "@" in the YAML file name
    yaml_path: Path | None
    params: dict         # effective parameters (defaults + overrides)

    @property
    def label(self) -> str:
        return self.stem + (f"@{self.variant}" if self.variant else "")


def stages() -> list[str]:
    """Stems of the numbered notebooks, in order (``notebooks/NN_*.ipynb``)."""
    return sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def notebook_defaults(stem: str) -> dict[str, Any]:
    """The notebook's ``parameters`` cell as a dict of Python values."""
    # Parsed with ast rather than papermill.inspect_notebook, whose line regex skips any line holding a
    # second "=" (e.g. in a comment) without an error.
    import nbformat
    nb = nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise SystemExit(f"notebooks/{stem}.ipynb: expected exactly one cell tagged 'parameters', found {len(cells)}")
    out = {}
    for node in ast.parse(cells[0].source).body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            out[target.id] = ast.literal_eval(node.value)
    return out


def load_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise SystemExit(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a mapping of parameter names to values")
    return data


def plan(profile: str, only: list[str] | None = None, outputs_root: str | None = None) -> list[Run]:
    """All runs of a profile, in order, with effective parameters; validates YAML keys."""
    pdir = PARAMS / profile
    if not pdir.is_dir():
        raise SystemExit(f"no profile {profile!r}: {pdir} does not exist (profiles: "
                         f"{sorted(p.name for p in PARAMS.iterdir() if p.is_dir())})")
    runs = []
    for stem in stages():
        if only and stem not in only:
            continue
        defaults = notebook_defaults(stem)
        files = [pdir / f"{stem}.yaml"] + sorted(pdir.glob(f"{stem}@*.yaml"))
        for f in files:
            if f == pdir / f"{stem}.yaml" and not f.exists():
                f = None  # no override file: the notebook's own (tiny) defaults
            overrides = load_yaml(f) if f else {}
            unknown = sorted(set(overrides) - set(defaults))
            if unknown:
                raise SystemExit(f"{f}: unknown parameter(s) {unknown} for notebooks/{stem}.ipynb "
                                 f"(known: {sorted(defaults)})")
            params = {**defaults, **overrides}
            if outputs_root is not None and "outputs_root" in params:
                params["outputs_root"] = outputs_root
            variant = f.stem.split("@", 1)[1] if f and "@" in f.stem else ""
            runs.append(Run(stem, variant, f, params))
    return runs


def run_dir(run: Run) -> Path:
    p = run.params
    return common.stage_dir(run.stem, p.get("run_name", "default"), p.get("outputs_root", "outputs"))


def is_complete(run: Run) -> bool:
    d = run_dir(run)
    if not (d / "metrics.json").exists() or not (d / "params.json").exists():
        return False
    try:
        saved = common.read_json(d / "params.json").get("params", {})
    except (OSError, ValueError):
        return False
    return json.loads(json.dumps(saved)) == json.loads(json.dumps(run.params))


def execute(run: Run, progress: bool = True) -> float:
    """Execute one run with papermill; returns seconds. Raises papermill's error on a failing cell."""
    import papermill as pm
    d = run_dir(run)
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    pm.execute_notebook(str(NOTEBOOKS / f"{run.stem}.ipynb"), str(d / f"{run.stem}.ipynb"),
                        parameters=run.params, cwd=str(NOTEBOOKS), kernel_name="python3",
                        progress_bar=progress, log_output=False)
    seconds = time.time() - t0
    common.write_json(d / "runner.json", {"stage": run.stem, "variant": run.variant, "seconds": round(seconds, 2),
                                          "params_file": str(run.yaml_path) if run.yaml_path else None})
    return seconds


# Parameters that name an upstream run of a fixed stage (its run_name). A run also depends on
# ``model_stage``/``model_run`` (a model saved by that stage), on any string value that is a path through
# ``<stem>/<run_name>`` (e.g. 04_sft@more's ``model: outputs/04_sft/tiny/sft/model``), and on every earlier
# run when it is a BARRIER stage (07_bench reads every 06_eval run it lists by name).
UPSTREAM = {"curation_run": "01_curation", "solver_run": "02_solver", "dataset_run": "03_dataset", "sft_run": "04_sft"}
BARRIER = ("07_bench",)


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def depends_on(run: Run, earlier: Run) -> bool:
    """Whether ``run`` reads what ``earlier`` (a run planned before it) writes, from their parameters.

    A parameter ending in ``_run`` that UPSTREAM does not know makes ``run`` depend on every earlier run:
    a dependency the runner cannot read must not become a race.
    """
    p, name = run.params, earlier.params.get("run_name")
    if run.stem in BARRIER or any(k.endswith("_run") and k not in UPSTREAM and k != "model_run" for k in p):
        return True
    if any(p.get(k) == name and stem == earlier.stem for k, stem in UPSTREAM.items()):
        return True
    stage = str(p.get("model_stage") or "").split("/")[0]
    if stage == earlier.stem and p.get("model_run") == name and not p.get("model"):
        return True
    ref = f"{earlier.stem}/{name}"
    return any(s == ref or s.endswith("/" + ref) or f"{ref}/" in s for s in _strings(list(p.values())))


def dependencies(runs: list[Run]) -> list[list[int]]:
    """For each run, the indices of the earlier runs it depends on (only runs in ``runs``)."""
    return [[j for j in range(i) if depends_on(r, runs[j])] for i, r in enumerate(runs)]


def _execute_in_child(run: Run, threads: int) -> float:
    # Runs in a worker process: the kernel it starts inherits these, so BLAS and torch use `threads`.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    return execute(run, progress=False)


def _report_failure(run: Run, e: Exception) -> None:
    name = type(e).__name__
    detail = f"{getattr(e, 'ename', name)}: {getattr(e, 'evalue', e)}"
    print(f"\nFAILED {run.label} at cell {getattr(e, 'exec_count', None)}: {detail}\n"
          f"executed copy: {run_dir(run) / (run.stem + '.ipynb')}", file=sys.stderr, flush=True)


def _can_skip(run: Run, deps: list[int], state: dict[int, str], force: bool) -> bool:
    """Complete, not forced, and no run it depends on was executed in this invocation."""
    return not force and not any(state[j] == "done" for j in deps) and is_complete(run)


def run_all(profile: str, only: list[str] | None = None, force: bool = False,
            outputs_root: str | None = None, progress: bool = True, jobs: int = 1) -> int:
    """Run a profile's runs (skipping complete ones), ``jobs`` at a time; returns 0, or 1 after a failure.

    A run is redone when it is incomplete, when ``force``, or when a run it depends on was executed in this
    invocation (its inputs changed).
    """
    runs = plan(profile, only, outputs_root)
    deps = dependencies(runs)
    total, n = time.time(), len(runs)
    heads = [f"[{k}/{n}] {r.label:<22} run_name={r.params.get('run_name')!s:<12}" for k, r in enumerate(runs, 1)]
    state: dict[int, str] = {}  # index -> "skipped" | "done" | "failed"
    if jobs <= 1:
        for i, run in enumerate(runs):
            if _can_skip(run, deps[i], state, force):
                print(f"{heads[i]} complete, skipped ({run_dir(run)})", flush=True)
                state[i] = "skipped"
                continue
            print(f"{heads[i]} running ...", flush=True)
            try:
                secs = execute(run, progress)
            except Exception as e:  # papermill's PapermillExecutionError carries the failing cell's traceback
                _report_failure(run, e)
                return 1
            state[i] = "done"
            print(f"{heads[i]} done in {secs:.1f} s", flush=True)
        print(f"profile {profile!r}: {n} run(s) in {time.time() - total:.1f} s", flush=True)
        return 0
    threads = max(1, (os.cpu_count() or 1) // jobs)
    failed = False
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        running: dict = {}
        while True:
            for i, run in enumerate(runs):
                if failed or i in state or any(j not in state or state[j] == "running" for j in deps[i]):
                    continue
                if _can_skip(run, deps[i], state, force):
                    print(f"{heads[i]} complete, skipped ({run_dir(run)})", flush=True)
                    state[i] = "skipped"
                elif len(running) < jobs:
                    print(f"{heads[i]} running ...", flush=True)
                    running[pool.submit(_execute_in_child, run, threads)] = i
                    state[i] = "running"
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                i = running.pop(fut)
                try:
                    secs = fut.result()
                except Exception as e:
                    _report_failure(runs[i], e)
                    state[i], failed = "failed", True
                    continue
                state[i] = "done"
                print(f"{heads[i]} done in {secs:.1f} s", flush=True)
    if failed:
        return 1
    print(f"profile {profile!r}: {n} run(s) in {time.time() - total:.1f} s ({jobs} at a time)", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mllm4d", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "list"):
        s = sub.add_parser(name)
        s.add_argument("--profile", default="tiny", help="folder under params/ (tiny, smoke, paper, ...)")
        s.add_argument("--only", default="", help="comma-separated stems, e.g. 04_sft,05_grpo")
        s.add_argument("--outputs-root", default=None, help="override every run's outputs_root")
        if name == "run":
            s.add_argument("--force", action="store_true", help="rerun complete stages too")
            s.add_argument("--no-progress", action="store_true", help="no per-cell progress bars")
            s.add_argument("--jobs", type=int, default=1, help="runs at once, in dependency order (no progress bars)")
    a = ap.parse_args(argv)
    only = [s for s in a.only.split(",") if s] or None
    if a.cmd == "list":
        runs = plan(a.profile, only, a.outputs_root)
        for run, deps in zip(runs, dependencies(runs)):
            state = "complete" if is_complete(run) else "to run"
            after = ", ".join(f"{runs[j].label}({runs[j].params.get('run_name')})" for j in deps) or "-"
            print(f"{run.label:<22} {state:<9} {run_dir(run)}\n    after: {after}\n    {json.dumps(run.params)}")
        return 0
    return run_all(a.profile, only, a.force, a.outputs_root, progress=not a.no_progress, jobs=a.jobs)
