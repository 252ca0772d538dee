"""Figures for the benchmark tables (07_bench). Functions return figures; callers save them.

Inputs are the DataFrames of ``tables.accuracy_table`` (percent). Matplotlib gives the PNGs used in the
README and in CI (no browser needed); plotly gives interactive HTML (``include_plotlyjs=True``, offline).
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from . import common  # noqa: E402
from .prompts import SUBTASK_NAMES, SUBTASKS  # noqa: E402


def accuracy_bars(df: pd.DataFrame, title: str = "MLLM4D-Bench (synthetic, held-out clips)") -> plt.Figure:
    """Grouped bars: per-subtask accuracy per run, overall with its 95 % CI, chance and constant-letter lines."""
    cols = [SUBTASK_NAMES[s] for s in SUBTASKS] + ["overall"]
    fig, ax = plt.subplots(figsize=(12, 4.2))
    width = 0.8 / max(len(df), 1)
    x = np.arange(len(cols))
    for k, (run, row) in enumerate(df.iterrows()):
        vals = row[cols].to_numpy(float)
        bars = ax.bar(x + k * width, vals, width, label=row.get("setting", run))
        err = np.clip(np.array([[vals[-1] - row["ci95_low"]], [row["ci95_high"] - vals[-1]]]), 0, None)
        if np.all(np.isfinite(err)):
            ax.errorbar(x[-1] + k * width, vals[-1], yerr=err, color="k", capsize=3, lw=1)
        bars[-1].set_edgecolor("k")
    if len(df):
        ax.axhline(float(df["chance"].iloc[0]), color="grey", ls="--", lw=1, label="chance")
        ax.axhline(float(df["constant_letter"].max()), color="red", ls=":", lw=1, label="constant letter (best)")
    ax.set_xticks(x + width * (len(df) - 1) / 2, cols, rotation=15, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


def accuracy_bars_plotly(df: pd.DataFrame, title: str = "MLLM4D-Bench (synthetic, held-out clips)"):
    """The same figure, interactive (hover shows n and the CI)."""
    import plotly.graph_objects as go
    cols = [SUBTASK_NAMES[s] for s in SUBTASKS] + ["overall"]
    fig = go.Figure()
    for run, row in df.iterrows():
        fig.add_bar(name=str(row.get("setting", run)), x=cols, y=row[cols].to_numpy(float),
                    hovertemplate="%{x}: %{y:.1f}%<br>n=" + str(row["n"]) + "<extra>" + str(run) + "</extra>")
    if len(df):
        fig.add_hline(y=float(df["chance"].iloc[0]), line_dash="dash", annotation_text="chance")
    fig.update_layout(barmode="group", title=title, yaxis_title="accuracy (%)", yaxis_range=[0, 100])
    return fig


def scaling_curve(points: pd.DataFrame) -> plt.Figure:
    """Fig. 5 analog: ``points`` has columns ``items`` and ``overall`` (and optional ``series``)."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, g in points.groupby(points.get("series", pd.Series("ours", index=points.index))):
        g = g.sort_values("items")
        ax.plot(g["items"], g["overall"], "o-", label=str(name))
    ax.set_xscale("log")
    ax.set_xlabel("training QA items")
    ax.set_ylabel("overall accuracy (%)")
    ax.legend()
    fig.tight_layout()
    return fig


def save_png(fig: plt.Figure, path: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure atomically and close it."""
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return common.atomic_write_bytes(path, buf.getvalue())


def save_html(fig, path: str | Path) -> Path:
    """Save a plotly figure as standalone HTML (plotly.js inlined, so it opens offline)."""
    return common.atomic_write_text(path, fig.to_html(include_plotlyjs=True, full_html=True))
