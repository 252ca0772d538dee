"""answer.py: the rule cascade, case by case, and robustness to hostile input."""
import time

import pytest

from mllm4d.answer import answer_tag_content, extract_choice

OPTS = {"A": "left", "B": "right", "C": "not moving", "D": "towards the camera"}
COUNTS = {"A": 4, "B": 3, "C": 1, "D": 2}

CASES = [
    # (text, choices, expected)
    # 1. <answer> tags (release rule 1)
    ("<thinking>the box moves</thinking><answer>B</answer>", None, "B"),
    ("<thinking>x</thinking><answer> (C) </answer>", None, "C"),
    ("<answer>b</answer>", None, "B"),
    ("<answer>Option D</answer>", None, "D"),
    ("<answer>B: right</answer>", OPTS, "B"),
    ("<answer>right</answer>", OPTS, "B"),                      # option text inside the tag
    ("<answer>a car</answer>", None, ""),                       # lower-case word is not a letter
    ("<ANSWER>A</ANSWER>", None, "A"),
    ("<answer>A", None, "A"),                                   # unclosed tag
    ("<answer></answer> so the final answer is C", None, "C"),  # empty tag falls through
    # 2. \boxed
    ("so \\boxed{D}", None, "D"),
    ("$\\boxed{\\text{B}}$", None, "B"),
    # 3. answer phrases (VLM4D's CoT prompt ends with this)
    ("... Therefore, the final answer is: $LETTER", None, ""),
    ("step 1 ... Therefore, the final answer is: B", None, "B"),
    ("Therefore, the final answer is: $C$", None, "C"),
    ("The final answer is \\( D \\)", None, "D"),
    ("**Final Answer:** (A)", None, "A"),
    ("The answer is (D).", None, "D"),
    ("Answer: C", None, "C"),
    ("the final answer is: d.", None, "D"),
    ("The final answer is then:\n\nD: not moving", OPTS, "D"),
    ("Therefore, the final answer is: right", OPTS, "B"),
    ("The correct answer is option B", None, "B"),
    ("最终答案：C", None, "C"),
    ("Therefore, the final answer is: B or D.", None, ""),      # hedge
    ("Therefore, the final answer is: $A$ or $D$", None, ""),
    ("Therefore, the final answer is: N/A", None, ""),
    ("The answer would be B. ... Therefore, the final answer is: $_LETTER.", None, ""),
    ("Answer: C\nD", None, ""),                                 # a second letter on its own line
    ("B.A.", None, ""),
    ("The final answer is: $B$ (if moving).\nOr,\nThe final answer is: $D$", None, ""),  # two final answers
    ("Thus the answer to the question is B: 2.", COUNTS, "B"),
    # 4. a letter before a verdict
    ("The lid turns, leading to option D as the correct answer.", None, "D"),
    ("it does not move (C is the correct answer).", None, "C"),
    # 5./6. the whole response
    ("B", None, "B"),
    ("(A)", None, "A"),
    ("C.", None, "C"),
    ("B: there are no buses in the video", None, "B"),
    ("A person walks left.", None, ""),
    ("C,D", None, ""),
    ("not moving", OPTS, "C"),
    ("3", COUNTS, "B"),                                         # int option values
    # 7. last line in option format
    ("long analysis of the frames.\n\nC) Right", None, "C"),
    # 8. trailing letter (release rule 3)
    ("After comparing the frames I pick B", None, "B"),
    ("Options: (A or B or C or D).", None, ""),
    # 9. the closing sentence states an option's text
    ("The bear is walking towards the camera.", OPTS, "D"),
    ("The car is not moving in any direction.", OPTS, "C"),      # "not moving" beats its own "moving"
    ("The dog is moving towards the right direction.", {"A": "right", "B": "towards"}, "A"),
    ("He dribbles the ball twice.", COUNTS, "D"),                # number words
    ("It is impossible to tell whether it moved left or right.", OPTS, ""),
    ("The person moves the bottle leftwards.", OPTS, "A"),
    ("The car is moving left.", None, ""),                      # no choices: no text matching
    ("The person is not moving forwards.", {"A": "backwards", "B": "forwards"}, ""),  # negated mention
    ("The image shows the car moving to the left side of", OPTS, ""),                # cut off mid-sentence
    # nothing
    ("I cannot tell from these frames.", OPTS, ""),
    ("", None, ""),
]


@pytest.mark.parametrize("text,choices,expected", CASES)
def test_extract_choice(text, choices, expected):
    assert extract_choice(text, choices) == expected


def test_letter_range_follows_choices():
    five = {"A": "1", "B": "2", "C": "3", "D": "4", "E": "5"}
    assert extract_choice("The answer is E", five) == "E"
    assert extract_choice("The answer is E") == ""              # A-D by default
    assert extract_choice("<answer>b</answer>", {"a": "x", "b": "y"}) == "B"


def test_duplicate_option_texts_resolve_to_first_letter():
    dup = {"A": "not sure", "B": "not moving", "C": "away from the camera", "D": "away from the camera"}
    assert extract_choice("away from the camera", dup) == "C"


@pytest.mark.parametrize("bad", [None, 3, 2.5, b"A", ["A"], {"a": 1}, object()])
def test_never_raises_on_non_strings(bad):
    out = extract_choice(bad)
    assert isinstance(out, str) and out in ("", "A", "B", "C", "D")
    assert answer_tag_content(bad) is None


@pytest.mark.parametrize("text", [
    "A" * 1_000_000,
    "<answer>" * 200_000,
    "answer is " * 200_000,
    "The final answer is: " + "(" * 500_000,
    "x" * 500_000 + "Therefore, the final answer is: C",
    "( " * 300_000 + "B",
    "\\boxed{" * 100_000,
    "\n" * 1_000_000,
    "(" * 20_000, "$" * 20_000, '"' * 20_000, "[" * 5_000_000 + "]" * 5_000_000,  # once quadratic: seconds
    "option" + " " * 50_000, "answer is " * 5_000, "C. " * 10_000, ", " * 20_000,
    "<answer>" + "(" * 50_000, "\\boxed{" + "(" * 50_000,
])
def test_hostile_inputs_are_handled(text):
    # A catastrophic-backtracking regex turns these into seconds or hours; every rule here is linear and the
    # input is capped. The bound is a denial-of-service guard (milliseconds when idle), not a speed target.
    t0 = time.perf_counter()
    out = extract_choice(text, OPTS)
    assert out in ("", "A", "B", "C", "D")
    assert time.perf_counter() - t0 < 2.0


def test_long_text_keeps_the_tail():
    assert extract_choice("x " * 100_000 + "Therefore, the final answer is: C") == "C"


def test_release_cascade_reconstruction():
    from mllm4d.answer import release_choice
    assert release_choice("<answer>B</answer>") == "B"
    assert release_choice("<answer>a car</answer>") == "A"       # the release's case-insensitive quirk
    assert release_choice("The bear walks towards the camera.") == ""
    assert release_choice(None) == ""


def test_answer_tag_content():
    assert answer_tag_content("<thinking>t</thinking><answer> B </answer>") == " B "
    assert answer_tag_content("<answer>A</answer><answer>B</answer>") == "A"   # the first block
    assert answer_tag_content("<answer>A") is None                              # unclosed
    assert answer_tag_content("no tags") is None
