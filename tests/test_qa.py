"""QA templates: option validity, distractor range/gaps, uniform answer letters and ranks, caps, determinism."""
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from mllm4d import prompts, qa, solver
from mllm4d.solver import Relation

QCFG = qa.QAConfig(option_order="shuffled", distractor_lo=0.25, distractor_hi=1.75, min_gap_rel=0.15,
                   min_gap_abs=0.1, decimals=1)
META = SimpleNamespace(num_frames=32, obj_names=("red box", "ball"),
                       obj_descriptions=("the small red box on the floor", "blue ball"))
CAM = ((0.0, 0.0, 0.0), (0.1, 0.0, 1.2))
OBJ = ((0.5, 0.2, 3.0), None)


def rel(scenario, value=None, label=None, obj=0, exclude=(), i=3, j=26):
    sub, _, var = scenario.partition("-")
    cam_only = sub in ("cad", "crd")
    return Relation(clip_id="clip0007", subtask=sub, variant=var, frame_i=i, frame_j=j, obj=-1 if cam_only else obj,
                    value=value, label=label, measure=value if value is not None else 0.5,
                    camera_center=CAM if sub != "oad" else (None, None),
                    object_center=(None, None) if cam_only else OBJ, exclude=exclude)


def chi2_uniform_p(counts, k):
    """p-value of a chi-square goodness-of-fit test against uniform over k cells (no scipy needed)."""
    from math import exp, lgamma
    obs = np.array([counts.get(c, 0) for c in range(k)] if isinstance(next(iter(counts)), int) else list(counts.values()))
    e = obs.sum() / k
    x = float(((obs - e) ** 2 / e).sum())
    dof = k - 1  # survival function of chi-square via the regularised upper gamma series (dof = 3 here)
    a, s, term, n = dof / 2, 0.0, 1.0 / (dof / 2), 0
    while term > 1e-12 and n < 10000:
        s += term
        n += 1
        term *= (x / 2) / (a + n)
    lower = s * exp(-x / 2 + a * np.log(x / 2) - lgamma(a)) if x > 0 else 0.0
    return 1.0 - lower


@pytest.mark.parametrize("v", np.round(np.concatenate([np.linspace(0.3, 3, 28), np.geomspace(3, 60, 12),
                                                      [0.501, 0.5004, 0.667]]), 4))
@pytest.mark.parametrize("gap_rel", [0.15, 0.2])
def test_numeric_options_are_valid_for_all_magnitudes(v, gap_rel):
    rng = np.random.default_rng(int(v * 1000))
    cfg = qa.QAConfig(**{**QCFG.__dict__, "min_gap_rel": gap_rel})
    grid, rank = qa.numeric_options(np.full(500, v), rng.random((500, 4)), cfg)
    vals = grid * 0.1
    relaxed = v < 1.0 and gap_rel * v > 0.1  # a gap just above one grid step may be relaxed to one step
    gap = (0.1 if relaxed else max(gap_rel * v, 0.1)) - 1e-9
    assert np.all(np.abs(vals[:, 0] - round(v, 1)) <= 0.05 + 1e-9) or v < 0.1
    assert np.all(vals[:, 1:] >= 0.25 * v - 0.05 - 1e-9) and np.all(vals[:, 1:] <= 1.75 * v + 0.05 + 1e-9)
    d = np.abs(vals[:, :, None] - vals[:, None, :]) + np.eye(4) * 1e9
    assert np.all(d >= gap), "options must be at least the minimum gap apart"
    assert np.all((vals[:, 1:] < vals[:, :1]).sum(1) == rank)


def test_numeric_truth_rank_is_uniform_when_range_allows():
    _, rank = qa.numeric_options(np.full(4000, 2.0), np.random.default_rng(0).random((4000, 4)), QCFG)
    counts = Counter(rank.tolist())
    assert set(counts) == {0, 1, 2, 3} and chi2_uniform_p(counts, 4) > 0.001


def test_numeric_infeasible_value_raises():
    with pytest.raises(ValueError, match="0.050"):
        qa.numeric_options(np.array([1.0, 0.05]), np.full((2, 4), 0.5), QCFG)


