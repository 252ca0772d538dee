"""Shared plumbing: repository paths, the notebook parameter contract, seeding and atomic file I/O.

Every notebook follows the same contract (README, "Parameters"):

1. its single cell tagged ``parameters`` holds flat, commented literals (the tiny-profile defaults);
2. the setup cell calls ``cfg = common.collect(<Stage>Params, globals())``, which validates the names and
   values into a frozen dataclass and fails loudly on an unknown name, a wrong type or a bad choice
   (papermill itself only *warns* on unknown ``-p`` names);
3. ``run_dir = common.start_run("<NN_stage>", cfg)`` seeds everything, creates
   ``<outputs_root>/<NN_stage>/<run_name>/`` and writes ``params.json`` there (git sha, seed, versions).

Params dataclasses declare *types and constraints only* (no defaults): the notebook's parameters cell is
the one source of default values, and ``params/<profile>/<NN_stage>.yaml`` files hold overrides.
Constraints live in field metadata: ``choices`` (allowed values), ``ge``/``gt``/``le`` (numeric bounds).

Paths: ``outputs_root`` is resolved against the repository root, whatever the working directory, so
``cd notebooks && papermill 05_grpo.ipynb out.ipynb -p reward st`` writes to ``<repo>/outputs/05_grpo/``.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import random
import subprocess
import sys
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, Iterable

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent

# Names IPython/papermill put in a kernel's namespace that are not parameters.
_KERNEL_NAMES = {"In", "Out", "get_ipython", "exit", "quit", "open"}


class ParamError(ValueError):
    """A notebook/CLI parameter is unknown, missing, of the wrong type or out of range."""


# ----------------------------------------------------------------------------------------------------------
# Paths
# ----------------------------------------------------------------------------------------------------------
def resolve(path: str | os.PathLike) -> Path:
    """Absolute path; relative paths are taken against the repository root (not the working directory)."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else REPO_ROOT / p


def stage_dir(stage: str, run_name: str, outputs_root: str | os.PathLike = "outputs") -> Path:
    """``<outputs_root>/<stage>/<run_name>`` (absolute). Does not create it."""
    return resolve(outputs_root) / stage / str(run_name)


def upstream_dir(stage: str, run_name: str, outputs_root: str | os.PathLike = "outputs",
                 require: Iterable[str] = ("metrics.json",)) -> Path:
    """The run directory of an upstream stage, checked to exist and to hold ``require`` files.

    Raises FileNotFoundError naming the missing file and the notebook that produces it.
    """
    d = stage_dir(stage, run_name, outputs_root)
    for name in require:
        if not (d / name).exists():
            raise FileNotFoundError(
                f"{d / name} is missing: run notebooks/{stage}.ipynb with run_name={run_name!r} first "
                f"(or `python -m mllm4d run --profile tiny --only {stage}`)")
    return d


# ----------------------------------------------------------------------------------------------------------
# Parameter contract
# ----------------------------------------------------------------------------------------------------------
def _type_ok(value: Any, tp: Any) -> tuple[bool, Any]:
    """Check ``value`` against annotation ``tp``; returns (ok, possibly-coerced value).

    Coercions are the lossless ones papermill/YAML make necessary: int -> float, list -> tuple.
    """
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        for a in args:
            ok, v = _type_ok(value, a)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, (bool, np.bool_)), bool(value) if isinstance(value, np.bool_) else value
    if tp is int:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if tp is str:
        return isinstance(value, str), value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False, value
        inner = args[0] if args else Any
        out = []
        for item in value:
            ok, v = _type_ok(item, inner)
            if not ok:
                return False, value
            out.append(v)
        return True, tuple(out)  # frozen dataclass: store sequences as tuples
    if origin is dict or tp is dict:
        return isinstance(value, dict), value
    return isinstance(value, tp), value


