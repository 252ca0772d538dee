"""choice.py: letter and option-text constrained choice with a tiny random model."""

import numpy as np
import pytest
import torch

from mllm4d import choice, collate, common, evaluate, models, prompts
from tests.fixtures_data import make_dataset
from tests.test_evaluate import cfg_of

ROW = {"question": "Which way does the square move between frame 0 and frame 31 of 31?",
       "options": {"A": "Left", "B": "Right", "C": "Not moving", "D": "0.45"}, "answer": "B"}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return models.load("tiny:qwen3_vl", dtype="float32")


def video(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)


def test_option_logprob_is_the_sft_loss_of_that_answer(tiny):
    # the score of an option text = -(SFT cross-entropy summed over the tokens SFT supervises) for that target
    model, proc = tiny
    f = video(0)
    chat = prompts.messages(ROW, "direct_text")
    lp = choice.option_logprobs(model, proc, [chat] * 4, [f] * 4, list(ROW["options"].values()), batch_size=3)
    for k, text in enumerate(ROW["options"].values()):
        full = prompts.messages({**ROW, "answer": list(ROW["options"])[k]}, "direct_text", with_answer=True)
        batch = models.build_inputs(proc, [full], [f])
        labels = collate.mask_labels(batch["input_ids"], batch["attention_mask"],
                                     collate.assistant_header_ids(proc.tokenizer))
        with torch.no_grad():
            loss = model(**batch, labels=labels).loss.item()
        n = int((labels[:, 1:] != collate.IGNORE).sum())
        assert lp[k] == pytest.approx(-loss * n, rel=1e-4, abs=1e-4)


def test_option_choice_is_the_arg_max_and_batching_does_not_change_it(tiny):
    model, proc = tiny
    chats = [prompts.messages(ROW, "direct_text")] * 3
    frames = [video(s) for s in range(3)]
    got = choice.option_choices(model, proc, chats, frames, [ROW["options"]] * 3, batch_size=1)
    assert got == choice.option_choices(model, proc, chats, frames, [ROW["options"]] * 3, batch_size=3)
    for c, f, letter in zip(chats, frames, got):
        lp = choice.option_logprobs(model, proc, [c] * 4, [f] * 4, list(ROW["options"].values()))
        assert letter == "ABCD"[int(np.argmax(lp))]


def test_letter_choice_names_one_of_the_letters(tiny):
    model, proc = tiny
    got = choice.letter_choices(model, proc, [prompts.messages(ROW, "direct")] * 2, [video(0), video(1)])
    assert len(got) == 2 and set(got) <= set("ABCD")


def test_eval_option_loglik_needs_the_direct_text_prompt(tmp_path, tiny):
    root = tmp_path / "outputs"
    make_dataset(root / "03_dataset" / "fx", n_clips=3, rows_per_clip=2)
    cfg = cfg_of(outputs_root=str(root), choice="option_loglik", prompt_mode="direct_text")
    m = evaluate.run(cfg, common.start_run("06_eval", cfg), *tiny)
    rows = common.read_jsonl(root / "06_eval" / "t" / "predictions.jsonl")
    assert rows and all(r["pred"] in "ABCD" and r["pred"] for r in rows) and m["empty_rate"] == 0.0
    assert m["generation"]["choice"] == "option_loglik"
    with pytest.raises(common.ParamError, match="direct_text"):
        bad = cfg_of(outputs_root=str(root), run_name="t2", choice="option_loglik", prompt_mode="direct")
        evaluate.run(bad, common.start_run("06_eval", bad), *tiny)


def test_reasoning_prefix_closes_the_thinking_and_opens_the_answer():
    assert choice.reasoning_prefix("<thinking>a</thinking> junk <answer>B</answer>") == "<thinking>a</thinking><answer>"
    assert choice.reasoning_prefix("<thinking>a [1. ") == "<thinking>a [1.</thinking><answer>"
    assert choice.reasoning_prefix("") == "</thinking><answer>"


@pytest.mark.parametrize("mode", ["st_cot", "st_cot_text"])
def test_reasoned_choice_scores_the_answer_after_the_models_reasoning(tiny, mode):
    model, proc = tiny
    chat, f = prompts.messages(ROW, mode), video(0)
    reply = "<thinking>the square moves</thinking><answer>"
    got = choice.reasoned_choices(model, proc, [chat] * 2, [f] * 2, [ROW["options"]] * 2,
                                  [reply + "A</answer>", "<thinking>the square moves"], mode == "st_cot_text")
    # both replies reduce to the same reasoning, so they choose the same option ...
    assert got[0] == got[1]
    # ... the one whose reply (reasoning + answer + </answer>) is most likely: the text, or the letter for st_cot
    answers = [reply + (t if mode == "st_cot_text" else k) + "</answer>" for k, t in ROW["options"].items()]
    lp = choice.option_logprobs(model, proc, [chat] * 4, [f] * 4, answers)
    assert got[0] == "ABCD"[int(np.argmax(lp))]


def test_eval_answer_loglik_keeps_the_parsed_score(tmp_path, tiny):
    root = tmp_path / "outputs"
    make_dataset(root / "03_dataset" / "fx", n_clips=3, rows_per_clip=2)
    cfg = cfg_of(outputs_root=str(root), choice="answer_loglik", prompt_mode="st_cot_text", max_new_tokens=8)
    m = evaluate.run(cfg, common.start_run("06_eval", cfg), *tiny)
    rows = common.read_jsonl(root / "06_eval" / "t" / "predictions.jsonl")
    assert rows and all(r["pred"] in tuple("ABCD") for r in rows)  # a choice for every item
    assert m["empty_rate"] == 0.0 and m["generated_accuracy"] == np.mean([r["parsed_correct"] for r in rows])
    assert m["generated_empty_rate"] == np.mean([r["parsed"] == "" for r in rows])
    with pytest.raises(common.ParamError, match="st_cot or st_cot_text"):
        bad = cfg_of(outputs_root=str(root), run_name="t2", choice="answer_loglik", prompt_mode="direct_text")
        evaluate.run(bad, common.start_run("06_eval", bad), *tiny)
