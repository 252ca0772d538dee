"""ST-CoT reasoning for the cold-start set: written from geometry, scored and filtered by Alg. 1 (paper §3, §8.3).

A cold-start target (paper Fig. 11, paper.md §1.4 and §3.1) is
``<thinking>`` the five ST-CoT steps ``</thinking><answer>X</answer>``:

1. **Objective**: what is asked, anchored to ``frame_i`` → ``frame_j``;
2. **start-frame perception** + ``**Spatial State (Initial Frame):**`` with ``- Camera Center: [x, y, z]`` and
   ``- Object Center: [x, y, z]`` lines (``null`` when the question does not involve that entity);
3. **temporal progression**: visual cues (apparent size change, parallax, drift across the frame, direction),
   each derived from the geometry below;
4. **end-frame perception** + ``**Spatial State (Final Frame):**``;
5. **synthesis**: "Given that we observed …, the only plausible value among the options is …" (Fig. 11 rule 3).

The Spatial State lines print the row's ``solution`` (the release's RFT schema: index 0 = start anchor, 1 = end
anchor, camera frame of frame 0, metres), so the lines parse with the ST-reward's rules
(``reward.parse_centers``: a label followed by a bracketed vector; ``null`` otherwise). The narrative cues use the
full :class:`Geometry` (both entities at both frames, and the camera rotations), which the dataset builds from the
clip's 4D metadata.

Teachers (the dict :data:`TEACHERS`; signature ``teacher(row, geom, rng, cfg) -> str``):

- ``"geometric"`` (default, local): a **stand-in for Gemini-2.5-Pro** (paper Alg. 1 step 2). It writes the CoT
  above from the geometry, adds Gaussian noise of a per-candidate scale ``U(0, 2)·noise_m`` to the printed
  centres and answers a wrong option with probability ``wrong_prob``, so candidates differ in ST-reward and the
  filter has something to reject. It is *not* a language model: its prose comes from fixed templates.
- ``"openai"``: any OpenAI-compatible ``/chat/completions`` endpoint (urllib only; off by default). The prompt
  follows Fig. 11's structure (role, mandatory rules, sensor log with nulls, internal target) and asks for
  ``{"chain_of_thought": "...", "answer": "X"}``; see :func:`openai_teacher`.

Filter (:func:`alg1_select`, paper Alg. 1): per scenario s, τ_s = mean over items of the item's max reward; an
item is kept iff its max ≥ τ_s and > 0, and **only its best path** is kept (the prose: "7000 samples", one per
item). Deviation: Alg. 1's pseudocode keeps every path with r ≥ τ_s (paper.md §1.4, §7 item 6); we follow the
prose so each item appears once. Ties between paths go to the lowest candidate index.

Deviations: the Fig. 11 ban on arithmetic in the text is kept (no "because the X-coordinate changed"), but the
geometric teacher states perceived magnitudes ("about 1.2 m"), as Fig. 12-14's released CoTs do. Coordinates are
printed with 3 decimals (Fig. 17 prints 4).
"""
from __future__ import annotations

import json
import math
import os
import re
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from . import prompts
# the 7 slices of paper Fig. 7 = the cold-start scenarios of §8.3 (re-exported for dataset.py)
from .solver import SCENARIOS  # noqa: F401

_AXIS_WORDS = (("right", "left"), ("down", "up"), ("forward", "backward"))  # OpenCV +X, +Y, +Z


def scenario(subtask: str, variant: str | None = None) -> str:
    """Cold-start / SFT slice key: the subtask, split by variant for ``ocrdir`` (``lateral``/``longitudinal``)."""
    return f"{subtask}-{variant}" if subtask == "ocrdir" and variant else subtask


@dataclass(frozen=True, eq=False)
class Geometry:
    """What the teacher "sees", in the camera frame of frame 0 (OpenCV axes, metres).

    cam: (2,3) camera centre at the start/end anchor. obj: (2,3) object centre at the start/end anchor, or None
    for camera-only questions (rows may be NaN where the object was not observed). rot: (2,3,3) camera-to-frame-0
    rotations at the two anchors, or None (cues that need them are then skipped).
    """

    cam: np.ndarray
    obj: np.ndarray | None = None
    rot: np.ndarray | None = None


