"""The ST-reward (mllm4d/reward.py): every term, every preset, the release's count/null rules, hostile input."""
import math
import time

import pytest

from mllm4d import reward as rw

CAM2 = [[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
OBJ2 = [[1.0, 0.0, 3.0], [1.0, 0.0, 2.0]]
SOL_CAM = {"answer": "B", "camera_center": CAM2, "object_center": [None, None]}  # camera-only question
SOL_BOTH = {"answer": "C", "camera_center": CAM2, "object_center": OBJ2}
SOL_OBJ = {"answer": "A", "camera_center": [None, None], "object_center": OBJ2}


def cot(answer="B", cam=("[0, 0, 0]", "[0, 0, 1]"), obj=("null", "null"), think_extra=" reasoning "):
    """A completion in the ST-CoT shape (system prompt of prompts.ST_SYSTEM)."""
    return ("<thinking>" + think_extra +
            f"**Spatial State (Initial Frame):**\n- Camera Center: {cam[0]}\n- Object Center: {obj[0]}\n"
            f"**Spatial State (Final Frame):**\n- Camera Center: {cam[1]}\n- Object Center: {obj[1]}\n"
            f"</thinking><answer>{answer}</answer>")


PERFECT_BOTH = cot("C", obj=("[1, 0, 3]", "[1.0, 0.0, 2.0]"))
# (completion, solution, expected terms)
CASES = [
    ("perfect camera-only", cot(), SOL_CAM,
     dict(accuracy=1, accuracy_exact=1, structure_format=1, st_format=0, thinking_length=1, camera=1, object=1)),
    ("perfect both", PERFECT_BOTH, SOL_BOTH,
     dict(accuracy=1, accuracy_exact=1, structure_format=1, st_format=1, thinking_length=1, camera=1, object=1)),
    ("wrong answer", cot("D"), SOL_CAM,
     dict(accuracy=0, accuracy_exact=0, structure_format=1, camera=1, object=1)),
    ("no tags, bare letter", "B", SOL_CAM,
     dict(accuracy=1, accuracy_exact=1, structure_format=0, st_format=0, thinking_length=0, camera=0, object=1)),
    ("answer tag only", "<answer>B</answer>", SOL_CAM,
     dict(accuracy=1, accuracy_exact=1, structure_format=0, thinking_length=0)),
    ("thinking not closed", "<thinking>Camera Center: [0,0,0] <answer>B</answer>", SOL_CAM,
     dict(structure_format=0, thinking_length=0)),
    # release quirk: the length is taken with the tags (21 characters), so any thinking block passes "> 20"
    ("empty thinking", "<thinking></thinking><answer>B</answer>", SOL_CAM,
     dict(structure_format=1, thinking_length=1)),
    ("release exact-match is strict", cot("B."), SOL_CAM, dict(accuracy=1, accuracy_exact=0)),
    ("answer with option text", cot("B. 0.4"), SOL_CAM, dict(accuracy=1, accuracy_exact=0)),
    ("null object predicted, GT null", cot(), SOL_CAM, dict(object=1)),
    ("object predicted but GT null", cot(obj=("[1, 2, 3]", "null")), SOL_CAM, dict(object=0, st_format=1)),
    ("object GT present, prediction null", cot("A"), SOL_OBJ, dict(object=0, camera=0)),
    ("count mismatch: one of two", cot(cam=("[0, 0, 0]", "null")), SOL_CAM, dict(camera=0)),
    ("count mismatch: three", cot(cam=("[0, 0, 0]", "[0, 0, 1]")) + " Camera Center: [0, 0, 2]", SOL_CAM,
     dict(camera=0)),
    ("shape mismatch", cot(cam=("[0, 0]", "[0, 0, 1]")), SOL_CAM, dict(camera=0)),
    ("null inside a vector is dropped", cot(cam=("[0, null, 0]", "[0, 0, 1]")), SOL_CAM, dict(camera=0)),
    ("malformed number empties the list", cot(cam=("[0, 0, 0]", "[0, 0, x]")), SOL_CAM, dict(camera=0)),
    ("malformed + GT null -> empty -> 1", cot(obj=("[1, two, 3]", "null")), SOL_CAM, dict(object=1)),
    ("nan is a parse error", cot(cam=("[nan, 0, 0]", "[0, 0, 1]")), SOL_CAM, dict(camera=0)),
    ("inf is a parse error", cot(cam=("[inf, 0, 0]", "[0, 0, 1]")), SOL_CAM, dict(camera=0)),
    ("nested brackets are a parse error", cot(cam=("[[0, 0, 0]]", "[0, 0, 1]")), SOL_CAM, dict(camera=0)),
    ("huge exponent -> non-finite error -> 0", cot(cam=("[1e999, 0, 0]", "[0, 0, 1]")), SOL_CAM, dict(camera=0)),
    ("scientific notation and trailing comma", cot(cam=("[0e0, -0.0, +0,]", "[1E-9, 0, 1.0]")), SOL_CAM,
     dict(camera=pytest.approx(math.exp(-0.5e-9)))),
    ("unicode around labels", "<thinking>🚗 ünïcødé Camera Center: [0, 0, 0] … Camera Center: [0, 0, 1] "
     "Object Center: null</thinking><answer>B</answer>", SOL_CAM,
     dict(accuracy=1, structure_format=1, camera=1, object=1, st_format=0)),
    ("empty completion", "", SOL_CAM,
     dict(accuracy=0, accuracy_exact=0, structure_format=0, st_format=0, thinking_length=0, camera=0, object=1)),
    ("missing solution fields", cot(), {"answer": "B"}, dict(accuracy=1, camera=0, object=1)),
    ("garbage solution", cot(), 42, dict(accuracy=0, accuracy_exact=0, camera=0, object=1)),
]


@pytest.mark.parametrize("name,completion,solution,expected", CASES, ids=[c[0] for c in CASES])
def test_terms(name, completion, solution, expected):
    got = rw.reward_terms(completion, solution)
    for term, value in expected.items():
        assert got[term] == value, (term, got)


def test_center_error_is_exp_minus_mean_l2():
    # camera off by 0.3 m at the start and 0.4 m at the end: exp(-(0.3 + 0.4) / 2)
    c = cot(cam=("[0.3, 0, 0]", "[0, 0.4, 1]"))
    assert rw.reward_terms(c, SOL_CAM)["camera"] == pytest.approx(math.exp(-0.35))
    # object: (0, 0, 1) off then (3, 4, 0) off -> (1 + 5) / 2
    c = cot("C", obj=("[1, 0, 4]", "[4, 4, 2]"))
    assert rw.reward_terms(c, SOL_BOTH)["object"] == pytest.approx(math.exp(-3.0))


@pytest.mark.parametrize("preset,expected", [
    ("st", 0.5 + 0.1 + 0.1 + 0.15 + 0.15),
    ("st_code", 0.6 + 0.1 + 0.08 + 0.02 + 0.1 + 0.1),
    ("acc", 0.5 + 0.1 + 0.1),
])
def test_presets_perfect(preset, expected):
    assert rw.REWARDS[preset]([PERFECT_BOTH], [[SOL_BOTH]]) == [pytest.approx(expected)]


def test_preset_weights_match_paper_and_release():
    st = rw.PRESETS["st"]  # eq. 8 with λAcc .5, λFmt .2 (λ1 = λ2 = .5), λST .3 (λCam = λObj = .5)
    assert st == {"accuracy": 0.5, "structure_format": 0.2 * 0.5, "st_format": 0.2 * 0.5,
                  "camera": 0.3 * 0.5, "object": 0.3 * 0.5}
    code = rw.PRESETS["st_code"]  # 0.6 acc + 0.2 (0.5 tags + 0.4 labels + 0.1 length) + 0.1 cam + 0.1 obj
    assert code == pytest.approx({"accuracy_exact": 0.6, "structure_format": 0.1, "st_format": 0.08,
                                  "thinking_length": 0.02, "camera": 0.1, "object": 0.1})
    assert sum(st.values()) == pytest.approx(1.0) and sum(code.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("preset", sorted(rw.PRESETS))
def test_wrong_answer_costs_exactly_the_accuracy_weight(preset):
    good, bad = rw.REWARDS[preset]([PERFECT_BOTH, PERFECT_BOTH.replace("<answer>C", "<answer>D")],
                                   [SOL_BOTH, SOL_BOTH])
    acc_w = rw.PRESETS[preset].get("accuracy", 0) + rw.PRESETS[preset].get("accuracy_exact", 0)
    assert good - bad == pytest.approx(acc_w)


def test_chat_message_and_solution_forms_agree():
    text = cot()
    forms_c = [text, [{"role": "assistant", "content": text}],
               [{"role": "assistant", "content": [{"type": "text", "text": text}]}]]
    forms_s = [SOL_CAM, [SOL_CAM], (SOL_CAM,), '[{"answer": "B", "camera_center": [[0,0,0],[0,0,1]], '
               '"object_center": [null, null]}]']
    for preset, f in rw.REWARDS.items():
        values = {f([c], [s])[0] for c in forms_c for s in forms_s}
        assert len(values) == 1, (preset, values)


def test_options_reach_the_shared_parser():
    sol = {"answer": "B", "camera_center": [None, None], "object_center": [None, None]}
    opts = {"A": "left", "B": "right", "C": "up", "D": "down"}
    c = "<thinking>the camera pans</thinking><answer>right</answer>"
    assert rw.acc_reward([c], [sol], options=[opts]) == [1.0]
    assert rw.acc_reward([c], [sol]) == [0.0]  # without options the text cannot be mapped to a letter
    assert rw.acc_exact_reward([c], [sol], options=[opts]) == [0.0]  # the release needs the letter


def test_individual_reward_functions_and_registry():
    assert set(rw.REWARDS) == {"st", "st_code", "acc"}
    for name, f in rw.TERM_REWARDS.items():
        assert f.__name__ == name  # trl logs rewards/<__name__>/mean
        out = f([PERFECT_BOTH, "nonsense"], [SOL_BOTH, SOL_BOTH], trainer_state=None, log_metric=print)
        assert len(out) == 2 and all(isinstance(v, float) and 0 <= v <= 1 for v in out)
    for f in (rw.acc_reward, rw.structure_format_reward, rw.st_format_reward, rw.camera_reward, rw.object_reward):
        assert f([PERFECT_BOTH], [SOL_BOTH]) == [1.0]


@pytest.mark.parametrize("preset", sorted(rw.PRESETS))
def test_trainer_rewards_sum_to_the_preset(preset):
    funcs, weights = rw.trainer_rewards(preset)
    comps = [PERFECT_BOTH, cot("D"), "B", cot(cam=("[0.3, 0, 0]", "[0, 0, 1]")), ""]
    sols = [SOL_BOTH, SOL_CAM, SOL_CAM, SOL_CAM, SOL_OBJ]
    per_func = [f(comps, sols) for f in funcs]
    total = [sum(w * col[i] for w, col in zip(weights, per_func)) for i in range(len(comps))]
    assert total == pytest.approx(rw.REWARDS[preset](comps, sols))
    assert "accuracy" in [f.__name__ for f in funcs]  # always logged, whatever the preset
    with pytest.raises(KeyError):
        rw.trainer_rewards("nope")


HOSTILE = [
    "x" * 10_000_000,
    "<thinking>" * 1_000_000,
    "Camera Center: [" * 600_000,
    "Camera Center: [1, 2, 3] " * 400_000,
    "[" * 5_000_000 + "]" * 5_000_000,
    "<answer>" + "A" * 10_000_000,
    "Object Center: [" + "9" * 10_000_000 + "]",
    "\u0000\udcff\U0001F600" * 1_000_000,
]


@pytest.mark.parametrize("i", range(len(HOSTILE)))
def test_hostile_inputs_are_fast_and_bounded(i):
    t0 = time.process_time()  # CPU time: robust to a loaded shared machine, still catches quadratic parsing
    for preset, f in rw.REWARDS.items():
        out = f([HOSTILE[i]], [SOL_BOTH])
        assert len(out) == 1 and 0.0 <= out[0] <= 1.0
    terms = rw.reward_terms(HOSTILE[i], SOL_BOTH)
    assert all(math.isfinite(v) for v in terms.values())
    assert time.process_time() - t0 < 3.0  # generous: 3 presets + terms on ~10 MB take < 1 s


def test_non_string_completions_never_raise():
    for c in (None, 3, 2.5, {"content": "B"}, [None, 3], [{"role": "assistant", "content": None}], b"B",
              [{"role": "assistant", "content": [{"type": "text", "text": None}, "x", {"text": 3}]}]):
        for f in rw.REWARDS.values():
            assert f([c], [SOL_CAM])[0] >= 0.0