def test_row_schema_and_paper_wording():
    row = qa.make_item(rel("ocad", value=4.83), META, np.random.default_rng(0), QCFG, index=3)
    assert row["id"] == "clip0007-ocad-003" and row["subtask"] == "ocad" and row["variant"] == ""
    assert set(row["options"]) == set(prompts.LETTERS) and row["answer"] in prompts.LETTERS
    assert row["options"][row["answer"]] == "4.8" and row["solution"]["answer"] == row["answer"]
    assert "frame 3" in row["question"] and "frame 26 of 31" in row["question"]
    assert "the small red box on the floor" in row["question"]
    assert row["solution"]["camera_center"] == [[0.0, 0.0, 0.0], [0.1, 0.0, 1.2]]
    assert row["solution"]["object_center"] == [[0.5, 0.2, 3.0], None]
    assert (row["frame_i"], row["frame_j"], row["object"]) == (3, 26, 0)
    assert "the blue ball" in qa.make_item(rel("oad", value=1.0, obj=1), META, np.random.default_rng(0), QCFG)["question"]


def test_camera_rows_have_null_objects():
    row = qa.make_item(rel("crd", label="forward"), META, np.random.default_rng(0), QCFG)
    assert row["solution"]["object_center"] == [None, None] and row["object"] == -1
    assert "{" not in row["question"] and "the camera" in row["question"]


def test_crd_options_never_offer_an_excluded_direction():
    rng = np.random.default_rng(1)
    for _ in range(200):
        row = qa.make_item(rel("crd", label="forward", exclude=("left",)), META, rng, QCFG)
        texts = list(row["options"].values())
        assert row["options"][row["answer"]] == "Forward" and "Left" not in texts and len(set(texts)) == 4
        assert set(texts) <= {"Right", "Down", "Up", "Forward", "Backward"}


@pytest.mark.parametrize("scenario, label, text", [("ocrd", "not moving", "Not moving"),
                                                   ("ocrdir-lateral", "left", "Left"),
                                                   ("ocrdir-longitudinal", "farther", "Farther")])
def test_categorical_options(scenario, label, text):
    row = qa.make_item(rel(scenario, label=label), META, np.random.default_rng(2), QCFG)
    assert row["options"][row["answer"]] == text and qa.CANNOT in row["options"].values()
    assert len(set(row["options"].values())) == 4 and row["variant"] == scenario.partition("-")[2]


def sample_rels():
    return [rel("cad", value=1.2), rel("oad", value=0.7), rel("ocad", value=5.4), rel("crd", label="left"),
            rel("ocrd", label="closer"), rel("ocrdir-lateral", label="right"),
            rel("ocrdir-longitudinal", label="not moving")]


def test_answer_letters_are_uniform_when_shuffled():
    rng, letters = np.random.default_rng(5), Counter()
    for _ in range(600):
        letters.update(r["answer"] for r in qa.make_items(sample_rels(), META, rng, QCFG))
    assert chi2_uniform_p(letters, 4) > 0.001 and len(letters) == 4


def test_canonical_order_sorts_options():
    cfg = qa.QAConfig(**{**QCFG.__dict__, "option_order": "canonical"})
    rows = qa.make_items(sample_rels(), META, np.random.default_rng(0), cfg)
    for r in rows:
        vals = [r["options"][k] for k in prompts.LETTERS]
        if r["subtask"] in solver.NUMERIC:
            assert [float(x) for x in vals] == sorted(float(x) for x in vals)
        elif r["subtask"] == "ocrd":
            assert vals == ["Closer", "Farther", "Not moving", qa.CANNOT] and r["answer"] == "A"


def test_make_items_is_deterministic_and_caps_balanced():
    rels = [rel(s, value=1.0 + 0.1 * k if s in ("cad", "oad", "ocad") else None,
                label=None if s in ("cad", "oad", "ocad") else solver.LABELS[s][k % 2], i=k, j=k + 10)
            for s in solver.SCENARIOS for k in range(5)]
    a = qa.make_items(rels, META, np.random.default_rng(9), QCFG, cap_per_clip=14)
    b = qa.make_items(rels, META, np.random.default_rng(9), QCFG, cap_per_clip=14)
    assert a == b and len(a) == 14
    per = Counter((r["subtask"], r["variant"]) for r in a)
    assert len(per) == 7 and set(per.values()) == {2}
    assert len({r["id"] for r in a}) == 14
    assert len(qa.make_items(rels, META, np.random.default_rng(9), QCFG)) == len(rels)
    assert qa.make_items([], META, np.random.default_rng(9), QCFG) == []