def geometry_from_meta(meta: Any, frame_i: int, frame_j: int, obj: int | None) -> Geometry:
    """:class:`Geometry` of frames (i, j) and object index ``obj`` (None or −1: camera only) from a ``clips.ClipMeta``.

    X_0 = R_0ᵀ (X_w − t_0) with ``camera2world[0] = [R_0 | t_0]`` (camera-to-world, FORMATS.md).
    """
    c2w = np.asarray(meta.camera2world, float)
    R0, t0 = c2w[0, :, :3], c2w[0, :, 3]
    idx = [int(frame_i), int(frame_j)]
    cam = (c2w[idx, :, 3] - t0) @ R0
    rot = np.einsum("ba,tbc->tac", R0, c2w[idx, :, :3])
    o = None if obj is None or int(obj) < 0 else (np.asarray(meta.obj_centre, float)[idx, int(obj)] - t0) @ R0
    return Geometry(cam=cam, obj=o, rot=rot)


def geometry_from_solution(solution: dict) -> Geometry:
    """Fallback :class:`Geometry` from a row's ``solution`` alone (null entries become NaN; no rotations)."""
    def arr(key: str) -> np.ndarray | None:
        vals = solution.get(key) or [None, None]
        if all(v is None for v in vals):
            return None
        return np.array([[np.nan] * 3 if v is None else v for v in vals], float)
    cam = arr("camera_center")
    return Geometry(cam=np.full((2, 3), np.nan) if cam is None else cam, obj=arr("object_center"))


# ----------------------------------------------------------------------------------------------------------
# Visual cues (pure functions of the geometry)
# ----------------------------------------------------------------------------------------------------------
def direction_word(v: np.ndarray) -> str:
    """Dominant axis of a frame-0 vector as a word (``right``/``left``/``down``/``up``/``forward``/``backward``)."""
    a = int(np.argmax(np.abs(v)))
    return _AXIS_WORDS[a][0 if v[a] >= 0 else 1]


def _in_cam_i(geom: Geometry, v: np.ndarray) -> np.ndarray:
    """A frame-0 displacement in the start camera's axes (the solver's R_iᵀ(·) convention), if rotations are known."""
    return v if geom.rot is None else geom.rot[0].T @ v


def _fmt_vec(v: Any) -> str:
    if v is None or not np.all(np.isfinite(v)):
        return "null"
    return "[" + ", ".join(f"{float(x):.3f}" for x in v) + "]"


def _camera_cue(geom: Geometry) -> str:
    d = geom.cam[1] - geom.cam[0]
    dist = float(np.linalg.norm(d))
    if not np.isfinite(dist) or dist < 0.05:
        return "The background stays nearly fixed across the segment, so the camera barely translates."
    w = direction_word(_in_cam_i(geom, d))
    opposite = {"right": "left", "left": "right", "up": "down", "down": "up"}
    if w in opposite:
        cue = (f"near structures slide {opposite[w]} across the frame faster than the distant background "
               f"(motion parallax), the signature of the camera moving {w}")
    elif w == "forward":
        cue = "the scene expands outward from the image centre and surfaces grow larger, so the camera moves forward"
    else:
        cue = ("the scene contracts toward the image centre and more of the surroundings enter the view, so the camera "
               "moves backward")
    return f"Over the segment {cue}; the accumulated parallax corresponds to roughly {dist:.1f} m of travel."


def _range(geom: Geometry, k: int) -> float:
    """Camera-object distance at anchor k (NaN when either is unknown)."""
    if geom.obj is None:
        return float("nan")
    return float(np.linalg.norm(geom.obj[k] - geom.cam[k]))


def _bearing(geom: Geometry, k: int) -> str:
    """Where the object appears in the image at anchor k, from its position in that camera's frame."""
    if geom.obj is None or geom.rot is None or not np.all(np.isfinite(geom.obj[k])):
        return ""
    p = geom.rot[k].T @ (geom.obj[k] - geom.cam[k])
    if p[2] <= 0:
        return "behind the camera, out of view"
    u = p[0] / p[2]
    side = "near the centre of the frame" if abs(u) < 0.1 else ("right of centre" if u > 0 else "left of centre")
    return f"about {p[2]:.1f} m ahead, {side}"


