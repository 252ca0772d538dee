"""The spatiotemporal reward of GRPO (paper §4.3, eqs. 4-8) and the released code's variant.

Every reward here has trl's signature ``f(completions, solution, **kwargs) -> list[float]``:

- ``completions``: one entry per rollout, a string or a chat-message list
  ``[{"role": "assistant", "content": "..."}]`` (``content`` may also be a list of ``{"type": "text"}`` parts);
- ``solution``: one entry per rollout, the release's RFT form — a one-element list holding
  ``{"answer": "B", "camera_center": [[x, y, z] | None, ...], "object_center": [...]}`` — or that dict itself
  (or its JSON text); centres are metres in the camera frame of frame 0, ``None`` where the question does not
  involve the entity (docs/FORMATS.md);
- optional ``options`` (per rollout ``{"A": "1.2", ...}``): handed to the shared answer parser.

Terms (values in [0, 1]; the rules of the release's ``ST-reward.py`` [R], paper.md §3.2):

- ``accuracy``: the paper's R_Acc (eq. 4, "the answer is right") decided by the answer parser shared with
  the benchmark scorer, ``answer.extract_choice(text, options)`` (the letter of the first ``<answer>`` block,
  else ``\\boxed{}``, an "answer is X" phrase, a bare letter, an option's text, a trailing letter), equal to the
  GT letter — so a reward of 1 means exactly "scored correct by 06_eval";
- ``accuracy_exact``: the release's rule — the stripped content of the first ``<answer>…</answer>`` (or the whole
  completion when there is none) string-equal to the GT letter;
- ``structure_format``: R_Stru_fmt — a ``<thinking>…</thinking>`` and an ``<answer>…</answer>`` block both exist;
- ``st_format``: R_ST_fmt — an ``Object Center:`` *and* a ``Camera Center:`` label are each followed by a
  bracketed value (so a ``null`` camera line loses it, as in the release);
- ``thinking_length``: the release's extra +0.1 of its format score: the thinking block, tags included, is
  longer than 20 characters (the tags alone are 21, so in effect "a thinking block exists"; kept as released);
- ``camera`` / ``object``: R_Cam / R_Obj (eq. 7) = exp(−(1/n) Σ_i ‖p_i − g_i‖₂) over the anchors, with the
  release's count/null rules (see :func:`center_score`).

Presets (:data:`PRESETS`, weights over those terms; :data:`REWARDS` holds the weighted sums):

- ``st`` — paper eq. 8: 0.5·Acc + 0.2·(0.5·Stru + 0.5·STfmt) + 0.3·(0.5·Cam + 0.5·Obj);
- ``st_code`` — the release: 0.6·AccExact + 0.2·(0.5·Stru + 0.4·STfmt + 0.1·Len) + 0.1·Cam + 0.1·Obj;
- ``acc`` — Table 3's "acc + format" ablation: the paper's weights with the ST term dropped,
  0.5·Acc + 0.2·(0.5·Stru + 0.5·STfmt) (maximum 0.7; GRPO's group normalisation makes the scale irrelevant).

>>> sol = [{"answer": "A", "camera_center": [None, None], "object_center": [None, None]}]
>>> [round(r, 6) for r in REWARDS["st"](["<thinking>...</thinking><answer>A</answer>", "A"], [sol, sol])]
[0.9, 0.8]

Deviations from the release (all only on malformed input; none changes a well-formed completion's score):

- numbers inside a centre bracket are parsed by a strict regex instead of ``ast.literal_eval``: an item that is
  not a plain decimal/scientific number (``nan``, ``inf``, ``True``, ``1_0``, nested brackets, expressions) is a
  parse error, which — as in the release — empties that completion's prediction list;
- a bracket is ``[`` up to the next ``]`` within :data:`MAX_BRACKET` characters (the release's ``\\[.*?\\]``
  with a length bound);
- completions are cut to :data:`MAX_CHARS` characters before scoring (~60× the longest allowed rollout), so a
  hostile 10 MB string scores in well under a second, and tag search uses ``str.find`` (linear, same
  first-match result as the release's non-greedy DOTALL regex).
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

from mllm4d.answer import extract_choice

MAX_CHARS = 1_000_000  # completions are truncated to this many characters before scoring
MAX_BRACKET = 256  # longest accepted "[x, y, z]" text, brackets excluded

_NUM = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_VEC_RE = re.compile(rf"\s*{_NUM}\s*(?:,\s*{_NUM}\s*)*,?\s*")  # full-match on the bracket's inside
_LABEL_RE = {
    "camera": re.compile(r"Camera Center:\s{0,64}\[([^\]]{0,%d})\]" % MAX_BRACKET),
    "object": re.compile(r"Object Center:\s{0,64}\[([^\]]{0,%d})\]" % MAX_BRACKET),
}
_SOLUTION_KEY = {"camera": "camera_center", "object": "object_center"}


# ----------------------------------------------------------------------------------------------------------
# Parsing helpers (never raise, linear time)
# ----------------------------------------------------------------------------------------------------------
def completion_text(completion: Any) -> str:
    """The assistant text of one completion (string or chat messages), cut to :data:`MAX_CHARS`.

    >>> completion_text([{"role": "assistant", "content": "<answer>B</answer>"}])
    '<answer>B</answer>'
    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}])
    'hi'
    """
    if isinstance(completion, list):  # chat form: concatenate the assistant turns
        parts = []
        for msg in completion:
            content = msg.get("content", "") if isinstance(msg, dict) else msg
            if isinstance(content, list):
                content = "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
            parts.append(content if isinstance(content, str) else "")
        completion = "".join(parts)
    if not isinstance(completion, str):
        return ""
    return completion[:MAX_CHARS]


def normalize_solution(solution: Any) -> dict:
    """The solution dict from the release's one-element list, the bare dict or its JSON text; ``{}`` if unusable.

    >>> normalize_solution([{"answer": "A"}])
    {'answer': 'A'}
    >>> normalize_solution('{"answer": "C"}')
    {'answer': 'C'}
    >>> normalize_solution(None)
    {}
    """
    if isinstance(solution, str) and len(solution) <= MAX_CHARS:
        try:
            solution = json.loads(solution)
        except ValueError:
            return {}
    if isinstance(solution, (list, tuple)):
        solution = solution[0] if solution else {}
    return solution if isinstance(solution, dict) else {}


def _block(text: str, tag: str) -> tuple[int, int] | None:
    """(start, end) of the first ``<tag>…</tag>`` (tags included), as the release's non-greedy DOTALL regex."""
    i = text.find(f"<{tag}>")
    if i < 0:
        return None
    j = text.find(f"</{tag}>", i + len(tag) + 2)
    return None if j < 0 else (i, j + len(tag) + 3)