def test_paraphrases_all_used_and_filled():
    rng, used = np.random.default_rng(4), set()
    for _ in range(60):
        for r in qa.make_items(sample_rels(), META, rng, QCFG):
            key = r["subtask"] + ("-" + r["variant"] if r["variant"] else "")
            obj = "the small red box on the floor" if r["object"] == 0 else ""
            filled = [t.format(i=r["frame_i"], j=r["frame_j"], n=31, obj=obj) for t in qa.TEMPLATES[key]]
            used.add((key, filled.index(r["question"])))
            assert f"frame {r['frame_j']} of 31" in r["question"]
    assert used == {(k, t) for k in solver.SCENARIOS for t in range(len(qa.TEMPLATES[k]))}


def test_config_validation():
    with pytest.raises(ValueError):
        qa.QAConfig(**{**QCFG.__dict__, "option_order": "sorted"})


def test_select_and_batch_agree_with_per_clip_semantics():
    rels = [rel(s, value=1.0 if s in ("cad", "oad", "ocad") else None,
                label=None if s in ("cad", "oad", "ocad") else solver.LABELS[s][0], i=k, j=k + 10)
            for s in solver.SCENARIOS for k in range(3)]
    picked = qa.select(rels, np.random.default_rng(0), 7)
    assert sorted(r.scenario for r in picked) == sorted(solver.SCENARIOS)
    assert qa.select(rels, np.random.default_rng(0), None) == rels
    other = [r._replace(clip_id="clip0008") for r in rels[:5]]
    rows = qa.make_items_batch([rels, other, []], [META, META, META], np.random.default_rng(1), QCFG, 10)
    assert len(rows) == 15 and [r["clip_id"] for r in rows] == ["clip0007"] * 10 + ["clip0008"] * 5
    assert len({r["id"] for r in rows}) == 15


def test_make_items_clips_draws_like_make_items_clip_by_clip():
    """The bulk path gives the per-clip rows draw for draw (any caps, empty clips) and leaves rng in step."""
    rels = [rel(s, value=0.5 + 0.3 * k if s in ("cad", "oad", "ocad") else None,
                label=None if s in ("cad", "oad", "ocad") else solver.LABELS[s][k % 3],
                exclude=("up",) if s == "crd" and k % 2 else (), i=k, j=k + 9)
            for s in solver.SCENARIOS for k in range(4)]
    groups = [rels, rels[:5], [], rels[3:20], [r._replace(clip_id="clip0009") for r in rels]]
    for cfg in (QCFG, qa.QAConfig(**{**QCFG.__dict__, "option_order": "canonical", "decimals": 2})):
        for caps in ([None] * 5, [7, 7, 7, 7, 7], [0, 2, 5, 100, -3]):
            a, b = np.random.default_rng(11), np.random.default_rng(11)
            one = [qa.make_items(g, META, a, cfg, c) for g, c in zip(groups, caps)]
            assert qa.make_items_clips(groups, [META] * 5, b, cfg, caps) == one
            assert a.random() == b.random()
    with pytest.raises(ValueError, match="no 4 distinct options"):
        qa.make_items_clips([[rel("cad", value=0.04)]], [META], np.random.default_rng(0), QCFG, [None])


def test_every_crd_direction_can_be_a_distractor():
    # with no excluded axis all five other directions must appear as distractors (a direction that never
    # appears beside an answer would tell a text-only model something about that answer)
    rng = np.random.default_rng(0)
    for label in solver.CRD_LABELS:
        seen = set()
        for k in range(200):
            seen |= set(qa.make_item(rel("crd", label=label), META, rng, QCFG, k)["options"].values())
        assert seen == {qa.OPTION_TEXT[l] for l in solver.CRD_LABELS}, (label, seen)
