"""sft.py / collate.py: label masking, cached == uncached batches, LoRA and full steps, resume, CLI params."""
import dataclasses
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from transformers import TrainerCallback

from tests.fixtures_data import make_dataset
from mllm4d import collate, common, models, prompts, sft


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    make_dataset(root / "03_dataset" / "fx", n_clips=2, rows_per_clip=3)
    return root


def _cfg(root, **over):
    values = yaml.safe_load(common.resolve("params/tiny/04_sft.yaml").read_text())
    values.update(outputs_root=str(root), dataset_run="fx", run_name="t", stage="sft", max_steps=3,
                  coldstart_max_steps=2, batch_size=2, num_frames=4, frame_size=[32, 32], save_steps=100,
                  warmup_max_steps=0, warmup_mix=0.0, frame_window="clip",
                  logging_steps=1, lr=1e-2)
    values.update(over)
    return common.validate(sft.SFTParams, values)


@pytest.mark.parametrize("mode", ["direct", "st_cot", "st_cot_text"])
def test_labels_cover_only_the_assistant_answer(data_root, mode):
    _, proc = models.load("tiny:qwen3_vl")
    rows = common.read_jsonl(data_root / "03_dataset" / "fx" / "coldstart.jsonl")[:3]
    col = collate.VideoSFTCollator(proc, data_root / "03_dataset" / "fx", mode, 4, (32, 32))
    batch = col([{"row": json.dumps(r)} for r in rows])
    tok = proc.tokenizer
    for i, r in enumerate(rows):
        lab = batch["labels"][i]
        kept = (lab != -100).nonzero().flatten()
        assert kept.numel() > 0 and torch.equal(kept, torch.arange(kept[0], kept[-1] + 1))  # one contiguous span
        target = {"direct": r["answer"], "st_cot": r["cot"],
                  "st_cot_text": prompts.text_answer_cot(r["cot"], r["options"])}[mode]
        if mode == "st_cot_text":
            assert target.endswith(f"<answer>{r['options'][r['answer']]}</answer>")
        assert tok.decode(lab[kept]) == target + "<|im_end|>\n"
        assert tok.decode(batch["input_ids"][i, :kept[0]]).endswith("<|im_start|>assistant\n")
    assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()


@pytest.mark.parametrize("spec", ["tiny:qwen3_vl", "tiny:qwen2_5_vl"])
def test_video_cache_gives_identical_batches(data_root, spec):
    _, proc = models.load(spec)
    d = data_root / "03_dataset" / "fx"
    ex = [{"row": json.dumps(r)} for r in common.read_jsonl(d / "sft.jsonl")]
    plain = collate.VideoSFTCollator(proc, d, "direct", 4, (32, 32))(ex)
    cached = collate.VideoSFTCollator(proc, d, "direct", 4, (32, 32), video_cache=True)
    cached(ex)
    again = cached(ex)
    assert cached.stats["cache_misses"] == 2 and cached.stats["cache_hits"] == 2 * len(ex) - 2  # 2 clips
    assert again.keys() == plain.keys()
    for k in plain:
        assert torch.equal(torch.as_tensor(plain[k]), torch.as_tensor(again[k])), k


def test_unreadable_clip_is_skipped_and_counted(data_root, tmp_path):
    _, proc = models.load("tiny:qwen3_vl")
    rows = common.read_jsonl(data_root / "03_dataset" / "fx" / "sft.jsonl")[:2]
    bad = {**rows[0], "frames": ["frames/nope/00.jpg"]}
    col = collate.VideoSFTCollator(proc, data_root / "03_dataset" / "fx", "direct", 4, (32, 32))
    batch = col([{"row": json.dumps(bad)}, {"row": json.dumps(rows[1])}])
    assert batch["input_ids"].shape[0] == 1 and col.stats["bad_rows"] == 1
    with pytest.raises(ValueError, match="unreadable frames"):
        col([{"row": json.dumps(bad)}])