def _object_cues(geom: Geometry, name: str) -> list[str]:
    cues = []
    r0, r1 = _range(geom, 0), _range(geom, 1)
    if np.isfinite(r0) and np.isfinite(r1) and r1 > 0:
        s = r0 / r1  # apparent size scales with inverse distance
        if s > 1.05:
            cues.append(f"{name} grows in the frame (about {s:.1f}x its initial apparent size), so it comes closer "
                        "to the camera")
        elif s < 0.95:
            cues.append(f"{name} shrinks in the frame (to about {s:.1f}x its initial apparent size), so it recedes "
                        "from the camera")
        else:
            cues.append(f"{name} keeps about the same apparent size, so its distance to the camera hardly changes")
    if geom.obj is not None and np.all(np.isfinite(geom.obj)):
        d = geom.obj[1] - geom.obj[0]
        dist = float(np.linalg.norm(d))
        if dist < 0.05:
            cues.append(f"against the static background {name} holds its place in the room")
        else:
            cues.append(f"relative to the static background {name} travels {direction_word(_in_cam_i(geom, d))} "
                        f"by roughly {dist:.1f} m")
    b0, b1 = _bearing(geom, 0), _bearing(geom, 1)
    if b0 and b1 and b0 != b1:
        cues.append(f"its image position drifts from {b0.split(', ')[-1]} to {b1.split(', ')[-1]}")
    return cues


def _objective(row: dict) -> str:
    return (f"The question asks: \"{row['question']}\" The relevant segment runs from frame {row['frame_i']} "
            f"to frame {row['frame_j']}; I anchor my analysis on these two frames.")


def _state(label: str, cam: Any, obj: Any) -> str:
    return f"**Spatial State ({label} Frame):**\n- Camera Center: {_fmt_vec(cam)}\n- Object Center: {_fmt_vec(obj)}"


def _event(row: dict, geom: Geometry) -> str:
    """The observed event the synthesis cites (Fig. 11 rule 3), per subtask."""
    sub, cam, obj = row["subtask"], geom.cam, geom.obj
    if sub in ("cad", "crd") or obj is None or not np.all(np.isfinite(obj)):
        d = cam[1] - cam[0]
        if not np.all(np.isfinite(d)):
            return "the motion cues across the segment"
        return f"the camera travelling {direction_word(_in_cam_i(geom, d))} by roughly {float(np.linalg.norm(d)):.1f} m"
    if sub == "oad":
        return f"the object travelling roughly {float(np.linalg.norm(obj[1] - obj[0])):.1f} m against the background"
    if sub == "ocad":
        dist = float(np.linalg.norm(obj[1] - cam[0]))
        return f"the object's centre ending up roughly {dist:.1f} m from the starting camera, its near surface closer"
    if sub == "ocrdir" and row.get("variant") == "lateral":
        dx = float(_in_cam_i(geom, obj[1] - obj[0])[0])  # solver: (R_iᵀ(P̄_j − P̄_i))_x
        return f"the object drifting {'right' if dx >= 0 else 'left'} relative to the camera's starting position"
    if sub == "ocrdir":
        dz = float(_in_cam_i(geom, obj[1] - obj[0])[2])
        return f"the object moving {'farther' if dz >= 0 else 'closer'} along the starting camera's viewing direction"
    r0, r1 = _range(geom, 0), _range(geom, 1)
    return f"the object's apparent size change (from about {r0:.1f} m to {r1:.1f} m away)"


