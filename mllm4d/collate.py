"""SFT video collator: dataset rows -> Qwen-VL processor batch with labels on the assistant answer only.

Paper eq. (1) / §4.1: the SFT (and cold-start) loss is cross-entropy on the answer tokens. As in the release
(qwen-vl-finetune ``data_processor.py``), every position before the assistant turn's content is -100; the
answer, its ``<|im_end|>`` and the following newline are supervised; padding is -100.

``video_cache``: many QA rows share a clip (the release asks up to dozens of questions per video), so the
decoded frames *and* the processed video tensors (``pixel_values_videos``, ``video_grid_thw``, the
placeholder text with Qwen3-VL's timestamps) are cached per clip in memory, and only the text is tokenised
per row. The cached path reproduces ``processor(text, videos)`` exactly (tested), but relies on
``ProcessorMixin._process_videos`` / ``get_text_with_replacements`` of the pinned transformers 5.23.
Memory: one clip of 8×64×64 frames ≈ 0.2 MB of float32 patches; 32×448×448 ≈ 77 MB, so bound the cache
(``cache_max_clips``) on big runs.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import models, prompts

IGNORE = -100


def assistant_header_ids(tokenizer: Any) -> list[int]:
    """Token ids of ``<|im_start|>assistant\\n``: the answer starts right after its last occurrence."""
    return tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)


def mask_labels(input_ids: Any, attention_mask: Any, header: Sequence[int]) -> Any:
    """Labels (B,L) int64: a copy of ``input_ids`` with -100 everywhere except after the last assistant
    header (the answer, ``<|im_end|>``, trailing newline) and on padding.

    Raises ValueError when a sequence has no assistant header (e.g. truncated by ``max_length``).
    """
    labels = input_ids.clone()
    labels[attention_mask == 0] = IGNORE
    h = len(header)
    for b, ids in enumerate(input_ids.tolist()):
        starts = [i for i in range(len(ids) - h + 1) if ids[i:i + h] == list(header)]
        if not starts:
            raise ValueError(f"batch item {b}: no '<|im_start|>assistant' header in the tokenised chat")
        labels[b, :starts[-1] + h] = IGNORE
    return labels


def encode_cached(processor: Any, texts: list[str], videos: list[tuple[dict, str]], padding_side: str = "right"
                  ) -> dict:
    """``processor(text=texts, videos=...)`` from per-clip processed videos ``(tensors, placeholder text)``."""
    import torch
    texts, _ = processor.get_text_with_replacements(list(texts), [], [v[1] for v in videos])
    enc = processor.tokenizer(texts, padding=True, return_tensors="pt", padding_side=padding_side)
    out = dict(enc)
    if getattr(processor, "return_mm_token_type_ids", True):
        out["mm_token_type_ids"] = torch.tensor(processor.create_mm_token_type_ids(enc["input_ids"].tolist()))
    for key in videos[0][0]:
        vals = [v[0][key] for v in videos]
        out[key] = torch.cat(vals) if torch.is_tensor(vals[0]) else torch.tensor([x for v in vals for x in v])
    return out


def process_video(processor: Any, frames: np.ndarray, fps: float) -> tuple[dict, str]:
    """One clip's processed video tensors and its expanded placeholder text (the cache entry)."""
    kw = dict(models.videos_kwargs(processor, [frames], fps).get("videos_kwargs", {}))
    merged = processor._merge_kwargs(tokenizer_init_kwargs=processor.tokenizer.init_kwargs, videos_kwargs=kw)
    vkw = merged["videos_kwargs"]
    vkw["return_tensors"] = "pt"
    processed, repl = processor._process_videos([frames], **vkw)
    keep = {k: v for k, v in processed.items() if k not in ("video_metadata",) and k not in processor.unused_input_names}
    return keep, repl[0]


@dataclasses.dataclass
class VideoSFTCollator:
    """Collate dataset rows (``{"row": json}``) into a training batch (input_ids, attention_mask,
    mm_token_type_ids, pixel_values_videos, video_grid_thw[, second_per_grid_ts], labels).

    mode: prompt mode of :func:`prompts.messages` ("direct" for SFT, "st_cot" for cold start).
    Frames: ``num_frames`` uniformly sampled from the row's ``frames`` (paths relative to ``dataset_dir``; all
    of them, or the question's frame_i..frame_j with ``frame_window="question"``: ``models.window_frames``),
    resized to ``frame_size`` (H, W), presented at ``fps``. A row whose frames cannot be read is dropped
    from its batch and counted in ``stats["bad_rows"]`` (an all-bad batch raises).
    """
    processor: Any
    dataset_dir: Path
    mode: str
    num_frames: int
    frame_size: tuple[int, int]
    fps: float = 2.0
    video_cache: bool = False
    frame_window: str = "clip"
    cache_max_clips: int = 4096
    stats: dict = dataclasses.field(default_factory=lambda: {"bad_rows": 0, "cache_hits": 0, "cache_misses": 0})
    _cache: dict = dataclasses.field(default_factory=dict, repr=False)

    def _paths(self, row: dict) -> list[str]:
        return models.window_frames(row["frames"], row, self.frame_window)

    def _frames(self, row: dict) -> np.ndarray:
        return models.read_frames([self.dataset_dir / f for f in self._paths(row)], self.num_frames, self.frame_size)

    def _video(self, row: dict) -> tuple[dict, str]:
        key = tuple(self._paths(row))
        if key in self._cache:
            self.stats["cache_hits"] += 1
            return self._cache[key]
        self.stats["cache_misses"] += 1
        entry = process_video(self.processor, self._frames(row), self.fps)
        if len(self._cache) < self.cache_max_clips:
            self._cache[key] = entry
        return entry

    def __call__(self, examples: list[dict]) -> dict:
        texts, videos = [], []
        for ex in examples:
            row = json.loads(ex["row"]) if isinstance(ex.get("row"), str) else ex
            try:
                video = self._video(row) if self.video_cache else self._frames(row)
            except (OSError, ValueError) as e:  # one unreadable clip must not kill a long run
                self.stats["bad_rows"] += 1
                self.stats["last_error"] = str(e)[:300]
                continue
            msgs = prompts.messages(row, self.mode, with_answer=True)
            texts.append(self.processor.apply_chat_template(msgs, tokenize=False))
            videos.append(video)
        if not texts:
            raise ValueError(f"every row of a batch had unreadable frames (last: {self.stats.get('last_error')})")
        if self.video_cache:
            batch = encode_cached(self.processor, texts, videos)
        else:
            batch = dict(self.processor(text=texts, videos=videos, return_tensors="pt", padding=True,
                                        padding_side="right", **models.videos_kwargs(self.processor, videos, self.fps)))
        batch["labels"] = mask_labels(batch["input_ids"], batch["attention_mask"],
                                      assistant_header_ids(self.processor.tokenizer))
        return batch
