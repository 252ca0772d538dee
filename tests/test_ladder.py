"""ladder.py + the qa ladder path: fixed rungs, nearest-rung answers, boundary skips, and no text prior."""
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from mllm4d import ladder, qa, selection
from mllm4d.solver import Relation

LADDERS = {"cad": (0.34, 0.45, 0.58, 0.85), "oad": (0.57, 0.68, 0.84, 1.1), "ocad": (2.63, 3.41, 4.12, 4.92)}
QCFG = qa.QAConfig(option_order="shuffled", distractor_lo=0.25, distractor_hi=1.75, min_gap_rel=0.15,
                   min_gap_abs=0.1, decimals=2, numeric_mode="ladder", ladders=tuple(LADDERS.items()),
                   ladder_margin=0.05)
META = SimpleNamespace(num_frames=32, obj_names=("red box",), obj_descriptions=("the red box",))


def rel(sub, value, i=3, j=26):
    cam = ((0.0, 0.0, 0.0), (0.1, 0.0, 1.2))
    return Relation(clip_id="c1", subtask=sub, variant="", frame_i=i, frame_j=j, obj=-1 if sub == "cad" else 0,
                    value=value, label=None, measure=value, camera_center=cam if sub != "oad" else (None, None),
                    object_center=(None, None) if sub == "cad" else ((0, 0, 3.0), (0, 0, 3.5)))


def test_rung_is_nearest_in_ratio_and_boundaries_are_skipped():
    r = LADDERS["cad"]
    assert ladder.rung(np.array([0.1, 0.34, 0.40, 0.5, 0.7, 5.0]), r).tolist() == [0, 0, 1, 1, 2, 3]
    edge = float(np.sqrt(r[0] * r[1]))
    assert ladder.unambiguous(np.array([edge, edge * 1.02, edge * 1.06, 0.34]), r, 0.05).tolist() == \
        [False, False, True, True]


def test_check_rejects_bad_ladders():
    with pytest.raises(ValueError, match="'oad'"):
        ladder.check({**LADDERS, "oad": (0.5, 0.6, 0.6, 1.0)}, 2)
    with pytest.raises(ValueError, match="'cad'"):
        ladder.check({**LADDERS, "cad": (0.3, 0.5)}, 2)
    with pytest.raises(ValueError, match="distinct"):
        ladder.check({**LADDERS, "cad": (0.31, 0.34, 0.58, 0.85)}, 1)   # 0.31 and 0.34 merge at 1 decimal
    with pytest.raises(ValueError):
        dataclasses.replace(QCFG, ladders=(("cad", (0.3, 0.2, 0.5, 0.9)),))


def test_fit_puts_a_quarter_of_the_values_on_each_rung():
    rng = np.random.default_rng(0)
    vals = {s: np.exp(rng.normal(np.log(m), 0.3, 4000)) for s, m in (("cad", 0.5), ("oad", 0.8), ("ocad", 3.5))}
    fitted = ladder.fit(vals, 2)
    for s, r in fitted.items():
        share = np.bincount(ladder.rung(vals[s], r), minlength=4) / len(vals[s])
        assert np.all(np.abs(share - 0.25) < 0.01), (s, share)
        ladder.check(fitted, 2)


def test_ladder_rows_offer_the_same_four_options_and_the_nearest_is_the_answer():
    rng = np.random.default_rng(1)
    values = rng.uniform(0.2, 1.2, 300)
    rows = qa.make_items([rel("cad", float(v), j=4 + k % 27) for k, v in enumerate(values)], META, rng, QCFG)
    keep = ladder.unambiguous(values, LADDERS["cad"], 0.05)
    assert len(rows) == int(keep.sum()) and len(rows) < len(values)     # boundary values are not asked
    for r, v in zip(rows, values[keep]):
        assert sorted(r["options"].values()) == ["0.34", "0.45", "0.58", "0.85"]
        assert r["options"][r["answer"]] == f"{LADDERS['cad'][int(ladder.rung(np.array([v]), LADDERS['cad'])[0])]:.2f}"
    assert {selection.answer_label(r) for r in rows} == {"rank:0", "rank:1", "rank:2", "rank:3"}


def test_make_item_refuses_a_boundary_value():
    edge = float(np.sqrt(0.34 * 0.45))
    with pytest.raises(ValueError, match="ladder margin"):
        qa.make_item(rel("cad", edge), META, np.random.default_rng(0), QCFG)


def test_balanced_ladder_bench_leaves_a_text_only_rule_at_chance():
    # any rule that sees only the options (here: always the second-smallest value) scores 1/4 on a rank-balanced
    # selection, whatever the values' distribution (skewed here towards the small rungs)
    rng = np.random.default_rng(2)
    values = np.exp(rng.normal(np.log(0.4), 0.35, 2000))
    rows = qa.make_items([rel("cad", float(v), j=4 + k % 27) for k, v in enumerate(values)], META, rng, QCFG)
    pool = [{"row": r} for r in rows]
    picked = selection.take(pool, selection.balanced_size(pool), rng, balance=True)
    second = [sorted(p["row"]["options"], key=lambda k: float(p["row"]["options"][k]))[1] for p in picked]
    assert np.mean([s == p["row"]["answer"] for s, p in zip(second, picked)]) == pytest.approx(0.25)


def test_relative_mode_is_unchanged_by_the_new_fields():
    base = qa.QAConfig("shuffled", 0.25, 1.75, 0.15, 0.1, 1)
    assert qa.config_from({f.name: getattr(base, f.name) for f in dataclasses.fields(base)
                           if f.name in ("option_order", "distractor_lo", "distractor_hi", "min_gap_rel",
                                         "min_gap_abs", "decimals")}) == base
    r = [rel("cad", 0.5)]
    assert qa.askable(r, base) is r
