"""Subtask names and the chat prompts of every stage (paper Fig. 10, §8.1; release ``scripts/inference.py``).

One dataset row (``outputs/03_dataset/<run>/*.jsonl``, see docs/FORMATS.md) becomes a chat here:

- **direct** (SFT, direct-answer eval): Qwen's default system prompt; user = ``<video>`` + "These are frames
  of a video.\\n" + question + options ``A. …`` + "Answer with the option's letter from the given choices
  directly."; assistant = the bare letter (paper Fig. 10).
- **st_cot** (cold start, GRPO, ST-CoT eval): the ST-CoT system prompt with the ``**Spatial State …**``
  block; user = question + options + "Output the thinking process in <thinking></thinking> and \\n final
  answer in <answer></answer> tags."; assistant = ``<thinking>…</thinking><answer>X</answer>``.
- **direct_text** / **st_cot_text** (tiny-profile levers): the same with the correct option's *text* as the
  answer (``Left``, ``<answer>Left</answer>``) instead of its letter.

Messages use the processor's content-part form: ``{"type": "video"}`` marks where the frames go; the
caller supplies the frames themselves (``models`` decodes them). Deviation: the release's SFT prompt puts
the options inline after the question; we put them on ``Options:`` lines, as in the paper's Fig. 10.
"""
from __future__ import annotations

import re
from typing import Any

# Table 1 column order. Keys are stable identifiers used in files and metrics.
SUBTASKS: tuple[str, ...] = ("cad", "crd", "oad", "ocad", "ocrd", "ocrdir")
SUBTASK_NAMES: dict[str, str] = {
    "cad": "Camera Abs. Dist.",
    "crd": "Camera Rel. Dir.",
    "oad": "Object Abs. Dist.",
    "ocad": "Object-Camera Abs. Dist.",
    "ocrd": "Object-Camera Rel. Dist.",
    "ocrdir": "Object-Camera Rel. Dir.",
}
LETTERS: tuple[str, ...] = ("A", "B", "C", "D")

DEFAULT_SYSTEM = "You are a helpful assistant."
DIRECT_SUFFIX = "Answer with the option's letter from the given choices directly."
TEXT_SUFFIX = "Answer with the text of the correct option from the given choices directly."
MODES: tuple[str, ...] = ("direct", "direct_text", "st_cot", "st_cot_text")
COT_SUFFIX = "Output the thinking process in <thinking></thinking> and \n final answer in <answer></answer> tags."
ST_SYSTEM = (
    "You are a video analysis assistant. Solve the question by a detailed spatial-temporal analysis of the "
    "video.\nYour response must contain (1) your reasoning inside <thinking></thinking> and (2) the final "
    "answer (the option letter) inside <answer></answer>.\nInside <thinking>, document the physical state "
    "at the start and at the end of the relevant segment exactly as:\n"
    "**Spatial State (Initial Frame):**\n- Camera Center: [x, y, z] or null\n- Object Center: [x, y, z] or null\n"
    "**Spatial State (Final Frame):**\n- Camera Center: [x, y, z] or null\n- Object Center: [x, y, z] or null\n"
    "Coordinates are metres in the camera frame of frame 0 (x right, y down, z forward). Write null when a "
    "value is not needed or cannot be inferred, then reason from these states to the answer."
)
ST_SYSTEM_TEXT = ST_SYSTEM.replace("the final answer (the option letter)", "the final answer (the text of the correct "
                                   "option)")
_ANSWER_LETTER = re.compile(r"<answer>\s*([A-Z])\s*</answer>\s*$")


def format_options(options: dict[str, Any], sep: str = ".") -> str:
    """``{"A": "1.2", …}`` → ``"A. 1.2\\nB. …"`` (``sep=":"`` gives VLM4D's ``A: text`` style)."""
    return "\n".join(f"{k}{sep} {options[k]}" for k in sorted(options))


def direct_user_text(question: str, options: dict[str, Any], suffix: str = DIRECT_SUFFIX) -> str:
    return f"These are frames of a video.\n{question}\nOptions:\n{format_options(options)}\n{suffix}"


def cot_user_text(question: str, options: dict[str, Any]) -> str:
    return f"{question}\nOptions:\n{format_options(options)}\n{COT_SUFFIX}"


def text_answer_cot(cot: str, options: dict[str, Any]) -> str:
    """An ST-CoT ending in ``<answer>X</answer>`` with the option's text as its answer instead of the letter; the
    " (X)" that ``cot.write_cot``'s synthesis line puts after the text is dropped too. Other shapes (no final
    letter answer, a letter that is no option) are returned unchanged.

    >>> text_answer_cot('<thinking>\\nthe answer is "Left" (B).\\n</thinking><answer>B</answer>', {"B": "Left"})
    '<thinking>\\nthe answer is "Left".\\n</thinking><answer>Left</answer>'
    """
    m = _ANSWER_LETTER.search(cot)
    if not m or m.group(1) not in options:
        return cot
    head = re.sub(rf" \({m.group(1)}\)\.(\s*</thinking>\s*)$", r".\1", cot[:m.start()])
    return f"{head}<answer>{options[m.group(1)]}</answer>"


def _chat(system: str, user: str, answer: str | None) -> list[dict]:
    msgs = [{"role": "system", "content": [{"type": "text", "text": system}]},
            {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": user}]}]
    if answer is not None:
        msgs.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return msgs


def messages(row: dict, mode: str = "direct", with_answer: bool = False) -> list[dict]:
    """Chat messages for one dataset row.

    mode: ``"direct"`` (answer = the letter), ``"direct_text"`` (answer = the correct option's text, e.g.
    "Left"; the scorer maps it back to its letter, :func:`answer.extract_choice` rule 6), ``"st_cot"``
    (answer = ``row["cot"]``, which must exist when ``with_answer``) or ``"st_cot_text"`` (that CoT with the
    option's text in ``<answer>``, :func:`text_answer_cot`; extract_choice rule 1 reads it back). ``with_answer
    =False`` gives the prompt only (generation, GRPO).

    ``direct_text`` and ``st_cot_text`` are tiny-profile levers, not the paper's protocol: they take option-letter
    binding (a skill a pretrained LLM brings, a random tiny model must first discover) out of what the model has
    to learn, while the question, the four shuffled options and the scoring of the chosen option stay the same.
    """
    if mode == "direct":
        return _chat(DEFAULT_SYSTEM, direct_user_text(row["question"], row["options"]),
                     row["answer"] if with_answer else None)
    if mode == "direct_text":
        return _chat(DEFAULT_SYSTEM, direct_user_text(row["question"], row["options"], TEXT_SUFFIX),
                     row["options"][row["answer"]] if with_answer else None)
    if mode == "st_cot":
        return _chat(ST_SYSTEM, cot_user_text(row["question"], row["options"]),
                     row["cot"] if with_answer else None)
    if mode == "st_cot_text":
        return _chat(ST_SYSTEM_TEXT, cot_user_text(row["question"], row["options"]),
                     text_answer_cot(row["cot"], row["options"]) if with_answer else None)
    raise ValueError(f"prompt mode must be one of {MODES}, got {mode!r}")
