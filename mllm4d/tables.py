"""Collect stage ``metrics.json`` files into the paper's tables for our runs (07_bench).

- Table 1 analog: per-subtask accuracy of every evaluated run (MLLM4D-Bench columns, paper Table 1).
- Table 3 analog: base → SFT → SFT + cold start → GRPO ``acc`` → GRPO ``st`` (paper Table 3), plus the
  compute-matched control (SFT continued for GRPO's budget) and the blind-video control.
- Fig. 5 analog: accuracy against the number of training items, when such runs exist.

Inputs are files only (``outputs/06_eval/<run>/metrics.json``, ``outputs/*/*/runner.json``), never notebook
outputs. The paper's printed numbers (Qwen3-VL-8B on 8×H100) are included as *reference rows*, labelled
as such: they are not comparable in scale with a 1 M-parameter model trained for minutes on a CPU.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import common
from .prompts import SUBTASK_NAMES, SUBTASKS

# Paper Table 1 (MLLM4D-Bench accuracy, %) and Table 3 (ablation, Qwen3-VL-8B), as printed
# (docs: ../shared/reference/paper.md §5.3, §5.5). Reference values for display, never used as results.
PAPER_TABLE1 = {
    "Qwen3-VL-8B (paper)": dict(cad=36.0, crd=60.4, oad=33.8, ocad=27.2, ocrd=26.4, ocrdir=28.2, overall=35.3),
    "MLLM-4D Qwen3-VL-8B (paper)": dict(cad=73.4, crd=71.9, oad=76.3, ocad=74.3, ocrd=69.2, ocrdir=70.9, overall=72.7),
}
PAPER_TABLE3 = {  # MLLM4D-Bench avg, VLM4D-Real
    "base": (35.3, 52.1), "sft": (70.1, 59.7), "grpo_acc": (70.5, 61.4), "grpo_st": (72.7, 63.1),
}
TABLE3_ORDER = ("base", "sft", "coldstart", "grpo_acc", "grpo_st", "sft_more", "blind")
TABLE3_LABELS = {
    "base": "Base model (random init)", "sft": "SFT", "coldstart": "SFT + cold start",
    "grpo_acc": "+ GRPO, acc + format", "grpo_st": "+ GRPO, ST-reward", "sft_more": "SFT continued (compute-matched)",
    "blind": "Blind-video control",
}


def parse_runs(specs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``("sft:tiny_sft", …)`` → ``{"sft": "tiny_sft"}``; raises ValueError naming a malformed entry.

    (":" rather than "=": papermill's parameter parser skips lines holding a second "=".)
    """
    out = {}
    for s in specs:
        label, sep, run = s.partition(":")
        if not sep or not label.strip() or not run.strip():
            raise ValueError(f"run spec {s!r}: expected 'label:run_name'")
        out[label.strip()] = run.strip()
    return out


def _frac(x: Any) -> float:
    return float("nan") if x is None else float(x)


def eval_summary(m: dict) -> dict[str, Any]:
    """Normalise one 06_eval ``metrics.json`` into {overall, micro, chance, constant_letter, n, <subtask>, ci}."""
    per = m.get("per_subtask", {})
    ci = m.get("ci95", {})
    out = {"overall": _frac(m.get("overall")), "micro": _frac(m.get("micro")), "chance": _frac(m.get("chance")),
           "constant_letter": _frac(m.get("constant_letter")), "n": int(m.get("n", 0)),
           "ci": {k: list(v) for k, v in ci.items()}}
    for s in SUBTASKS:
        out[s] = _frac(per.get(s, {}).get("accuracy") if isinstance(per.get(s), dict) else per.get(s))
    return out


def collect_evals(outputs_root: str | Path, runs: dict[str, str]) -> dict[str, dict]:
    """Read ``06_eval/<run>/metrics.json`` for each label; labels whose run is missing are reported, not fatal."""
    found, missing = {}, []
    for label, run in runs.items():
        p = common.stage_dir("06_eval", run, outputs_root) / "metrics.json"
        if p.exists():
            found[label] = eval_summary(common.read_json(p))
        else:
            missing.append(f"{label} ({p})")
    if missing:
        print("not evaluated yet:", ", ".join(missing))
    return found


def accuracy_table(evals: dict[str, dict], order: tuple[str, ...] = TABLE3_ORDER, percent: bool = True) -> pd.DataFrame:
    """Rows = runs (in ``order`` first), columns = the six subtasks + overall (macro) + 95 % CI + n."""
    labels = [k for k in order if k in evals] + [k for k in evals if k not in order]
    k = 100.0 if percent else 1.0
    rows = []
    for lab in labels:
        e = evals[lab]
        lo, hi = e["ci"].get("overall", [math.nan, math.nan])
        rows.append({"run": lab, "setting": TABLE3_LABELS.get(lab, lab),
                     **{SUBTASK_NAMES[s]: e[s] * k for s in SUBTASKS},
                     "overall": e["overall"] * k, "ci95_low": lo * k, "ci95_high": hi * k,
                     "chance": e["chance"] * k, "constant_letter": e["constant_letter"] * k, "n": e["n"]})
    return pd.DataFrame(rows).set_index("run")


