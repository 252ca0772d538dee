"""Prompt modes (mllm4d/prompts.py): what each stage's chat says and what its target is."""
import pytest

from mllm4d import answer, prompts

ROW = {"question": "Which way did the camera move?", "options": {"A": "Right", "B": "Left", "C": "Up", "D": "Down"},
       "answer": "B", "cot": "<thinking>x</thinking><answer>B</answer>"}


def _text(msgs, role):
    return [p["text"] for m in msgs if m["role"] == role for p in m["content"] if p["type"] == "text"]


def test_direct_targets_the_letter_and_direct_text_the_option():
    direct = prompts.messages(ROW, "direct", with_answer=True)
    assert _text(direct, "assistant") == ["B"]
    assert prompts.DIRECT_SUFFIX in _text(direct, "user")[0]
    text = prompts.messages(ROW, "direct_text", with_answer=True)
    assert _text(text, "assistant") == ["Left"]
    user = _text(text, "user")[0]
    assert prompts.TEXT_SUFFIX in user and "B. Left" in user  # same question and options, other suffix
    # the scorer maps the text answer back to its letter (answer.extract_choice rule 6)
    assert answer.extract_choice(_text(text, "assistant")[0], ROW["options"]) == "B"


def test_st_cot_text_answers_with_the_option_text():
    cot = '<thinking>\nGiven that we observed x, the answer is "Left" (B).\n</thinking><answer>B</answer>'
    msgs = prompts.messages({**ROW, "cot": cot}, "st_cot_text", with_answer=True)
    target = _text(msgs, "assistant")[0]
    assert target == '<thinking>\nGiven that we observed x, the answer is "Left".\n</thinking><answer>Left</answer>'
    assert _text(msgs, "system") == [prompts.ST_SYSTEM_TEXT] and "text of the correct option" in prompts.ST_SYSTEM_TEXT
    assert _text(msgs, "user") == _text(prompts.messages(ROW, "st_cot"), "user")  # same question and options
    # the benchmark parser and the GRPO accuracy reward read the text back as its letter (answer rule 1)
    assert answer.extract_choice(target, ROW["options"]) == "B"
    # any CoT ending in a letter answer converts; no final letter answer, or a letter that is no option: unchanged
    assert prompts.text_answer_cot(ROW["cot"], ROW["options"]) == "<thinking>x</thinking><answer>Left</answer>"
    assert prompts.text_answer_cot("<thinking>x</thinking>", ROW["options"]) == "<thinking>x</thinking>"
    assert prompts.text_answer_cot(cot.replace("(B)", "(E)").replace(">B<", ">E<"), ROW["options"]).endswith(">E</answer>")


def test_every_mode_has_one_video_part_and_no_answer_without_with_answer():
    for mode in prompts.MODES:
        msgs = prompts.messages(ROW, mode)
        assert [m["role"] for m in msgs] == ["system", "user"]
        assert sum(p["type"] == "video" for m in msgs for p in m["content"]) == 1


def test_unknown_mode_names_the_choices():
    with pytest.raises(ValueError, match="direct_text"):
        prompts.messages(ROW, "letters")
