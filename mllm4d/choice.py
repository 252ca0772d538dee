"""Constrained multiple choice: pick one of a question's four options from a model's scores instead of parsing
free text (06_eval ``choice`` parameter; lm-eval-harness style).

- :func:`letter_choices` (``choice: letter_logits``): the option letter whose token has the highest logit at
  the first answer position. For the untrained base model, which rarely *generates* a letter: restricted to the
  letters it shows its answer-position prior (the constant-letter baseline a base row should sit at).
- :func:`option_choices` (``choice: option_loglik``): the option whose *text*, as the whole assistant answer
  (text + ``<|im_end|>``), has the highest summed log-probability. For models trained on the ``direct_text``
  target (the tiny profile's SFT): free generation of a numeric answer ("2.3") often produces a value that is
  none of the four options and scores 0 however close it is (measured: 37 of 42 Object-Camera Abs. Dist.
  answers were empty on the tiny SFT model); scoring the four texts asks the same question, "which option does
  the model believe", without the format failure. Sum, not mean: the sequence probability greedy decoding
  approximates; the closing ``<|im_end|>`` is scored so a prefix ("Not") cannot win for a longer text
  ("Not moving").

- :func:`reasoned_choices` (``choice: answer_loglik``, ST-CoT prompts): the model first generates its reasoning
  (greedy, as ``generate``); the reply is cut at its first ``<answer>`` (``</thinking><answer>`` appended when
  it never closed its thinking) and each option (its text for ``st_cot_text``, its letter for ``st_cot``) is
  scored as the answer that follows, with ``</answer><|im_end|>``. The reasoning is the same prefix in all four
  replies, so the choice is the answer the model believes *after its own reasoning*. For the tiny cold-start and
  GRPO models, whose replies almost never close a parsable ``<answer>`` block (0-5 % parsed on the tiny bench).

Deviation (all three): the paper and the release parse generated text. The tiny profile uses the first two for
its base, SFT, compute-matched and blind rows; its ST-CoT rows are generated and parsed (``answer_loglik`` is an
option, docs/TRAINING.md "Fifth round"; its ``metrics.json`` keeps the parsed-text score, ``generated_accuracy``).
Cost: ``option_choices`` scores four sequences per item (the video processed once), letter choice one,
``reasoned_choices`` a generation plus four reasoning-length sequences.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from . import collate, models


def letter_choices(model: Any, processor: Any, messages: Sequence[list[dict]], frames: Sequence[np.ndarray],
                   letters: Sequence[str] = ("A", "B", "C", "D"), batch_size: int = 8, fps: float = 2.0) -> list[str]:
    """The letter (of ``letters``) with the highest logit at the first answer position, per (chat, video).

    messages: prompt-only chats (no assistant turn); frames: one (T,H,W,3) uint8 video per chat.
    """
    import torch
    tok = processor.tokenizer
    ids = [tok.encode(x, add_special_tokens=False)[0] for x in letters]
    out: list[str] = []
    for s in range(0, len(messages), batch_size):
        batch = models.build_inputs(processor, messages[s:s + batch_size], frames[s:s + batch_size], fps=fps,
                                    add_generation_prompt=True, padding_side="left").to(model.device)
        with torch.no_grad():
            logits = model(**batch).logits[:, -1, ids]
        out += [letters[i] for i in logits.argmax(-1).tolist()]
    return out


def option_logprobs(model: Any, processor: Any, messages: Sequence[list[dict]], frames: Sequence[np.ndarray],
                    answers: Sequence[str], batch_size: int = 8, fps: float = 2.0) -> np.ndarray:
    """(N,) float64: summed log-probability (nats) of ``answers[k]`` as the assistant reply to ``messages[k]``
    with video ``frames[k]``; the scored tokens are those SFT supervises (text, ``<|im_end|>``, newline:
    :func:`collate.mask_labels`)."""
    import torch
    header = collate.assistant_header_ids(processor.tokenizer)
    videos: dict[int, tuple[dict, str]] = {}   # each distinct video is processed once (4 options share one)

    def video(f: np.ndarray) -> tuple[dict, str]:
        if id(f) not in videos:
            videos[id(f)] = collate.process_video(processor, f, fps)
        return videos[id(f)]

    out = []
    for s in range(0, len(messages), batch_size):
        chats = [list(m) + [{"role": "assistant", "content": [{"type": "text", "text": a}]}]
                 for m, a in zip(messages[s:s + batch_size], answers[s:s + batch_size])]
        texts = [processor.apply_chat_template(c, tokenize=False) for c in chats]
        batch = collate.encode_cached(processor, texts, [video(f) for f in frames[s:s + batch_size]])
        batch = {k: v.to(model.device) for k, v in batch.items()}
        labels = collate.mask_labels(batch["input_ids"], batch["attention_mask"], header)[:, 1:]
        with torch.no_grad():
            logp = torch.log_softmax(model(**batch).logits[:, :-1].float(), -1)
        keep = labels != collate.IGNORE
        tok_lp = logp.gather(-1, labels.clamp(min=0)[..., None])[..., 0]
        out += (tok_lp * keep).sum(-1).tolist()
    return np.asarray(out, np.float64)


def _best_letters(flat: Sequence[tuple[int, str, str]], scores: np.ndarray, n: int) -> list[str]:
    """Per item k < n, the letter of its highest-scoring (k, letter, _) entry; ties go to the earlier letter."""
    best: dict[int, tuple[float, str]] = {}
    for (k, letter, _), v in zip(flat, scores):
        if k not in best or v > best[k][0]:
            best[k] = (v, letter)
    return [best[k][1] for k in range(n)]


def option_choices(model: Any, processor: Any, messages: Sequence[list[dict]], frames: Sequence[np.ndarray],
                   options: Sequence[dict], batch_size: int = 8, fps: float = 2.0) -> list[str]:
    """The letter of the option (``options[k]``: ``{"A": text, …}``) whose text scores highest under
    :func:`option_logprobs`, per (chat, video); ties go to the earlier letter. ``batch_size`` counts items
    (``4 × batch_size`` sequences per forward)."""
    flat = [(k, letter, str(text)) for k, o in enumerate(options) for letter, text in o.items()]
    lp = option_logprobs(model, processor, [messages[k] for k, _, _ in flat], [frames[k] for k, _, _ in flat],
                         [t for _, _, t in flat], batch_size=4 * batch_size, fps=fps)
    return _best_letters(flat, lp, len(options))


def reasoning_prefix(response: str) -> str:
    """A generated ST-CoT reply cut to its reasoning and opened for the answer: ``<thinking>…</thinking><answer>``.

    >>> reasoning_prefix("<thinking>x</thinking><answer>B</answer>"), reasoning_prefix("<thinking>x [1.")
    ('<thinking>x</thinking><answer>', '<thinking>x [1.</thinking><answer>')
    """
    head = response.split("<answer>", 1)[0]
    end = head.find("</thinking>")
    head = head[:end + len("</thinking>")] if end >= 0 else head.rstrip() + "</thinking>"
    return head + "<answer>"


def reasoned_choices(model: Any, processor: Any, messages: Sequence[list[dict]], frames: Sequence[np.ndarray],
                     options: Sequence[dict], responses: Sequence[str], text_answers: bool, batch_size: int = 8,
                     fps: float = 2.0) -> list[str]:
    """The letter of the option that scores highest (:func:`option_logprobs`) as the answer after the model's own
    reasoning ``responses[k]`` (:func:`reasoning_prefix`); the option's text when ``text_answers`` (the
    ``st_cot_text`` target), else its letter. Ties go to the earlier letter."""
    flat = [(k, letter, f"{reasoning_prefix(responses[k])}{text if text_answers else letter}</answer>")
            for k, o in enumerate(options) for letter, text in o.items()]
    lp = option_logprobs(model, processor, [messages[k] for k, _, _ in flat], [frames[k] for k, _, _ in flat],
                         [a for _, _, a in flat], batch_size=4 * batch_size, fps=fps)
    return _best_letters(flat, lp, len(options))
