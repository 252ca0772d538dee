"""Optional LLM judge (off by default): an OpenAI-compatible ``/chat/completions`` endpoint, standard library only.

The release scores VLM4D with Qwen3-VL-8B-Instruct as a text-only judge (``evaluation/evaluation.py``,
paper.md §5.1 Step 3); VLM4D itself used OpenAI o4-mini. The judge gets the question, the options, the GT
answer *text* and the model's response, and returns JSON ``{"extracted_answer": "A: text" | "No Valid Answer",
"correct": bool}``; the JSON is taken from the first ``{`` to the last ``}``, and an unparsable reply counts as
incorrect (release rule). The prompts below paraphrase the release's (its exact wording is not reproduced).

This repository's default scorer is the deterministic :func:`answer.extract_choice` (agreement with VLM4D's
judge: docs/EVALUATION.md); the judge exists to cross-check it on free-form responses. Any OpenAI-compatible
server works, e.g. a local ``vllm serve Qwen/Qwen3-VL-8B-Instruct`` at ``http://localhost:8000/v1``. The API
key, if the server needs one, is read from the environment variable named by ``api_key_env``.

>>> fake = lambda url, payload, headers, timeout: {"choices": [{"message": {"content":
...     'Sure: {"extracted_answer": "B: right", "correct": true}'}}]}
>>> judge("Which way?", {"A": "left", "B": "right"}, "right", "It goes right.", url="http://x", model="m",
...       transport=fake)["letter"]
'B'
"""
from __future__ import annotations

import json
import os
import re
import urllib.request
from typing import Any, Callable

SYSTEM = ("You grade answers to multiple-choice questions about videos. Read the model's response, extract the "
          "option it finally chooses, and compare it with the ground-truth answer. Reply with JSON only: "
          '{"extracted_answer": "<letter>: <option text>" or "No Valid Answer", "correct": true or false}. '
          "A response that chooses no option, or several, has no valid answer and is not correct.")
MAX_RESPONSE_CHARS = 20_000  # longer responses are cut (head and tail kept) before they are sent

Transport = Callable[[str, dict, dict, float], dict]


def user_prompt(question: str, choices: dict, gt_text: Any, response: str) -> str:
    """The release's judge user-prompt layout (paper.md §5.1 Step 3).

    >>> print(user_prompt("Q?", {"A": "x", "B": 2}, 2, "B"))
    Question: Q?
    <BLANKLINE>
    Options:
    A: x
    B: 2
    <BLANKLINE>
    Ground Truth Answer: 2
    <BLANKLINE>
    Model Response to the Question: B
    """
    if len(response) > MAX_RESPONSE_CHARS:
        half = MAX_RESPONSE_CHARS // 2
        response = response[:half] + "\n[…]\n" + response[-half:]
    opts = "\n".join(f"{k}: {choices[k]}" for k in sorted(choices))
    return (f"Question: {question}\n\nOptions:\n{opts}\n\nGround Truth Answer: {gt_text}\n\n"
            f"Model Response to the Question: {response}")


def parse_verdict(text: Any) -> dict | None:
    """``{"extracted_answer": str, "correct": bool}`` from a judge reply, or None (counts as incorrect).

    >>> parse_verdict('ok {"extracted_answer": "No Valid Answer", "correct": false} done')
    {'extracted_answer': 'No Valid Answer', 'correct': False}
    >>> parse_verdict("no json") is None, parse_verdict('{"correct": "yes"}') is None
    (True, True)
    """
    if not isinstance(text, str):
        return None
    i, j = text.find("{"), text.rfind("}")
    if i < 0 or j <= i:
        return None
    try:
        obj = json.loads(text[i:j + 1])
    except ValueError:
        return None
    if not (isinstance(obj, dict) and isinstance(obj.get("extracted_answer"), str)
            and isinstance(obj.get("correct"), bool)):
        return None
    return {"extracted_answer": obj["extracted_answer"], "correct": obj["correct"]}


def http_transport(url: str, payload: dict, headers: dict, timeout: float) -> dict:
    """POST ``payload`` as JSON to ``<url>/chat/completions`` and return the decoded JSON reply."""
    req = urllib.request.Request(url.rstrip("/") + "/chat/completions", data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json", **headers}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 -- the user-configured endpoint
        return json.loads(r.read().decode("utf-8"))


def judge(question: str, choices: dict, gt_text: Any, response: str, *, url: str, model: str,
          transport: Transport = http_transport, api_key_env: str = "OPENAI_API_KEY", timeout: float = 120.0,
          max_tokens: int = 256) -> dict:
    """Ask the judge about one response. Greedy (temperature 0), ``max_tokens`` 256 as the release.

    Returns ``{"extracted_answer", "correct", "letter", "raw", "error"}``; ``letter`` is the extracted answer's
    option letter ("" for "No Valid Answer"); transport errors and unparsable replies give ``correct=False``
    with ``error`` set (never raises for one bad item).
    """
    payload = {"model": model, "temperature": 0.0, "max_tokens": max_tokens,
               "messages": [{"role": "system", "content": SYSTEM},
                            {"role": "user", "content": user_prompt(question, choices, gt_text, response)}]}
    key = os.environ.get(api_key_env, "") if api_key_env else ""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        reply = transport(url, payload, headers, timeout)
        raw = reply["choices"][0]["message"]["content"]
    except Exception as e:  # noqa: BLE001 -- network/server failures are per-item results, not crashes
        return {"extracted_answer": "", "correct": False, "letter": "", "raw": "", "error": f"{type(e).__name__}: {e}"}
    verdict = parse_verdict(raw)
    if verdict is None:
        return {"extracted_answer": "", "correct": False, "letter": "", "raw": raw, "error": "unparsable reply"}
    m = re.match(r"^\s*\(?([A-Z])\)?\s*[:.)]", verdict["extracted_answer"])
    letter = m.group(1) if m and m.group(1) in {str(k).upper() for k in choices} else ""
    return {**verdict, "letter": letter, "raw": raw, "error": ""}
