"""A tiny fake 03_dataset run for tests: QA rows in the docs/FORMATS.md schema plus synthetic JPEG frames.

    from tests.fixtures_data import make_dataset
    d = make_dataset(tmp_path / "outputs" / "03_dataset" / "fx")   # sft/coldstart/rft/bench.jsonl, frames/

Each clip shows a coloured square moving left or right over a grey background (64×64 by default); every
row asks about that motion, so the answer is learnable from the frames. Rows cycle over prompts.SUBTASKS
(the question text is generic, the subtask only labels the row). Deterministic for a given ``seed``.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mllm4d import common, prompts


def clip_frames(direction: int, n_frames: int = 32, size: tuple[int, int] = (64, 64), colour=(220, 40, 40)
                ) -> np.ndarray:
    """(T,H,W,3) uint8 RGB: a square sliding ``direction`` (+1 right, -1 left) across the frame."""
    h, w = size
    s = max(4, h // 6)
    out = np.full((n_frames, h, w, 3), 128, np.uint8)
    xs = np.linspace(w * 0.1, w * 0.9 - s, n_frames)[:: direction]
    for t, x in enumerate(xs):
        y = h // 2 - s // 2
        out[t, y:y + s, int(x):int(x) + s] = colour
    return out


def make_row(clip_id: str, k: int, direction: int, n_frames: int, rng: np.random.Generator) -> dict:
    """One QA row about clip ``clip_id``; the correct option says which way the square moved."""
    subtask = prompts.SUBTASKS[k % len(prompts.SUBTASKS)]
    i, j = sorted(rng.choice(n_frames, 2, replace=False).tolist())
    texts = ["left", "right", "closer", "not moving"]
    letters = list(prompts.LETTERS)
    rng.shuffle(letters)
    options = {letter: t for letter, t in zip(letters, texts)}
    answer = next(letter for letter, t in options.items() if t == ("right" if direction > 0 else "left"))
    row = {
        "id": f"{clip_id}-{subtask}-{k:03d}", "clip_id": clip_id, "subtask": subtask,
        "question": f"In which direction did the red square move between frame {i} and frame {j} of {n_frames - 1}?",
        "options": options, "answer": answer,
        "frames": [f"frames/{clip_id}/{t:02d}.jpg" for t in range(n_frames)],
        "frame_i": i, "frame_j": j,
        "solution": {"answer": answer, "camera_center": [None, None],
                     "object_center": [[-0.5 * direction, 0.0, 2.0], [0.5 * direction, 0.0, 2.0]]},
    }
    return row


def with_cot(row: dict) -> dict:
    """The row plus an ST-CoT target in the release's format (cold-start rows)."""
    a, b = row["solution"]["object_center"]
    cot = ("<thinking>**Spatial State (Initial Frame):**\n- Camera Center: null\n"
           f"- Object Center: [{a[0]:.1f}, {a[1]:.1f}, {a[2]:.1f}]\n**Spatial State (Final Frame):**\n"
           f"- Camera Center: null\n- Object Center: [{b[0]:.1f}, {b[1]:.1f}, {b[2]:.1f}]\n"
           f"The square's x changed by {b[0] - a[0]:+.1f} m, so it moved {row['options'][row['answer']]}."
           f"</thinking><answer>{row['answer']}</answer>")
    return {**row, "cot": cot}


def make_dataset(out_dir: str | Path, n_clips: int = 2, rows_per_clip: int = 4, n_frames: int = 32,
                 size: tuple[int, int] = (64, 64), seed: int = 0) -> Path:
    """Write a fake ``outputs/03_dataset/<run>/`` folder and return it.

    Files: ``frames/clipNNNN/TT.jpg``, ``sft.jsonl`` (n_clips × rows_per_clip rows), ``coldstart.jsonl``
    (the same rows with ``cot``), ``rft.jsonl`` and ``bench.jsonl`` (one row per clip), ``metrics.json``.
    """
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_clips):
        clip_id, direction = f"clip{c:04d}", (1 if c % 2 == 0 else -1)
        frames = clip_frames(direction, n_frames, size)
        (out / "frames" / clip_id).mkdir(parents=True, exist_ok=True)
        for t, f in enumerate(frames):
            cv2.imwrite(str(out / "frames" / clip_id / f"{t:02d}.jpg"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        rows += [make_row(clip_id, k, direction, n_frames, rng) for k in range(rows_per_clip)]
    common.write_jsonl(out / "sft.jsonl", rows)
    common.write_jsonl(out / "coldstart.jsonl", [with_cot(r) for r in rows])
    firsts = rows[::rows_per_clip]
    common.write_jsonl(out / "rft.jsonl", firsts)
    common.write_jsonl(out / "bench.jsonl", firsts)
    common.write_metrics(out, {"rows": {"sft": len(rows), "coldstart": len(rows), "rft": len(firsts),
                                        "bench": len(firsts)}, "fixture": True})
    return out


def distinct_chars_reward(completions, **kwargs):
    """Test-only GRPO reward with within-group variance: a random tiny model scores a constant ST-reward
    (accuracy 0, centres absent), so every advantage - and every gradient - would be exactly 0."""
    from mllm4d import reward
    return [len(set(reward.completion_text(c))) / 10 for c in completions]


def add_varied_reward(monkeypatch) -> None:
    """Make every reward preset also score :func:`distinct_chars_reward` (weight 1) for the test's duration."""
    from mllm4d import reward
    real = reward.trainer_rewards
    monkeypatch.setattr(reward, "trainer_rewards",
                        lambda preset: (real(preset)[0] + [distinct_chars_reward], real(preset)[1] + [1.0]))
