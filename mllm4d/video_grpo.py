"""``VideoGRPOTrainer``: trl 1.16's GRPOTrainer with the video kept in every log-prob forward.

Why: trl 1.16.0 generates rollouts *with* the video, but its old-policy, reference and policy log-prob forwards
(``_get_per_token_logps_and_entropies``) only know image inputs; for video prompts they run text-only, with
``<|video_pad|>`` read as plain tokens, and nothing raises (docs/reference env.md §3: stock log-probs differ
from a forward with the video by 0.04-0.1 on tiny Qwen-VL models and equal a text-only forward). The GRPO ratio
ρ = π_θ/π_old and the KL to π_ref of paper eq. 3 are then computed for the wrong conditional distribution.

Fix (env.md Appendix B, re-typed and documented here): encode the generation batch's videos once more with the
processor, exactly as trl did for generation (``_video_rows``: per row ``pixel_values_videos`` (P_i, C·t·p·p),
``video_grid_thw`` (1, 3) and, for Qwen2.5-VL, ``second_per_grid_ts`` (1,)), carry those rows through trl's buffering as a plain list
(``shuffle_sequence_dict``/``split_tensor_dict`` keep lists row-aligned), and inject them with a forward
pre-hook on the model (and on the reference model) for exactly the duration of each chunked log-prob forward,
together with ``mm_token_type_ids`` (0 text, 1 image, 2 video: Qwen-VL's M-RoPE position ids need them).

Pinned to trl==1.16.0 internals: ``_generate_and_score_completions``, ``_tokenize_prompts``, ``compute_loss``
and ``_get_per_token_logps_and_entropies``. ``tests/test_grpo.py`` checks the log-prob equality against a
direct forward with the video (measured max |Δ| ≈ 1e-6 fixed vs 2e-2 stock on tiny Qwen2.5-VL/Qwen3-VL; the
test allows 1e-3), so a trl upgrade that changes them fails loudly.

Qwen3-VL writes a ``<t seconds>`` timestamp before every temporal patch, computed from the video's metadata;
trl passes pre-decoded frames without any, so the processor would assume 24 fps. ``video_fps`` (default 2.0,
the rate of ``models.build_inputs`` used by SFT and evaluation) supplies per-video metadata to both trl's
generation tokenisation (``_tokenize_prompts``) and ``_video_rows``, so rollouts see the same prompt text as
SFT and 06_eval.

Limits: one video per prompt; image+video mixes are not handled; trl's vLLM rollout path sends only images to
vLLM (``trl/generation/vllm_generation.py``), so ``use_vllm`` cannot be used with video prompts.
"""
from __future__ import annotations

from typing import Any

import torch
from trl import GRPOTrainer

VideoRow = tuple[torch.Tensor, torch.Tensor, "torch.Tensor | None"]  # (pixel_values_videos, grid_thw, sec/grid)


class VideoGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose log-prob forwards see the prompt's video (see the module docstring)."""

    def __init__(self, *args: Any, video_fps: float | None = 2.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.video_fps = video_fps
        self._rows: list[VideoRow] | None = None  # video rows of the batch being scored
        self._payload: VideoRow | None = None  # what the pre-hook injects into the current forward
        tok = getattr(self.processing_class, "tokenizer", self.processing_class)
        self._vid_id = tok.convert_tokens_to_ids("<|video_pad|>")
        self._img_id = tok.convert_tokens_to_ids("<|image_pad|>")
        for m in (self.model, getattr(self, "ref_model", None)):
            if m is not None:  # LoRA: the ref forward is the same module with the adapter disabled
                base = m.get_base_model() if hasattr(m, "get_base_model") else m
                base.register_forward_pre_hook(self._inject, with_kwargs=True)

    # -- the hook ------------------------------------------------------------------------------------------
    def _inject(self, module: torch.nn.Module, args: tuple, kw: dict) -> tuple[tuple, dict] | None:
        if self._payload is None or kw.get("pixel_values_videos") is not None:
            return None  # not inside a patched log-prob forward (e.g. generation, which trl gets right)
        pv, thw, sec = self._payload
        ids = kw["input_ids"]
        kw["pixel_values_videos"] = pv.to(ids.device)
        kw["video_grid_thw"] = thw.to(ids.device)
        if sec is not None:  # Qwen2.5-VL: temporal M-RoPE scale
            kw["second_per_grid_ts"] = sec.to(ids.device)
        kw["mm_token_type_ids"] = (ids == self._vid_id).long() * 2 + (ids == self._img_id).long()
        return args, kw

    # -- per-row video tensors -----------------------------------------------------------------------------
    def _videos_kwargs(self, prompts: list) -> dict:
        """``videos_kwargs`` with one metadata entry per video part (Qwen3-VL processors only), else {}."""
        if self.video_fps is None or not type(self.processing_class).__name__.startswith("Qwen3"):
            return {}
        lengths = [len(p["video"]) for prompt in prompts for m in prompt if isinstance(m.get("content"), list)
                   for p in m["content"] if p.get("type") == "video" and p.get("video") is not None]
        if not lengths:
            return {}
        meta = [{"fps": float(self.video_fps), "total_num_frames": n, "frames_indices": list(range(n))}
                for n in lengths]
        return {"videos_kwargs": {"video_metadata": meta}}

    def _tokenize_prompts(self, prompts: list):
        vk = self._videos_kwargs(prompts)
        if not vk:
            return super()._tokenize_prompts(prompts)
        saved = self.chat_template_kwargs  # trl forwards these to processor.apply_chat_template
        self.chat_template_kwargs = {**saved, "processor_kwargs": {**saved.get("processor_kwargs", {}), **vk}}
        try:
            return super()._tokenize_prompts(prompts)
        finally:
            self.chat_template_kwargs = saved

    def _video_rows(self, prompts: list) -> list[VideoRow] | None:
        """Encode the prompts' videos exactly as trl's generation does; one row per prompt, None if no video."""
        if not any(isinstance(m.get("content"), list) and any(p.get("type") == "video" for p in m["content"])
                   for m in prompts[0]):
            return None
        kw = {k: v for k, v in self.chat_template_kwargs.items() if k != "processor_kwargs"}
        pk = {**self.chat_template_kwargs.get("processor_kwargs", {}), "padding": True, **self._videos_kwargs(prompts)}
        enc = self.processing_class.apply_chat_template(
            conversation=prompts, chat_template=self.chat_template, tokenize=True, return_dict=True,
            add_generation_prompt=True, return_tensors="pt", processor_kwargs=pk, **kw)
        if enc.get("pixel_values_videos") is None:
            return None
        thw = enc["video_grid_thw"]
        if thw.shape[0] != len(prompts):
            raise ValueError(f"VideoGRPOTrainer needs exactly one video per prompt, got {thw.shape[0]} videos "
                             f"for {len(prompts)} prompts")
        pvs = torch.split(enc["pixel_values_videos"], thw.prod(-1).tolist())
        sec = enc.get("second_per_grid_ts")
        sec = None if sec is None else torch.as_tensor(sec, dtype=torch.float32)
        return [(pv, thw[i:i + 1], None if sec is None else sec[i:i + 1]) for i, pv in enumerate(pvs)]

    # -- trl overrides -------------------------------------------------------------------------------------
    def _generate_and_score_completions(self, inputs: list[dict]) -> dict:
        self._rows = self._video_rows([x["prompt"] for x in inputs])
        try:
            out = super()._generate_and_score_completions(inputs)  # old/ref log-probs go through our override
        finally:
            rows, self._rows = self._rows, None
        if rows is not None:
            out["video_rows"] = rows
        return out

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: D102
        self._rows = inputs.get("video_rows")  # not popped: buffered inputs are reused when num_iterations > 1
        inputs = {k: v for k, v in inputs.items() if k != "video_rows"}
        try:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            self._rows = None

    def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
                                           compute_entropy=False, compute_aux_loss=False, **kw):
        rows = self._rows
        if rows is None:
            return super()._get_per_token_logps_and_entropies(model, input_ids, attention_mask, logits_to_keep,
                                                              batch_size, compute_entropy, compute_aux_loss, **kw)
        n = input_ids.size(0)
        if len(rows) != n:
            raise RuntimeError(f"{len(rows)} video rows for {n} sequences: trl's batching changed (pin trl 1.16)")
        bs = batch_size or n
        lps, ents, auxs = [], [], []
        for s in range(0, n, bs):  # chunk ourselves so each chunk's payload matches its rows
            e = min(s + bs, n)
            chunk = rows[s:e]
            self._payload = (torch.cat([r[0] for r in chunk]), torch.cat([r[1] for r in chunk]),
                             None if chunk[0][2] is None else torch.cat([r[2] for r in chunk]))
            try:
                lp, en, ax = super()._get_per_token_logps_and_entropies(
                    model, input_ids[s:e], attention_mask[s:e], logits_to_keep, e - s, compute_entropy,
                    compute_aux_loss, **kw)
            finally:
                self._payload = None
            lps.append(lp)
            ents.append(en)
            auxs.append(ax)
        return (torch.cat(lps), torch.cat(ents) if compute_entropy else None,
                torch.stack(auxs).mean() if compute_aux_loss else None)
