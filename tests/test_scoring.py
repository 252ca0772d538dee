"""scoring.py: accuracy tables, VLM4D splits, MRA, bootstrap, baselines."""
import math

import numpy as np
import pytest

from mllm4d import scoring


def test_summary_macro_vs_micro():
    # subtask a: 3/4, subtask b: 0/1 -> macro 0.375, micro 0.6
    s = scoring.summary(["a"] * 4 + ["b"], [1, 1, 1, 0, 0], order=["b", "a", "zz"])
    assert list(s["per_subtask"]) == ["b", "a"]
    assert s["overall"] == pytest.approx(0.375) and s["micro"] == pytest.approx(0.6)
    assert s["n"] == 5 and s["n_per_subtask"] == {"b": 1, "a": 4}


def test_summary_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="groups"):
        scoring.summary(["a"], [True, False])


def test_accuracy_of_nothing_is_nan():
    assert math.isnan(scoring.accuracy([]))


@pytest.mark.parametrize("pred,gt,ok", [
    ("A", "A", True), ("a", "A", True), (" B ", {"B"}, True), ("C", {"C", "D"}, True), ("D", {"C", "D"}, True),
    ("", "A", False), ("A", "B", False), (None, "A", False), ("", {""}, False),
])
def test_is_correct(pred, gt, ok):
    assert scoring.is_correct(pred, gt) is ok


def test_gt_letters_int_and_duplicates():
    assert scoring.gt_letters({"A": 4, "B": 3, "C": 1, "D": 2}, 3) == {"B"}
    assert scoring.gt_letters({"A": "4", "B": "3"}, 4) == {"A"}
    dup = {"A": "not sure", "B": "not moving", "C": "away from the camera", "D": "away from the camera"}
    assert scoring.gt_letters(dup, "away from the camera") == {"C", "D"}


@pytest.mark.parametrize("item_id,answer,split,cat", [
    ("validation_922", "left", "real", "exo"), ("validation_923", "left", "real", "ego"),
    ("validation_1", "x", "real", "exo"), ("validation_1371", "x", "real", "ego"),
    ("validation_5", "no", "synthetic", "fp"), ("validation_5", "No dragon there", "synthetic", "fp"),
    ("validation_5", "not moving", "synthetic", "directional"), ("validation_5", "north", "synthetic", "directional"),
    ("validation_5", 3, "synthetic", "directional"),
])
def test_vlm4d_category(item_id, answer, split, cat):
    assert scoring.vlm4d_category(item_id, answer, split) == cat


def test_vlm4d_category_errors():
    with pytest.raises(ValueError, match="split"):
        scoring.vlm4d_category("validation_1", "x", "other")
    with pytest.raises(ValueError, match="trailing number"):
        scoring.vlm4d_category("abc", "x", "real")


def test_vlm4d_table_is_micro_within_splits():
    recs = ([{"split": "real", "id": f"validation_{i}", "answer": "l", "correct": i <= 3} for i in (1, 2, 3, 4)]
            + [{"split": "real", "id": "validation_1000", "answer": "l", "correct": True}]
            + [{"split": "synthetic", "id": "validation_1", "answer": "no x there", "correct": False},
               {"split": "synthetic", "id": "validation_2", "answer": "left", "correct": True}])
    t = scoring.vlm4d_table(recs)
    assert t["real_exo"] == pytest.approx(0.75) and t["real_ego"] == 1.0 and t["real"] == pytest.approx(0.8)
    assert t["synthetic_fp"] == 0.0 and t["synthetic_directional"] == 1.0 and t["synthetic"] == 0.5
    assert t["overall"] == pytest.approx(5 / 7) and t["n_overall"] == 7 and t["n_real_ego"] == 1


@pytest.mark.parametrize("pred,gt,expected", [
    (1.0, 1.0, 1.0), ("1.0 m", 1.0, 1.0), (1.2, 1.0, 0.7), (0.5, 1.0, 0.1), (0.49, 1.0, 0.0),
    (1.05, 1.0, 1.0), (1.06, 1.0, 0.9), ("abc", 2.0, 0.0), (None, 2.0, 0.0), (0.0, 0.0, 1.0), (0.1, 0.0, 0.0),
    (-1.0, -1.0, 1.0), ("1,000", 1000.0, 1.0),
])
def test_mra(pred, gt, expected):
    assert scoring.mra(pred, gt) == pytest.approx(expected)


def test_parse_number():
    assert scoring.parse_number("about 3.5e1 m") == 35.0
    assert scoring.parse_number(".5") == 0.5
    assert scoring.parse_number("nothing") is None
    assert scoring.parse_number(float("inf")) is None


def test_bootstrap_is_reproducible_and_covers_the_mean():
    x = np.r_[np.ones(60), np.zeros(40)]
    a = scoring.bootstrap_ci(x, np.random.default_rng(1), n_boot=500)
    b = scoring.bootstrap_ci(x, np.random.default_rng(1), n_boot=500)
    assert a == b and a[0] < 0.6 < a[1] and 0.4 < a[0] and a[1] < 0.8
    lo, hi = scoring.bootstrap_ci(np.ones(10), np.random.default_rng(0))
    assert lo == hi == 1.0
    assert all(math.isnan(v) for v in scoring.bootstrap_ci([], np.random.default_rng(0)))


def test_bootstrap_macro_is_stratified():
    # one group always right, one always wrong: every stratified resample has macro exactly 0.5
    groups = ["a"] * 5 + ["b"] * 50
    ok = [True] * 5 + [False] * 50
    assert scoring.bootstrap_macro_ci(groups, ok, np.random.default_rng(0), n_boot=200) == (0.5, 0.5)


def test_chance_and_constant_letter():
    assert scoring.chance([4, 4]) == 0.25
    base = scoring.constant_letter_baseline(["A", "A", "A", "B"])
    assert base == {"letter": "A", "accuracy": 0.75}
    # macro over groups: group x is all B (1 item), group y is all A (3 items) -> A and B tie at 0.5; A first
    base = scoring.constant_letter_baseline(["B", "A", "A", "A"], ["x", "y", "y", "y"])
    assert base == {"letter": "A", "accuracy": 0.5}