def answer_block(text: str) -> str | None:
    """Content of the first ``<answer>…</answer>``, or None.

    >>> answer_block("<thinking>x</thinking><answer> B </answer>")
    ' B '
    """
    span = _block(text, "answer")
    return None if span is None else text[span[0] + 8: span[1] - 9]


def parse_centers(text: str, which: str) -> list[list[float]] | None:
    """Predicted centres after each ``Camera Center:`` (``which="camera"``) or ``Object Center:`` label.

    Returns the bracketed vectors in order of appearance, dropping any whose text contains ``null`` (release
    rule); None when any remaining bracket fails to parse (the release then treats the list as empty).

    >>> parse_centers("Camera Center: [0, 0.5, -1e-1] ... Camera Center: [null]", "camera")
    [[0.0, 0.5, -0.1]]
    >>> parse_centers("Object Center: [1, nan, 2]", "object") is None
    True
    """
    out = []
    for m in _LABEL_RE[which].finditer(text):
        inner = m.group(1)
        if "null" in inner:
            continue
        if not _VEC_RE.fullmatch(inner):
            return None
        out.append([float(x) for x in re.findall(_NUM, inner)])
    return out


def gt_centers(solution: Any, which: str) -> list[list[float]]:
    """Non-null GT centres of ``which`` ("camera" | "object") from a solution, in anchor order."""
    raw = normalize_solution(solution).get(_SOLUTION_KEY[which]) or []
    if not isinstance(raw, (list, tuple)):
        return []
    # a scalar where a vector belongs becomes a 1-vector, so it fails the shape check instead of raising
    return [list(c) if isinstance(c, (list, tuple)) else [c] for c in raw if c is not None]


def center_score(pred: list[list[float]] | None, gt: list[list[float]]) -> float:
    """exp(−mean_i ‖p_i − g_i‖₂) (paper eq. 7) with the release's rules.

    - GT empty (question does not involve the entity): 1.0 iff no centre is predicted, else 0.0;
    - unparsable prediction (``pred is None``): treated as no prediction;
    - count or vector-shape mismatch: 0.0; non-finite error: 0.0.

    >>> center_score([[0, 0, 0], [0, 0, 1]], [[0, 0, 0], [0, 0, 1]])
    1.0
    >>> round(center_score([[0, 0, 2]], [[0, 0, 0]]), 4)
    0.1353
    >>> center_score([], []), center_score([[1, 2, 3]], []), center_score([[1, 2]], [[1, 2, 3]])
    (1.0, 0.0, 0.0)
    """
    pred = pred or []
    if not gt:
        return 1.0 if not pred else 0.0
    if len(pred) != len(gt) or any(len(p) != len(g) for p, g in zip(pred, gt)):
        return 0.0
    try:
        err = sum(math.dist([float(x) for x in p], [float(x) for x in g]) for p, g in zip(pred, gt)) / len(gt)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return math.exp(-err) if math.isfinite(err) else 0.0