def write_cot(row: dict, geom: Geometry, letter: str | None = None, solution: dict | None = None,
              compact: bool = False) -> str:
    """The five-step ST-CoT for ``row`` answering ``letter`` (default: the row's answer).

    ``solution`` (default ``row["solution"]``) supplies the Spatial State values; a teacher passes a perturbed
    copy. ``compact``: only the two Spatial State blocks and the synthesis line (~120 instead of ~580 tokens;
    a tiny-profile lever: a random 0.3 M-parameter model never completes the full chain). Returns
    ``<thinking>…</thinking><answer>X</answer>``.
    """
    letter = letter or row["answer"]
    sol = solution if solution is not None else row["solution"]
    cam, obj = sol.get("camera_center") or [None, None], sol.get("object_center") or [None, None]
    if compact:
        thinking = "\n".join([_state("Initial", cam[0], obj[0]), _state("Final", cam[1], obj[1]),
                              f"Given that we observed {_event(row, geom)}, the answer is \"{row['options'][letter]}\" "
                              f"({letter})."])
        return f"<thinking>\n{thinking}\n</thinking><answer>{letter}</answer>"
    name = "the object" if geom.obj is None else "the target object"
    start = "the scene is viewed from the starting camera pose"
    if geom.obj is not None and _bearing(geom, 0):
        start = f"{name} is visible {_bearing(geom, 0)}"
    end = "the camera has reached its final pose for the segment"
    if geom.obj is not None and _bearing(geom, 1):
        end = f"{name} now appears {_bearing(geom, 1)}"
    cues = [_camera_cue(geom)] + [c[0].upper() + c[1:] + "." for c in _object_cues(geom, name)]
    thinking = "\n".join([
        f"**1. Objective.** {_objective(row)}",
        f"**2. Start-frame perception (frame {row['frame_i']}).** In this frame {start}.",
        _state("Initial", cam[0], obj[0]),
        "**3. Temporal progression.** " + " ".join(cues),
        f"**4. End-frame perception (frame {row['frame_j']}).** By this frame {end}, consistent with the start state "
        "and the motion cues above.",
        _state("Final", cam[1], obj[1]),
        f"**5. Synthesis.** Given that we observed {_event(row, geom)}, the only plausible value among the options is "
        f"\"{row['options'][letter]}\" ({letter}).",
    ])
    return f"<thinking>\n{thinking}\n</thinking><answer>{letter}</answer>"


# ----------------------------------------------------------------------------------------------------------
# Teachers
# ----------------------------------------------------------------------------------------------------------
def _perturb(sol: dict, sigma: float, rng: np.random.Generator) -> dict:
    out = dict(sol)
    for key in ("camera_center", "object_center"):
        vals = sol.get(key) or [None, None]
        out[key] = [None if v is None else (np.asarray(v, float) + rng.normal(0.0, sigma, 3)).tolist() for v in vals]
    return out


def geometric_teacher(row: dict, geom: Geometry, rng: np.random.Generator, cfg: dict) -> str:
    """One candidate from the local geometric teacher (stand-in for Gemini-2.5-Pro; module docstring).

    cfg: ``noise_m`` (float ≥ 0, metres: the printed centres get N(0, σ²) noise with σ ~ U(0, 2)·noise_m) and
    ``wrong_prob`` (float in [0, 1]: probability of answering a uniformly drawn wrong option).
    """
    sigma = float(cfg["noise_m"]) * rng.uniform(0.0, 2.0)
    letter = row["answer"]
    if rng.random() < float(cfg["wrong_prob"]):
        wrong = [k for k in sorted(row["options"]) if k != letter]
        letter = wrong[int(rng.integers(len(wrong)))]
    return write_cot(row, geom, letter, _perturb(row["solution"], sigma, rng), compact=bool(cfg.get("compact")))


def teacher_prompt(row: dict) -> tuple[str, str]:
    """(system, user) text of the Fig. 11 generator prompt, paraphrased (paper.md §1.4), for one row."""
    sol = row["solution"]
    system = (
        "You are a spatio-temporal AI whose 3D perception engine is active. Write a chain of thought that is a "
        "visual narrative derived only from observable evidence in the video.\nMandatory rules:\n"
        "1. Print a Spatial State snapshot at the start frame and at the end frame, exactly as\n"
        "**Spatial State (Initial Frame):**\n- Camera Center: [x, y, z] or null\n- Object Center: [x, y, z] or null\n"
        "**Spatial State (Final Frame):**\n- Camera Center: [x, y, z] or null\n- Object Center: [x, y, z] or null\n"
        "2. No math in the text: never say 'Because the X-coordinate changed' or 'Based on the provided sensor log'; "
        "argue from optical flow and visual cues (size change, parallax).\n"
        "3. Conclude: 'Given that we observed [event], the only plausible value among the options is [Answer]'.\n"
        "Steps: 1 Objective; 2 Start-frame perception + Spatial State; 3 Temporal progression and evidence; "
        "4 End-frame perception + Spatial State; 5 Final synthesis and verification.\n"
        'Output JSON only: {"chain_of_thought": "...", "answer": "<option letter>"}.')
    user = (f"{prompts.cot_user_text(row['question'], row['options'])}\nStart frame: {row['frame_i']}; end frame: "
            f"{row['frame_j']} (frames 0..{len(row.get('frames') or []) - 1}).\nInternal Target: {row['answer']}\n"
            f"Sensor Log: {json.dumps({k: sol.get(k) for k in ('camera_center', 'object_center')})}")
    return system, user