def test_load_rows_skips_and_reports_bad_rows(tmp_path):
    good = {"question": "q?", "options": {"A": "1", "B": "2"}, "answer": "B", "frames": ["f/0.jpg"]}
    common.write_jsonl(tmp_path / "s.jsonl", [good, {**good, "answer": "E"}, {**good, "frames": []}, good])
    rows, rep = sft.load_rows(tmp_path / "s.jsonl", "direct")
    assert len(rows) == 2 and rep["skipped"] == 2 and "row 2: field 'answer'" in rep["first_error"]
    with pytest.raises(ValueError, match="field 'cot' missing"):  # no row has an ST-CoT target
        sft.load_rows(tmp_path / "s.jsonl", "st_cot")


def test_load_rows_without_usable_rows_raises(tmp_path):
    common.write_jsonl(tmp_path / "s.jsonl", [{"question": "q"}])
    with pytest.raises(ValueError, match="no usable rows"):
        sft.load_rows(tmp_path / "s.jsonl", "direct")


def _weights(path):
    return load_file(str(path / "model.safetensors"))


@pytest.mark.parametrize("finetune", ["lora", "full"])
def test_few_steps_change_trainable_weights(data_root, tmp_path, finetune):
    # LoRA + gradient checkpointing needs input grads enabled (trl does it); exercise that path too
    cfg = _cfg(data_root, finetune=finetune, run_name=f"w-{finetune}", lora_r=4, lora_alpha=8,
               gradient_checkpointing=finetune == "lora")
    run_dir = common.start_run("04_sft", cfg)
    m = sft.train(cfg, run_dir)["sft"]
    assert m["steps"] == 3 and all(map(lambda x: x == x and x < 20, (m["loss_first"], m["loss_last"])))
    before, after = _weights(models.tiny_dir("tiny:qwen3_vl")), _weights(run_dir / "sft" / "model")
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    if finetune == "lora":  # merged LoRA: exactly the attention projections of the language model moved
        assert changed and all(k.split(".")[-2] in ("q_proj", "k_proj", "v_proj", "o_proj") for k in changed)
        assert (run_dir / "sft" / "adapter" / "adapter_config.json").exists()
        assert m["trainable_params"] < m["total_params"] / 2
    else:
        assert len(changed) > len(before) / 2
    model, _ = models.load(m["model"])  # the final model is loadable by the model layer
    assert not hasattr(model, "peft_config")
    assert sft.plot_losses(run_dir).axes


class _Kill(TrainerCallback):
    """Simulate a killed job right after step ``at`` (after the checkpoint of that step is written)."""

    def __init__(self, at):
        self.at = at

    def on_save(self, args, state, control, **kw):
        if state.global_step == self.at:
            raise KeyboardInterrupt("simulated kill")


def test_resume_continues_global_step(data_root):
    cfg = _cfg(data_root, run_name="resume", max_steps=4, save_steps=2, finetune="full")
    run_dir = common.start_run("04_sft", cfg)
    with pytest.raises(KeyboardInterrupt):
        sft.train(cfg, run_dir, callbacks=[_Kill(2)])
    assert (run_dir / "sft" / "checkpoint-2").is_dir() and not (run_dir / "metrics.json").exists()
    m = sft.train(cfg, run_dir)["sft"]
    assert m["resumed_from_step"] == 2 and m["steps"] == 4
    steps = [h["step"] for h in sft.log_history(run_dir / "sft") if "loss" in h]
    assert steps == [1, 2, 3, 4]
    assert sft.train(cfg, run_dir)["sft"].get("reused")  # a complete stage is not retrained
    # ... unless its data changed under the same dataset run name (e.g. 03_dataset rebuilt with other params)
    split = common.upstream_dir("03_dataset", cfg.dataset_run, cfg.outputs_root) / "sft.jsonl"
    rows = common.read_jsonl(split)
    common.write_jsonl(split, rows[:-1])
    try:
        m = sft.train(cfg, run_dir)["sft"]
        assert not m.get("reused") and m["resumed_from_step"] == 0 and m["samples"] == len(rows) - 1
    finally:
        common.write_jsonl(split, rows)


