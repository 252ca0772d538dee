"""Split selection (mllm4d/selection.py): SFT slices, benchmark balance, RFT helpers, answer-label balancing."""
import numpy as np
import pytest

from mllm4d import cot, dataset, selection


def _item(sub, variant="", cam=0.0, obj=None, k=0):
    return {"row": {"id": f"{sub}{variant}{k}", "subtask": sub, "variant": variant, "clip_id": "c"},
            "motion": {"camera": cam, "object": obj}}


@pytest.mark.parametrize("total", [0, 1, 7, 100, 30000])
def test_allocate_fig8(total):
    got = selection.allocate(total, dataset.RFT_MIX_FIG8)
    assert sum(got) == total
    share = np.array(dataset.RFT_MIX_FIG8) / sum(dataset.RFT_MIX_FIG8)
    assert np.all(np.abs(np.array(got) - total * share) < 1)


def test_selection_helpers():
    rng = np.random.default_rng(0)
    pool = [_item(s, v, k=k) for s, v in [("cad", ""), ("crd", ""), ("oad", ""), ("ocad", ""), ("ocrd", ""),
                                          ("ocrdir", "lateral"), ("ocrdir", "longitudinal")] for k in range(5)]
    sft = selection.select_sft(pool + [_item("cad", k=9)], 3, rng)
    assert [selection._scen(i) for i in sft] == [s for s in cot.SCENARIOS for _ in range(3)]
    bench = selection.select_bench(pool + [_item("cad", k=k) for k in range(10, 20)], 9, rng)
    assert [i["row"]["subtask"] for i in bench].count("cad") == 5  # balanced at the smallest pool (ocrdir: 10)
    assert selection.significant_motion(_item("oad", obj=0.5), 0.3)
    assert not selection.significant_motion(_item("oad", cam=0.1, obj=0.2), 0.3)
    assert selection.significant_motion(_item("cad", cam=0.3), 0.3)


def _numeric(rank, k, subtask="cad"):
    vals = ["0.3", "0.5", "0.8", "1.2"]
    row = {"id": f"{subtask}-{rank}-{k}", "subtask": subtask, "variant": "", "answer": "C", "frame_i": 0, "frame_j": 20,
           "options": {"A": vals[(rank + 1) % 4], "B": vals[(rank + 2) % 4], "C": vals[rank], "D": vals[(rank + 3) % 4]}}
    return {"row": row, "motion": {"camera": 0.5, "object": None}}


def _labelled(label, k, subtask="ocrd", variant=""):
    row = {"id": f"{subtask}-{label}-{k}", "subtask": subtask, "variant": variant, "answer": "B", "frame_i": 0,
           "frame_j": 20,
           "options": {"A": "x", "B": label, "C": "y", "D": "z"}}
    return {"row": row, "motion": {"camera": 0.0, "object": 0.5}}


def test_label_balancing():
    # a skewed pool (as in the synthetic clips: most objects are static): 12 "Not moving", 3 "Closer", 2 "Farther"
    pool = ([_labelled("Not moving", k) for k in range(12)] + [_labelled("Closer", k) for k in range(3)]
            + [_labelled("Farther", k) for k in range(2)])
    assert selection.balanced_size(pool) == 6
    rng = np.random.default_rng(0)
    six = selection.take(pool, 6, rng, balance=True)
    assert sorted(i["row"]["options"]["B"] for i in six) == ["Closer", "Closer", "Farther", "Farther",
                                                            "Not moving", "Not moving"]
    assert len(selection.take(pool, 10, rng, balance=True)) == 10  # SFT: fills up with the commoner labels
    bench = selection.select_bench(pool + [_numeric(k % 4, k) for k in range(20)], 9, rng, balance=True)
    assert [i["row"]["subtask"] for i in bench].count("ocrd") == 6  # the balanced part bounds the subtask
    labels = [i["row"]["options"]["B"] for i in bench if i["row"]["subtask"] == "ocrd"]
    assert all(labels.count(l) == 2 for l in set(labels))
    # numeric rows are grouped by the answer's rank among the sorted option values (skewed ranks are a text prior)
    cads = [_numeric(r, k) for k, r in enumerate([2, 2, 2, 0, 1, 3, 2])]
    assert [selection.answer_label(i["row"]) for i in cads[:4]] == ["rank:2", "rank:2", "rank:2", "rank:0"]
    assert selection.balanced_size(cads) == 4
    assert [selection.answer_label(i["row"]) for i in selection.label_order(cads)[:4]] == \
        ["rank:2", "rank:0", "rank:1", "rank:3"]
    # variants are separate labels ("lateral:Left" vs "longitudinal:Closer")
    mixed = [_labelled("Left", 0, "ocrdir", "lateral"), _labelled("Closer", 0, "ocrdir", "longitudinal")]
    assert {selection.answer_label(i["row"]) for i in mixed} == {"lateral:Left|long", "longitudinal:Closer|long"}
    # ... and the window: a short gap is its own group (more frames, more motion)
    short = {**mixed[0]["row"], "frame_j": 10}
    assert selection.answer_label(short) == "lateral:Left|short"