def urllib_transport(url: str, headers: dict, body: bytes, timeout: float) -> bytes:
    """POST ``body`` to ``url`` with the standard library only; returns the response bytes."""
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (URL comes from the user's params)
        return resp.read()


_JSON_OBJ = re.compile(r"\{.*\}", re.S)


def parse_teacher_reply(content: str) -> str:
    """``{"chain_of_thought", "answer"}`` JSON (possibly in code fences) → ``<thinking>…</thinking><answer>X</answer>``.

    A reply that is not such JSON is returned unchanged (the ST-reward then scores it as it stands).
    """
    m = _JSON_OBJ.search(content)
    try:
        obj = json.loads(m.group(0)) if m else None
    except json.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict) or not isinstance(obj.get("chain_of_thought"), str):
        return content
    cot = obj["chain_of_thought"]
    if "<thinking>" not in cot:
        cot = f"<thinking>\n{cot}\n</thinking>"
    if "<answer>" not in cot:
        cot += f"<answer>{str(obj.get('answer', '')).strip()}</answer>"
    return cot


def openai_teacher(row: dict, geom: Geometry, rng: np.random.Generator, cfg: dict,
                   transport: Callable[[str, dict, bytes, float], bytes] = urllib_transport) -> str:
    """One candidate from an OpenAI-compatible chat endpoint (text only: frames are not attached).

    cfg: ``url`` (base URL, e.g. ``http://localhost:8000/v1``), ``model``, optional ``api_key_env`` (name of the
    environment variable holding the key), ``temperature`` (default 1.0), ``timeout_s`` (default 120). The seed
    sent is drawn from ``rng`` so reruns ask for the same samples where the server honours seeds.
    Deviation: Gemini-2.5-Pro saw the video frames; this sends the question, options, sensor log and target only.
    """
    system, user = teacher_prompt(row)
    body = {"model": cfg["model"], "temperature": float(cfg.get("temperature", 1.0)),
            "seed": int(rng.integers(2**31)), "response_format": {"type": "json_object"},
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(cfg["api_key_env"], "") if cfg.get("api_key_env") else ""
    if key:
        headers["Authorization"] = f"Bearer {key}"
    url = cfg["url"].rstrip("/") + "/chat/completions"
    reply = json.loads(transport(url, headers, json.dumps(body).encode(), float(cfg.get("timeout_s", 120))))
    return parse_teacher_reply(reply["choices"][0]["message"]["content"] or "")


TEACHERS: dict[str, Callable[..., str]] = {"geometric": geometric_teacher, "openai": openai_teacher}


def candidates(row: dict, geom: Geometry, rng: np.random.Generator, k: int, teacher: str, cfg: dict) -> list[str]:
    """K candidate CoT+answer paths for one row (paper Alg. 1 step 2)."""
    return [TEACHERS[teacher](row, geom, rng, cfg) for _ in range(int(k))]


# ----------------------------------------------------------------------------------------------------------
# Alg. 1 filter
# ----------------------------------------------------------------------------------------------------------
def alg1_select(scores: list[list[float]], scenarios: list[str]) -> tuple[list[int | None], dict[str, float]]:
    """Paper Alg. 1 with the prose's one-path-per-item rule (module docstring).

    scores[n][k]: the ST-reward of candidate k of item n; scenarios[n]: its scenario key.
    Returns (best candidate index per item or None when rejected, τ_s per scenario).

    >>> alg1_select([[0.2, 0.9], [0.5, 0.1], [0.0, 0.0]], ["a", "a", "b"])
    ([1, None, None], {'a': 0.7, 'b': 0.0})
    """
    best = [max(s) if len(s) else 0.0 for s in scores]
    tau: dict[str, float] = {}
    for s in sorted(set(scenarios)):
        vals = [b for b, sc in zip(best, scenarios) if sc == s]
        tau[s] = float(math.fsum(vals) / len(vals))
    keep: list[int | None] = []
    for s, b, sc in zip(scores, best, scenarios):
        ok = len(s) > 0 and b >= tau[sc] - 1e-12 and b > 0
        keep.append(int(np.argmax(s)) if ok else None)
    return keep, tau
