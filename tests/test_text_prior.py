"""benchmarks/text_prior.py: the text-only baseline finds a planted word prior and stays at chance without one."""
import importlib.util
from pathlib import Path

import numpy as np

SPEC = importlib.util.spec_from_file_location("text_prior", Path(__file__).parents[1] / "benchmarks" / "text_prior.py")
tp = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(tp)
LABELS = ["Closer", "Farther", "Not moving"]


def rows(n, rng, leak):
    out = []
    for k in range(n):
        y = int(rng.integers(3))
        word = ["pillar", "ball", "drum"][y] if leak else ["pillar", "ball", "drum"][int(rng.integers(3))]
        opts = dict(zip("ABCD", [LABELS[q] for q in rng.permutation(3)] + ["Cannot be determined from the video"]))
        ans = next(k for k, v in opts.items() if v == LABELS[y])
        out.append({"subtask": "ocrd", "question": f"Between frame 2 and frame 20, does the red {word} get closer?",
                    "options": opts, "answer": ans, "frame_i": 2, "frame_j": 20})
    return out


def test_planted_word_prior_is_found_and_absent_prior_is_chance():
    rng = np.random.default_rng(0)
    assert tp.evaluate(rows(300, rng, True), rows(300, rng, True))["ocrd"]["accuracy"] > 0.95
    acc = tp.evaluate(rows(300, rng, False), rows(600, rng, False))["ocrd"]["accuracy"]
    assert 0.25 < acc < 0.42   # three real labels: chance 1/3


def test_numeric_options_are_keyed_by_rank_and_value():
    row = {"subtask": "cad", "options": {"A": "0.8", "B": "0.34", "C": "0.58", "D": "0.44"}}
    assert [tp.answer_key(row, k) for k in "ABCD"] == ["rank3:0.8", "rank0:0.34", "rank2:0.58", "rank1:0.44"]