def test_both_stages_chain_sft_into_coldstart(data_root):
    cfg = _cfg(data_root, run_name="both", stage="both", max_steps=1, coldstart_max_steps=1, finetune="lora")
    m = sft.train(cfg, common.start_run("04_sft", cfg))
    assert m["coldstart"]["init"] == m["sft"]["model"] and m["final_model"] == m["coldstart"]["model"]
    assert m["coldstart"]["mode"] == cfg.coldstart_prompt == "st_cot"
    assert common.read_json(common.resolve(data_root) / "04_sft" / "both" / "metrics.json")["stages"] == \
        ["sft", "coldstart"]


def test_cli_params_merge_and_validate(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("lr: 2.0e-5\nfinetune: lora\n")
    cfg = sft.params_from_cli(["--params", str(f), "--num_frames", "32", "--bf16", "true"])
    assert (cfg.lr, cfg.finetune, cfg.num_frames, cfg.bf16, cfg.model) == (2e-5, "lora", 32, True, "tiny:qwen3_vl")
    with pytest.raises(common.ParamError, match="unknown parameter"):
        sft.params_from_cli(["--params", str(f), "--lerning_rate", "1"])
    with pytest.raises(common.ParamError, match="stage"):
        sft.params_from_cli(["--params", str(f), "--stage", "rl"])


def test_launch_multi_gpu_writes_params_and_reports_failure(data_root, tmp_path):
    cfg = _cfg(data_root, run_name="launch", num_gpus=2, accelerate_config=str(tmp_path / "missing.yaml"))
    run_dir = common.start_run("04_sft", cfg)
    with pytest.raises(RuntimeError, match="accelerate launch failed"):
        sft.launch(cfg, run_dir)
    assert sft.params_from_cli(["--params", str(run_dir / "params.yaml")]) == cfg  # the child sees the same cfg
    assert "missing.yaml" in (run_dir / "launch.log").read_text()


def test_plain_loss_equals_trl_fused_loss(data_root):
    """Both loss paths compute the same mean cross-entropy over the answer tokens (first step, same init)."""
    losses = {}
    for fused in (True, False):
        cfg = _cfg(data_root, run_name=f"fused{int(fused)}", fused_lm_head=fused, max_steps=1, finetune="full")
        losses[fused] = sft.train(cfg, common.start_run("04_sft", cfg))["sft"]["loss_first"]
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_fingerprint_follows_the_initial_models_files(data_root, tmp_path):
    # a cold start whose SFT model was retrained under the same path is stale; so is a stage on a tiny spec
    # built on another small tokenizer (same spec string, other random weights)
    cfg = _cfg(data_root)
    init = tmp_path / "sft_model"
    init.mkdir()
    (init / "model.safetensors").write_bytes(b"1")
    before = sft.stage_fingerprint(cfg, "coldstart", str(init))
    (init / "model.safetensors").write_bytes(b"22")
    assert sft.stage_fingerprint(cfg, "coldstart", str(init)) != before
    tiny = sft.stage_fingerprint(cfg, "sft", "tiny:qwen3_vl")["init_files"]
    assert tiny == [f"tiny-qwen3_vl-smalltok{models.SMALL_TOKENIZER_VERSION}"]


def test_changed_parameters_retrain_the_stage(data_root):
    cfg = _cfg(data_root, run_name="changed", max_steps=1, finetune="full")
    run_dir = common.start_run("04_sft", cfg)
    sft.train(cfg, run_dir)
    assert sft.train(dataclasses.replace(cfg, video_cache=not cfg.video_cache), run_dir)["sft"].get(
        "reused")  # an execution-only change reuses the finished stage
    more = dataclasses.replace(cfg, max_steps=2)
    m = sft.train(more, run_dir)["sft"]
    assert not m.get("reused") and m["steps"] == 2 and m["resumed_from_step"] == 0


def test_question_window_reads_only_the_question_frames(data_root, monkeypatch):
    _, proc = models.load("tiny:qwen3_vl")
    d = data_root / "03_dataset" / "fx"
    row = {**common.read_jsonl(d / "sft.jsonl")[0], "frame_i": 1, "frame_j": 2}
    read = []
    real = models.read_frames
    monkeypatch.setattr(models, "read_frames", lambda paths, n, size: read.append(list(paths)) or real(paths, n, size))
    col = collate.VideoSFTCollator(proc, d, "direct", 2, (32, 32), frame_window="question", video_cache=True)
    col([{"row": json.dumps(row)}])
    assert [p.name for p in read[0]] == [Path(row["frames"][1]).name, Path(row["frames"][2]).name]
    # the cache is keyed by the window: another window of the same clip is decoded afresh
    col([{"row": json.dumps({**row, "frame_i": 0})}])
    assert col.stats["cache_misses"] == 2 and len(read) == 2


def test_warmup_stage_trains_first_and_reports_heldout_accuracy(data_root, monkeypatch):
    monkeypatch.setattr(sft, "WARMUP_HELDOUT", 6)
    cfg = _cfg(data_root, run_name="warm", warmup_max_steps=2, warmup_tasks="crd,ocrd", num_frames=2,
               frame_window="question")
    assert sft.stage_plan(cfg) == ["warmup", "sft"]
    run_dir = common.start_run("04_sft", cfg)
    m = sft.train(cfg, run_dir)
    w = m["warmup"]
    assert w["steps"] == 2 and w["samples"] == 4 and w["data_skipped"] == 0  # one fresh clip per sample
    acc = w["heldout_accuracy"]
    assert acc["n"] == 6 and 0 <= acc["overall"] <= 1 and set(acc) - {"n", "overall"} <= {"crd", "ocrd"}
    assert m["sft"]["init"] == str(run_dir / "warmup" / "model")  # SFT starts from the warm-up model
    before, after = _weights(models.tiny_dir("tiny:qwen3_vl")), _weights(run_dir / "warmup" / "model")
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # warm-up clips are cut from the clips of sft.jsonl only, and the split is reused (not rewritten) by a rerun
    meta = common.read_json(run_dir / "warmup_data" / "meta.json")
    train = {r["clip_id"] for r in common.read_jsonl(data_root / "03_dataset" / "fx" / "sft.jsonl")}
    assert set(meta["train_clips"]) == train
    stamp = (run_dir / "warmup_data" / "sft.jsonl").stat().st_mtime_ns
    assert sft.stage_data(cfg, run_dir, "warmup")[0] == run_dir / "warmup_data"
    assert (run_dir / "warmup_data" / "sft.jsonl").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="warm-up tasks"):
        sft.stage_data(dataclasses.replace(cfg, warmup_tasks="colour"), run_dir, "warmup")


def test_warmup_mix_adds_fresh_procedural_rows_to_sft(data_root, monkeypatch):
    monkeypatch.setattr(sft, "WARMUP_HELDOUT", 2)
    cfg = _cfg(data_root, run_name="wmix", warmup_max_steps=1, warmup_mix=0.5, num_frames=2, max_steps=2)
    run_dir = common.start_run("04_sft", cfg)
    d, split, mode = sft.stage_data(cfg, run_dir, "sft")
    rows = common.read_jsonl(d / split)
    real = common.read_jsonl(data_root / "03_dataset" / "fx" / "sft.jsonl")
    procedural = [r for r in rows if r["clip_id"].startswith("m")]
    assert len(rows) == 2 * len(real) and len(procedural) == len(real)  # a share of 0.5
    warm = {r["clip_id"] for r in common.read_jsonl(run_dir / "warmup_data" / "sft.jsonl")}
    assert warm and not warm & {r["clip_id"] for r in procedural}  # other clips than the warm-up's
    assert all((d / f).exists() for r in rows for f in r["frames"])  # one folder resolves both kinds of path
    m = sft.train(cfg, run_dir)
    assert m["sft"]["samples"] == len(rows) and m["sft"]["collator"]["bad_rows"] == 0