# ----------------------------------------------------------------------------------------------------------
# Per-completion terms: (text, solution dict, options) -> float
# ----------------------------------------------------------------------------------------------------------
def _acc(text: str, sol: dict, options: Any) -> float:
    gt = sol.get("answer")
    return float(isinstance(gt, str) and gt != "" and
                 extract_choice(text, options if isinstance(options, dict) else None) == gt.strip())


def _acc_exact(text: str, sol: dict, options: Any) -> float:
    inner = answer_block(text)
    return float((inner if inner is not None else text).strip() == sol.get("answer"))


def _structure(text: str, sol: dict, options: Any) -> float:
    return float(_block(text, "thinking") is not None and _block(text, "answer") is not None)


def _st_format(text: str, sol: dict, options: Any) -> float:
    return float(all(_LABEL_RE[w].search(text) is not None for w in ("object", "camera")))


def _thinking_length(text: str, sol: dict, options: Any) -> float:
    span = _block(text, "thinking")
    return float(span is not None and span[1] - span[0] > 20)


def _camera(text: str, sol: dict, options: Any) -> float:
    return center_score(parse_centers(text, "camera"), gt_centers(sol, "camera"))


def _object(text: str, sol: dict, options: Any) -> float:
    return center_score(parse_centers(text, "object"), gt_centers(sol, "object"))


TERMS: dict[str, Callable[[str, dict, Any], float]] = {
    "accuracy": _acc, "accuracy_exact": _acc_exact, "structure_format": _structure, "st_format": _st_format,
    "thinking_length": _thinking_length, "camera": _camera, "object": _object,
}

# Effective weights per term (the nested λ's of eq. 8 multiplied out).
PRESETS: dict[str, dict[str, float]] = {
    "st": {"accuracy": 0.5, "structure_format": 0.1, "st_format": 0.1, "camera": 0.15, "object": 0.15},
    "st_code": {"accuracy_exact": 0.6, "structure_format": 0.1, "st_format": 0.08, "thinking_length": 0.02,
                "camera": 0.1, "object": 0.1},
    "acc": {"accuracy": 0.5, "structure_format": 0.1, "st_format": 0.1},
}


def reward_terms(completion: Any, solution: Any, options: Any = None) -> dict[str, float]:
    """Every term (:data:`TERMS`) for one completion, plus each preset's total under ``total_<preset>``.

    >>> sol = [{"answer": "B", "camera_center": [[0, 0, 0], [0, 0, 1]], "object_center": [None, None]}]
    >>> txt = ("<thinking>Camera Center: [0, 0, 0] Object Center: null ... Camera Center: [0, 0, 1]</thinking>"
    ...        "<answer>B</answer>")
    >>> t = reward_terms(txt, sol)
    >>> t["accuracy"], t["structure_format"], t["st_format"], t["camera"], t["object"]
    (1.0, 1.0, 0.0, 1.0, 1.0)
    >>> round(t["total_st"], 3), round(t["total_st_code"], 3)
    (0.9, 0.92)
    """
    text, sol = completion_text(completion), normalize_solution(solution)
    out = {name: f(text, sol, options) for name, f in TERMS.items()}
    for preset, weights in PRESETS.items():
        out[f"total_{preset}"] = sum(w * out[k] for k, w in weights.items())
    return out


# ----------------------------------------------------------------------------------------------------------
# trl-signature rewards
# ----------------------------------------------------------------------------------------------------------
def _batched(term: str) -> Callable[..., list[float]]:
    f = TERMS[term]

    def reward(completions: list, solution: list, options: list | None = None, **kwargs: Any) -> list[float]:
        opts = options if options is not None else [None] * len(completions)
        return [f(completion_text(c), normalize_solution(s), o) for c, s, o in zip(completions, solution, opts)]

    reward.__name__ = reward.__qualname__ = term  # trl logs it as rewards/<term>/mean
    reward.__doc__ = f"trl reward: the ``{term}`` term per completion (see the module docstring)."
    return reward