def interval_table(evals: dict[str, dict], order: tuple[str, ...] = TABLE3_ORDER) -> pd.DataFrame:
    """Rows = runs, columns = the six subtasks + overall: ``"acc [lo, hi]"`` in %, the 06_eval bootstrap 95 % intervals."""
    labels = [k for k in order if k in evals] + [k for k in evals if k not in order]

    def cell(e: dict, key: str) -> str:
        lo, hi = e["ci"].get(key, [math.nan, math.nan])
        return f"{100 * e[key]:.0f} [{100 * lo:.0f}, {100 * hi:.0f}]"
    rows = [{"run": lab, **{SUBTASK_NAMES[s]: cell(evals[lab], s) for s in SUBTASKS},
             "overall": cell(evals[lab], "overall")} for lab in labels]
    return pd.DataFrame(rows).set_index("run")


def separated(evals: dict[str, dict], a: str, b: str) -> list[str]:
    """Subtasks (and ``overall``) where run ``a``'s 95 % interval lies entirely above run ``b``'s (issue 7's test
    of "SFT above base"); [] when either run is missing."""
    if a not in evals or b not in evals:
        return []
    return [k for k in (*SUBTASKS, "overall")
            if evals[a]["ci"].get(k, [math.nan])[0] > evals[b]["ci"].get(k, [math.nan, math.nan])[1]]


def paper_table3() -> pd.DataFrame:
    """The paper's Table 3 (printed numbers, %) for display next to ours."""
    return pd.DataFrame([{"run": k, "setting": TABLE3_LABELS[k] + " (paper, 8B)", "MLLM4D-Bench": v[0],
                          "VLM4D-Real": v[1]} for k, v in PAPER_TABLE3.items()]).set_index("run")


def paper_table1() -> pd.DataFrame:
    rows = [{"run": name, **{SUBTASK_NAMES[s]: v[s] for s in SUBTASKS}, "overall": v["overall"]}
            for name, v in PAPER_TABLE1.items()]
    return pd.DataFrame(rows).set_index("run")


def stage_times(outputs_root: str | Path) -> dict[str, float]:
    """Seconds per executed run, from the runner's ``runner.json`` files: {"04_sft/tiny": 512.3, …}."""
    root = common.resolve(outputs_root)
    out = {}
    for p in sorted(root.glob("*/*/runner.json")):
        out[f"{p.parent.parent.name}/{p.parent.name}"] = float(common.read_json(p).get("seconds", math.nan))
    return out


def to_markdown(df: pd.DataFrame, digits: int = 1) -> str:
    """A GitHub Markdown table (no extra dependency: pandas' to_markdown needs tabulate)."""
    cols = [df.index.name or ""] + list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for idx, *vals in df.itertuples(name=None):  # itertuples keeps each column's dtype (n stays int)
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in vals]
        lines.append("| " + " | ".join([str(idx)] + cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class BenchParams:
    """07_bench parameters (defaults live in the notebook's parameters cell)."""
    outputs_root: str = common.field(help="root of every stage's outputs")
    run_name: str = common.field(help="subdirectory of outputs/07_bench/")
    seed: int = common.field(help="unused by the tables; kept for the params contract", ge=0)
    table3_runs: tuple[str, ...] = common.field(help="'label:06_eval run' for base, sft, coldstart, grpo_acc, grpo_st, sft_more, blind")
    extra_runs: tuple[str, ...] = common.field(help="more 'label:06_eval run' rows for Table 1")
    scaling_runs: tuple[str, ...] = common.field(help="'items:06_eval run' points of the data-scaling curve")


def summary_metrics(evals: dict[str, dict], times: dict[str, float]) -> dict[str, Any]:
    """metrics.json of 07_bench: per label {overall, chance, constant_letter, ci95_overall, <subtask>, ci95} (fractions),
    ``sft_above_base`` / ``sft_above_blind`` (:func:`separated`), stage wall times."""
    out: dict[str, Any] = {}
    for lab, e in evals.items():
        out[lab] = {"overall": e["overall"], "micro": e["micro"], "chance": e["chance"],
                    "constant_letter": e["constant_letter"], "n": e["n"],
                    "ci95_overall": e["ci"].get("overall"), **{s: e[s] for s in SUBTASKS},
                    "ci95": {s: e["ci"].get(s) for s in SUBTASKS}}
    out["sft_above_base"] = separated(evals, "sft", "base")
    out["sft_above_blind"] = separated(evals, "sft", "blind")
    out["stage_seconds"] = times
    out["total_seconds"] = round(sum(v for v in times.values() if math.isfinite(v)), 1)
    return out


def scaling_points(outputs_root: str | Path, specs: tuple[str, ...] | list[str]) -> pd.DataFrame:
    """``("1000:tiny_n1k", …)`` → DataFrame(items, overall %) for runs that exist."""
    rows = []
    for items, run in parse_runs(specs).items():
        p = common.stage_dir("06_eval", run, outputs_root) / "metrics.json"
        if p.exists():
            rows.append({"items": int(items), "overall": 100 * eval_summary(common.read_json(p))["overall"]})
    return pd.DataFrame(rows, columns=["items", "overall"])
