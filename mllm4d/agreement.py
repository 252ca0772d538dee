"""Label agreement: does curated 4D metadata give the same answers as exact ground truth? (stereo.md §4.4, §7.2.5)

The solver runs on *the same queries* — every eligible frame pair (j − i ≥ ``min_frame_gap``) × every object of
every clip, for all 7 scenarios — once on the curated metadata and once on the GT metadata of the same clips, and
the answers are compared where both sides emit the question:

- categorical (crd, ocrd, ocrdir-lateral, ocrdir-longitudinal): ``label_agreement_<s>`` = P(curated label == GT
  label | both emitted). ``label_agreement_rawgt_<s>`` also scores curated questions whose GT value fell inside the
  ambiguity band, against the GT τ rule without the band (the dataset's real label noise: the band is only
  applied on the curated side in production).
- numeric (cad, oad, ocad): ``numeric_relerr_median_<s>`` / ``_p90_<s>`` = |v_c − v_g| / v_g, and
  ``label_agreement_<s>`` = P(|v_c − v_g| < gap(v_c)/2) — "MCQ-safe": every distractor is at least
  gap = max(min_gap_rel·v_c, min_gap_abs) from the curated answer, so then the GT value is still closest to the
  keyed option (before 1-decimal rounding).
- ``emitted_both_<s>``, ``emitted_only_curated_<s>`` (curated asks, GT suppresses: GT in the band, below a
  minimum, or its observation is unusable), ``emitted_only_gt_<s>`` (e.g. curated skipped oad as ``depth_uncertain``), and ``n_queries_<s>``.

Group keys ``ocrdir`` (both variants), ``categorical`` and ``all`` (every slice, numeric ones by MCQ-safety) are
the **mean over their slices** — the datasets balance slices (paper Fig. 7), so this is the expected share of
correctly keyed items; ``*_pooled`` pools the queries instead (dominated by the object slices). No file I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import common, solver
from .solver import CAMERA_ONLY, NUMERIC, SCENARIOS, SolverConfig

F = common.field


@dataclass(frozen=True)
class SolverParams:
    """Parameters of notebooks/02_solver.ipynb (its parameters cell holds the defaults; docs/SOLVER.md).

    The solver fields are ``solver.SolverConfig``'s (``solver.config_from(params)``); 03_dataset reads them back
    from this stage's ``params.json``, so thresholds are validated here before datasets use them.
    """

    outputs_root: str = F(help="root folder of all stage outputs")
    run_name: str = F(help="run folder name under outputs/02_solver/")
    seed: int = F(help="seed of frame-pair sampling and example QA items")
    curation_run: str = F(help="01_curation run to read (meta/ and gt/)")
    max_clips: int = F(help="use at most this many curated clips (0 = all)", ge=0)
    example_clip: int = F(help="index of the clip that illustrates the formulas", ge=0)
    min_frame_gap: int = F(help="questions use frames j - i >= this", ge=1)
    pairs_per_clip: int = F(help="frame pairs sampled per clip", ge=1)
    min_visible_frac: float = F(help="skip observations less visible than this", ge=0, le=1)
    min_points: int = F(help="points needed for a nearest-point distance", ge=1)
    nearest_percentile: float = F(help="'nearest point' = this percentile of point distances", ge=0, le=100)
    min_camera_move: float = F(help="cad: minimum camera displacement, m", ge=0)
    min_object_move: float = F(help="oad: minimum object displacement, m", ge=0)
    min_distance: float = F(help="ocad: minimum distance, m", ge=0)
    tau_crd: float = F(help="crd: threshold on the dominant displacement component, m", gt=0)
    crd_dominance: float = F(help="crd: largest / second-largest component >= this", ge=1)
    crd_min_straightness: float = F(help="crd: net displacement / camera path length >= this", ge=0, le=1)
    tau_ocrd: float = F(help="ocrd: threshold on the change of nearest distance, m", gt=0)
    tau_lateral: float = F(help="ocrdir lateral: threshold on dx in camera i, m", gt=0)
    tau_longitudinal: float = F(help="ocrdir longitudinal: threshold on dz in camera i, m", gt=0)
    band_lo: float = F(help="ambiguity band lower edge, multiple of tau", gt=0, le=1)
    band_hi: float = F(help="ambiguity band upper edge, multiple of tau", ge=1)
    oad_disparity_err_px: float = F(help="oad: assumed disparity error of a curated centroid, px (0 = no check)", ge=0)
    oad_rel_tolerance: float = F(help="oad: skip if that error moves the answer by > this x the answer", gt=0)
    option_order: str = F(help="QA option order", choices=("shuffled", "canonical"))
    distractor_lo: float = F(help="numeric distractors >= this x truth", gt=0, le=1)
    distractor_hi: float = F(help="numeric distractors <= this x truth", ge=1)
    min_gap_rel: float = F(help="numeric options differ by >= this x truth", ge=0)
    min_gap_abs: float = F(help="numeric options differ by >= this, m", ge=0)
    decimals: int = F(help="numeric option rounding", ge=0, le=3)
    cap_per_clip: int = F(help="example QA items per clip", ge=1)
    throughput_clips: int = F(help="GT clips replicated to time solver + QA per item (0 = skip)", ge=0)


@dataclass(frozen=True, eq=False)
class Comparison:
    """Per-scenario arrays over Q real queries (flattened pairs × objects): ``emit_c``/``emit_g`` bool,
    ``label_c``/``label_g``/``raw_g`` int (−1 = none), ``value_c``/``value_g`` float metres (signed measure for
    categorical scenarios), ``clip`` int (index into the input lists), ``i``/``j``/``obj`` int."""

    data: dict[str, dict[str, np.ndarray]]


def _as_list(x: Any) -> list:
    return list(x) if isinstance(x, (list, tuple)) else [x]


def compare(curated: Any, gt: Any, cfg: SolverConfig) -> Comparison:
    """Run the solver on every eligible query of paired clips (ClipMeta or equal-length sequences of them)."""
    cur, ref = _as_list(curated), _as_list(gt)
    if len(cur) != len(ref):
        raise ValueError(f"agreement: {len(cur)} curated clips but {len(ref)} GT clips")
    for c, g in zip(cur, ref):
        if (c.name, c.num_frames, c.num_objects) != (g.name, g.num_frames, g.num_objects):
            raise ValueError(f"agreement: curated {c.name} (T={c.num_frames}, M={c.num_objects}) does not match "
                             f"GT {g.name} (T={g.num_frames}, M={g.num_objects})")
    if not cur:
        empty = {f: np.zeros(0, bool if f.startswith("emit") else np.int64) for f in ("emit_c", "emit_g", "label_c",
                 "label_g", "raw_g", "clip", "i", "j", "obj")} | {"value_c": np.zeros(0), "value_g": np.zeros(0)}
        return Comparison(data={k: dict(empty) for k in SCENARIOS})
    bs, Is, Js = [], [], []
    for k, m in enumerate(cur):
        I, J = solver.eligible_pairs(m.num_frames, cfg.min_frame_gap)
        bs.append(np.full(len(I), k)), Is.append(I), Js.append(J)
    b, I, J = (np.concatenate(x).astype(np.int64) if x else np.zeros(0, np.int64) for x in (bs, Is, Js))
    ev_c = solver.evaluate_stack(solver.stack(cur), b, I, J, cfg)
    ev_g = solver.evaluate_stack(solver.stack(ref), b, I, J, cfg)
    data = {}
    for key in SCENARIOS:
        cols = 1 if key in CAMERA_ONLY else ev_c.real.shape[1]
        real = np.ones((len(b), 1), bool) if key in CAMERA_ONLY else ev_c.real
        obj = np.broadcast_to(np.arange(cols) if key not in CAMERA_ONLY else np.array([-1]), real.shape)
        sel = lambda a: np.broadcast_to(a, real.shape)[real]  # noqa: E731  (flatten real queries)
        data[key] = {"emit_c": sel(ev_c.skip[key] == 0), "emit_g": sel(ev_g.skip[key] == 0),
                     "label_c": sel(ev_c.label[key]), "label_g": sel(ev_g.label[key]),
                     "raw_g": sel(ev_g.raw_label[key]), "value_c": sel(ev_c.value[key]),
                     "value_g": sel(ev_g.value[key]), "clip": sel(b[:, None]), "i": sel(I[:, None]),
                     "j": sel(J[:, None]), "obj": sel(obj)}
    return Comparison(data=data)


def _stats(d: dict[str, np.ndarray], key: str, gap_rel: float, gap_abs: float) -> dict[str, Any]:
    both = d["emit_c"] & d["emit_g"]
    out: dict[str, Any] = {"n": int(len(both)), "both": int(both.sum()),
                           "only_c": int((d["emit_c"] & ~d["emit_g"]).sum()),
                           "only_g": int((d["emit_g"] & ~d["emit_c"]).sum())}
    if key in NUMERIC:
        vc, vg = d["value_c"][both], d["value_g"][both]
        out["relerr"] = np.abs(vc - vg) / np.maximum(vg, 1e-9)
        out["agree"] = np.abs(vc - vg) < 0.5 * np.maximum(gap_rel * vc, gap_abs)
        out["agree_raw"] = out["agree"]
    else:
        out["agree"] = d["label_c"][both] == d["label_g"][both]
        scored = d["emit_c"] & (d["raw_g"] >= 0)
        out["agree_raw"] = d["label_c"][scored] == d["raw_g"][scored]
    return out


def _frac(x: np.ndarray) -> float | None:
    return float(np.mean(x)) if len(x) else None


def summarize(comp: Comparison, min_gap_rel: float, min_gap_abs: float) -> dict[str, Any]:
    """Flat metrics dict (module docstring) from a ``Comparison``."""
    per = {k: _stats(d, k, min_gap_rel, min_gap_abs) for k, d in comp.data.items()}
    groups = {k: [k] for k in SCENARIOS} | {"ocrdir": ["ocrdir-lateral", "ocrdir-longitudinal"],
                                           "all": list(SCENARIOS),
                                           "categorical": [k for k in SCENARIOS if k not in NUMERIC]}
    out: dict[str, Any] = {}
    for g, keys in groups.items():
        for name, field in (("label_agreement", "agree"), ("label_agreement_rawgt", "agree_raw")):
            pooled = _frac(np.concatenate([per[k][field] for k in keys]))
            if len(keys) > 1:  # datasets balance the slices, so a pooled mean would overweight common ones
                fr = [_frac(per[k][field]) for k in keys]
                out[f"{name}_{g}"] = float(np.mean([f for f in fr if f is not None])) if any(
                    f is not None for f in fr) else None
                out[f"{name}_{g}_pooled"] = pooled
            else:
                out[f"{name}_{g}"] = pooled
        for name, field in (("n_queries", "n"), ("emitted_both", "both"), ("emitted_only_curated", "only_c"),
                            ("emitted_only_gt", "only_g")):
            out[f"{name}_{g}"] = int(sum(per[k][field] for k in keys))
    for k in sorted(NUMERIC):
        e = per[k]["relerr"]
        out[f"numeric_relerr_median_{k}"] = float(np.median(e)) if len(e) else None
        out[f"numeric_relerr_p90_{k}"] = float(np.percentile(e, 90)) if len(e) else None
    return out


def agreement(curated: Any, gt: Any, cfg: SolverConfig, *, min_gap_rel: float, min_gap_abs: float) -> dict[str, Any]:
    """Label agreement of curated vs GT metadata (single clips or equal-length sequences), as a flat dict.

    min_gap_rel / min_gap_abs: the QA distractor spacing (qa.QAConfig) that defines numeric MCQ-safety.
    """
    return summarize(compare(curated, gt, cfg), min_gap_rel, min_gap_abs)


def disagreements(comp: Comparison, key: str, names: Sequence[str], *, min_gap_rel: float,
                  min_gap_abs: float) -> list[dict[str, Any]]:
    """The both-emitted queries of scenario ``key`` whose answers differ, as rows (for inspection tables)."""
    d = comp.data[key]
    both = d["emit_c"] & d["emit_g"]
    if key in NUMERIC:
        safe = np.abs(d["value_c"] - d["value_g"]) < 0.5 * np.maximum(min_gap_rel * d["value_c"], min_gap_abs)
        bad = both & ~safe
    else:
        bad = both & (d["label_c"] != d["label_g"])
    return [{"clip": names[int(d["clip"][q])], "i": int(d["i"][q]), "j": int(d["j"][q]), "obj": int(d["obj"][q]),
             "curated": float(d["value_c"][q]), "gt": float(d["value_g"][q])} for q in np.flatnonzero(bad)]