def _weighted(preset: str) -> Callable[..., list[float]]:
    weights = PRESETS[preset]

    def reward(completions: list, solution: list, options: list | None = None, **kwargs: Any) -> list[float]:
        opts = options if options is not None else [None] * len(completions)
        out = []
        for c, s, o in zip(completions, solution, opts):
            text, sol = completion_text(c), normalize_solution(s)
            out.append(sum(w * TERMS[k](text, sol, o) for k, w in weights.items()))
        return out

    reward.__name__ = reward.__qualname__ = f"{preset}_reward"
    reward.__doc__ = f"trl reward: the ``{preset}`` preset, Σ w·term with w = {weights}."
    return reward


acc_reward = _batched("accuracy")
acc_exact_reward = _batched("accuracy_exact")
structure_format_reward = _batched("structure_format")
st_format_reward = _batched("st_format")
thinking_length_reward = _batched("thinking_length")
camera_reward = _batched("camera")
object_reward = _batched("object")
TERM_REWARDS: dict[str, Callable[..., list[float]]] = {
    "accuracy": acc_reward, "accuracy_exact": acc_exact_reward, "structure_format": structure_format_reward,
    "st_format": st_format_reward, "thinking_length": thinking_length_reward, "camera": camera_reward,
    "object": object_reward,
}

REWARDS: dict[str, Callable[..., list[float]]] = {name: _weighted(name) for name in PRESETS}  # -p reward <key>


def trainer_rewards(preset: str) -> tuple[list[Callable[..., list[float]]], list[float]]:
    """(reward_funcs, reward_weights) for trl's GRPOTrainer: every term, weighted by ``PRESETS[preset]``.

    Terms outside the preset get weight 0, so trl logs all of them (``rewards/<term>/mean``) while the trained
    reward Σ w·term equals ``REWARDS[preset]`` exactly.

    >>> funcs, weights = trainer_rewards("acc")
    >>> [f.__name__ for f, w in zip(funcs, weights) if w]
    ['accuracy', 'structure_format', 'st_format']
    """
    if preset not in PRESETS:
        raise KeyError(f"reward preset must be one of {sorted(PRESETS)}, got {preset!r}")
    return list(TERM_REWARDS.values()), [PRESETS[preset].get(k, 0.0) for k in TERM_REWARDS]


# ----------------------------------------------------------------------------------------------------------
# Hand-written examples (the notebook's table; also a readable spec of the rules)
# ----------------------------------------------------------------------------------------------------------
_SOL = {"answer": "B", "camera_center": [[0.0, 0.0, 0.0], [0.0, 0.0, 1.2]], "object_center": [None, None]}
_STATE = ("**Spatial State (Initial Frame):**\n- Camera Center: {c0}\n- Object Center: {o0}\n"
          "**Spatial State (Final Frame):**\n- Camera Center: {c1}\n- Object Center: {o1}\n")
EXAMPLES: list[tuple[str, str, dict]] = [
    ("correct, object line null", "<thinking>" + _STATE.format(c0="[0.0, 0.0, 0.0]", o0="null",
                                                               c1="[0.0, 0.0, 1.2]", o1="null")
     + "The camera moved about 1.2 m forward.</thinking><answer>B</answer>", _SOL),
    ("centres 0.3 m off", "<thinking>" + _STATE.format(c0="[0.3, 0.0, 0.0]", o0="null", c1="[0.0, 0.0, 0.9]",
                                                       o1="null") + "</thinking><answer>B</answer>", _SOL),
    ("wrong letter", "<thinking>" + _STATE.format(c0="[0.0, 0.0, 0.0]", o0="null", c1="[0.0, 0.0, 1.2]",
                                                  o1="null") + "</thinking><answer>C</answer>", _SOL),
    ("bare letter", "B", _SOL),
    ("letter + option text", "<thinking>forward</thinking><answer>B. 1.2</answer>", _SOL),
    ("invented object centre", "<thinking>" + _STATE.format(c0="[0.0, 0.0, 0.0]", o0="[1.0, 0.0, 3.0]",
                                                            c1="[0.0, 0.0, 1.2]", o1="null")
     + "</thinking><answer>B</answer>", _SOL),
    ("only one camera centre", "<thinking>Camera Center: [0.0, 0.0, 0.0]</thinking><answer>B</answer>", _SOL),
    ("unparsable centre", "<thinking>Camera Center: [0, 0, zero] Camera Center: [0, 0, 1.2]</thinking>"
     "<answer>B</answer>", _SOL),
]


def terms_table(examples: list[tuple[str, str, dict]] = EXAMPLES):
    """pandas DataFrame: one row per (name, completion, solution) example, one column per term and preset."""
    import pandas as pd

    rows = {name: reward_terms(text, sol) for name, text, sol in examples}
    return pd.DataFrame.from_dict(rows, orient="index").round(3)