def _describe(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def validate(cls: type, values: dict[str, Any], source: str = "parameters") -> Any:
    """Build the frozen dataclass ``cls`` from ``values``; raise ParamError naming any bad field."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ParamError(f"{source}: unknown parameter(s) {unknown} for {cls.__name__}; "
                         f"known: {sorted(fields)}")
    missing = sorted(set(fields) - set(values))
    if missing:
        raise ParamError(f"{source}: missing parameter(s) {missing} for {cls.__name__}")
    clean = {}
    for name, f in fields.items():
        v = values[name]
        ok, v = _type_ok(v, hints[name])
        if not ok:
            hint = " (papermill types '-p x 007' as int; pass strings with -r)" if hints[name] is str else ""
            raise ParamError(f"{source}: parameter {name!r} must be {_describe(hints[name])}, "
                             f"got {type(values[name]).__name__} {values[name]!r}{hint}")
        meta = f.metadata
        if "choices" in meta:
            bad = [x for x in (v if isinstance(v, tuple) else (v,)) if x not in meta["choices"]]
            if bad:
                raise ParamError(f"{source}: parameter {name!r}={values[name]!r} is not one of "
                                 f"{list(meta['choices'])}")
        for key, op, word in (("ge", float.__ge__, ">="), ("gt", float.__gt__, ">"), ("le", float.__le__, "<=")):
            if key in meta and v is not None and not op(float(v), float(meta[key])):
                raise ParamError(f"{source}: parameter {name!r}={v!r} must be {word} {meta[key]}")
        clean[name] = v
    return cls(**clean)


def collect(cls: type, namespace: dict[str, Any]) -> Any:
    """Validate a notebook's parameters (its globals) into the frozen dataclass ``cls``.

    Call it in the setup cell, right after the parameters cell: every public, non-module, non-callable
    global at that point is a parameter, so a misspelt ``-p rewrad st`` is caught here by name.
    """
    values = {k: v for k, v in namespace.items()
              if not k.startswith("_") and k not in _KERNEL_NAMES
              and not isinstance(v, types.ModuleType) and not callable(v)}
    return validate(cls, values, source="notebook parameters")


def field(*, help: str = "", **constraints: Any) -> Any:
    """Dataclass field with a help text and constraints (``choices``, ``ge``, ``gt``, ``le``); no default."""
    return dataclasses.field(metadata={"help": help, **constraints})


def as_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a params dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=list))


# ----------------------------------------------------------------------------------------------------------
# Runs, seeding, provenance
# ----------------------------------------------------------------------------------------------------------
def seed_everything(seed: int) -> np.random.Generator:
    """Seed python, numpy and torch (if imported); return a fresh ``np.random.Generator(seed)``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        import torch
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def git_sha() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        sha = out.stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions(names: Iterable[str] = ("numpy", "torch", "transformers", "trl", "peft", "accelerate",
                                             "datasets", "opencv-contrib-python-headless", "papermill")) -> dict:
    from importlib import metadata
    out = {"python": sys.version.split()[0]}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


def start_run(stage: str, cfg: Any) -> Path:
    """Seed, create ``<outputs_root>/<stage>/<run_name>/`` and write ``params.json`` there.

    ``cfg`` must have ``run_name``, ``seed`` and ``outputs_root`` fields.
    """
    seed_everything(cfg.seed)
    d = stage_dir(stage, cfg.run_name, cfg.outputs_root)
    d.mkdir(parents=True, exist_ok=True)
    write_json(d / "params.json", {
        "stage": stage, "params": as_dict(cfg), "seed": cfg.seed, "git_sha": git_sha(),
        "versions": package_versions(), "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
    })
    return d


# ----------------------------------------------------------------------------------------------------------
# Atomic file I/O (write to a temp file in the same folder, then rename: readers never see half a file)
# ----------------------------------------------------------------------------------------------------------
def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=_json_default, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def wait_for_json(path: str | os.PathLike, expected: Any, timeout_s: float = 600.0) -> None:
    """Block until ``path`` holds ``expected`` (multi-GPU ranks > 0 waiting for rank 0 to claim a folder)."""
    import time
    deadline = time.time() + timeout_s
    while not (Path(path).exists() and read_json(path) == expected):
        if time.time() > deadline:
            raise TimeoutError(f"{path}: rank 0 did not write the expected claim within {timeout_s:.0f} s")
        time.sleep(1)


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> Path:
    text = "".join(json.dumps(r, default=_json_default, ensure_ascii=False) + "\n" for r in rows)
    return atomic_write_text(path, text)


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """Read a JSONL file; a truncated last line (a killed writer) is dropped, any other bad line raises."""
    rows = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:  # no trailing newline: the writer died mid-line
                break
            raise ValueError(f"{path}: line {i + 1} is not valid JSON ({e})") from None
    return rows


def append_jsonl(path: str | os.PathLike, row: Any) -> None:
    """Append one row and flush (for resumable logs such as predictions.jsonl)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, default=_json_default, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_metrics(run_dir: str | os.PathLike, metrics: dict[str, Any]) -> Path:
    """Write ``metrics.json``, the file that marks a stage run complete (the runner and 07_bench read it)."""
    return write_json(Path(run_dir) / "metrics.json", metrics)
