"""GRPO stage (mllm4d/grpo.py, mllm4d/video_grpo.py) on tiny random Qwen-VL models with the small tokenizer.

(a) VideoGRPOTrainer's log-probs equal a direct forward *with* the video (stock trl 1.16 equals a text-only
    forward instead); (b) a short GRPO run changes the weights with a finite loss and writes its artefacts;
(c) a rerun resumes from the last checkpoint and continues the step count.
"""
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mllm4d import common, grpo, models, prompts
from tests.fixtures_data import add_varied_reward, make_dataset

ROOT = Path(__file__).resolve().parents[1]


def tiny_cfg(outputs_root: Path, **over) -> grpo.GRPOParams:
    """The tiny profile (params/tiny/05_grpo.yaml) pointed at a fixture dataset and a tiny model."""
    values = yaml.safe_load((ROOT / "params" / "tiny" / "05_grpo.yaml").read_text())
    values |= dict(outputs_root=str(outputs_root), run_name="t", dataset_run="fx", init_model="tiny:qwen3_vl",
                   num_frames=4, num_generations=2, batch_size=2, max_completion_length=8,
                   max_steps=1, save_steps=1)
    return common.validate(grpo.GRPOParams, values | over)


@pytest.fixture(scope="module")
def outputs_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    make_dataset(root / "03_dataset" / "fx", n_clips=2, rows_per_clip=1, n_frames=8)
    return root


def _example(frames: np.ndarray, mode: str = "st_cot") -> dict:
    row = {"question": "Which way did the square move?", "options": {"A": "left", "B": "right", "C": "up",
                                                                      "D": "down"},
           "solution": {"answer": "B", "camera_center": [None, None], "object_center": [None, None]}}
    return grpo.make_example(row, frames, mode)


def _dataset(ex: dict, n: int = 2):
    from datasets import Dataset
    ds = Dataset.from_dict({"i": list(range(n))})
    ds.set_transform(lambda b: {k: [v] * len(b["i"]) for k, v in ex.items()})
    return ds


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_logprobs_see_the_video(family, tmp_path):
    model, proc = models.load(f"tiny:{family}")
    frames = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    ex = _example(frames)
    cfg = tiny_cfg(tmp_path, init_model=f"tiny:{family}", finetune="full", beta=0.0)
    tr = grpo.build_trainer(cfg, tmp_path / "run", model=model, processor=proc, dataset=_dataset(ex))
    # 1) prompt exactly as the trainer encodes it (with Qwen3-VL's video metadata), plus a completion
    enc = proc.apply_chat_template([ex["prompt"]], tokenize=True, return_dict=True, add_generation_prompt=True,
                                   return_tensors="pt",
                                   processor_kwargs={"padding": True, **tr._videos_kwargs([ex["prompt"]])})
    comp = torch.tensor([proc.tokenizer.encode("<thinking>moved right</thinking><answer>B</answer>")])
    ids = torch.cat([enc["input_ids"], comp], 1)
    mask = torch.ones_like(ids)
    k = comp.shape[1]
    # 2) direct forwards, with and without the video
    mm = torch.cat([enc["mm_token_type_ids"], torch.zeros_like(comp)], 1)
    vid = {key: enc[key] for key in ("pixel_values_videos", "video_grid_thw", "second_per_grid_ts") if key in enc}
    model.eval()
    with torch.no_grad():
        direct = model(input_ids=ids, attention_mask=mask, mm_token_type_ids=mm, **vid).logits
        text_only = model(input_ids=ids, attention_mask=mask).logits

        def lp(logits):
            return torch.log_softmax(logits[:, -k - 1:-1].float(), -1).gather(-1, comp[..., None])[..., 0]

        # 3) the trainer's log-prob path: stock (no rows) and fixed (rows of this prompt)
        stock = tr._get_per_token_logps_and_entropies(model, ids, mask, k)[0]
        tr._rows = tr._video_rows([ex["prompt"]])
        fixed = tr._get_per_token_logps_and_entropies(model, ids, mask, k)[0]
        tr._rows = None
    d_fix, d_stock = (fixed - lp(direct)).abs().max().item(), (stock - lp(direct)).abs().max().item()
    print(f"{family}: max |Δlogp| fixed vs direct {d_fix:.2e}, stock vs direct {d_stock:.2e}")
    assert d_fix < 1e-3
    assert (stock - lp(text_only)).abs().max().item() < 1e-3  # stock trl ignores the video...
    assert d_stock > 10 * d_fix and d_stock > 1e-3  # ...which changes the log-probs


def test_bad_rows_are_skipped_and_reported(tmp_path):
    d = make_dataset(tmp_path / "03_dataset" / "bad", n_clips=3, rows_per_clip=1, n_frames=4)
    rows = common.read_jsonl(d / "rft.jsonl")
    rows[1]["frames"][0] = "frames/nope/00.jpg"
    del rows[2]["solution"]
    common.write_jsonl(d / "rft.jsonl", rows + ["not an object"])
    good, ddir, skipped = grpo.load_rows(tiny_cfg(tmp_path, dataset_run="bad"))
    assert [r["id"] for r in good] == [rows[0]["id"]] and ddir == d
    assert skipped == {rows[1]["id"]: "frame files missing", rows[2]["id"]: "missing ['solution']",
                       "3": "not a JSON object"}


def test_make_example_shapes():
    frames = np.zeros((4, 64, 64, 3), np.uint8)
    ex = _example(frames)
    assert ex["prompt"][0]["content"][0]["text"] == prompts.ST_SYSTEM
    video = [p for p in ex["prompt"][1]["content"] if p["type"] == "video"]
    assert len(video) == 1 and video[0]["video"] is frames
    assert ex["solution"][0]["answer"] == "B" and ex["options"]["B"] == "right"
    # the tiny profile's rollouts ask for the option's text (prompt_mode st_cot_text, as its cold start)
    assert _example(frames, "st_cot_text")["prompt"][0]["content"][0]["text"] == prompts.ST_SYSTEM_TEXT


def test_grpo_trains_and_resumes(outputs_root, monkeypatch):
    add_varied_reward(monkeypatch)   # a random policy's ST-reward is constant: give the group some variance
    # (b) two steps with a checkpoint after each
    cfg = tiny_cfg(outputs_root, max_steps=2, beta=0.1, lr=5e-3)
    run_dir = common.start_run(grpo.STAGE, cfg)
    m = grpo.train(cfg, run_dir)
    assert m["steps"] == 2 and m["resumed_from"] is None
    log = grpo.read_log(run_dir)
    assert [r["step"] for r in log] == [1, 2]
    assert all(np.isfinite(r["loss"]) and np.isfinite(r["kl"]) for r in log)
    assert {"rewards/accuracy/mean", "rewards/camera/mean", "rewards/object/mean", "kl"} <= set(log[0])
    assert np.isfinite(m["reward_first"]) and 0.0 <= m["term_object_last"] <= 1.0 and m["kl_last"] >= 0
    assert (run_dir / "metrics.json").exists() and (run_dir / "checkpoints" / "checkpoint-2").is_dir()
    trained, _ = models.load(str(run_dir / "model"))
    base, _ = models.load("tiny:qwen3_vl")
    changed = [n for n, p in base.state_dict().items()
               if n in trained.state_dict() and not torch.equal(p, trained.state_dict()[n])]
    assert any("q_proj" in n for n in changed), "LoRA-merged attention weights must have moved"
    assert all(any(t in n for t in cfg.lora_targets.split(",")) for n in changed), changed[:5]
    # (c) a rerun with a larger budget resumes from checkpoint-2 instead of starting over
    cfg3 = tiny_cfg(outputs_root, max_steps=3, beta=0.1, lr=5e-3)
    m3 = grpo.train(cfg3, run_dir)
    assert m3["resumed_from"] == "checkpoint-2" and m3["steps"] == 3
    assert [r["step"] for r in grpo.read_log(run_dir)] == [1, 2, 3]
    fig = grpo.plot_curves(run_dir)
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) >= 5
    # (d) other RFT rows under the same dataset run: the old checkpoints are not resumed
    split = common.upstream_dir("03_dataset", cfg.dataset_run, cfg.outputs_root) / "rft.jsonl"
    rows = common.read_jsonl(split)
    common.write_jsonl(split, rows[::-1])
    try:
        assert grpo.train(tiny_cfg(outputs_root, max_steps=1, beta=0.1, lr=5e-3), run_dir)["resumed_from"] is None
    finally:
        common.write_jsonl(split, rows)


def test_cli_and_guards(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text(yaml.safe_dump(common.as_dict(tiny_cfg(tmp_path))))
    cfg = grpo.parse_cli(["--params", str(p), "--reward", "acc", "--beta", "0.001"])
    assert cfg.reward == "acc" and cfg.beta == 0.001
    with pytest.raises(common.ParamError):
        grpo.parse_cli(["--params", str(p), "--rewrad", "acc"])
    with pytest.raises(common.ParamError):
        grpo.parse_cli(["--params", str(p), "--reward", "nope"])
    smoke = grpo.parse_cli(["--params", str(ROOT / "params" / "smoke" / "05_grpo.yaml")])  # overrides only
    assert smoke.max_steps == 2 and smoke.run_name == "smoke" and smoke.lr == tiny_cfg(tmp_path).lr
    paper = grpo.parse_cli(["--params", str(ROOT / "params" / "paper" / "05_grpo.yaml")])
    assert (paper.num_generations, paper.beta, paper.lr, paper.num_frames) == (12, 0.1, 5e-5, 32)
    with pytest.raises(ValueError, match="vLLM"):
        grpo.build_trainer(tiny_cfg(tmp_path, use_vllm=True), tmp_path, model=object(), processor=object(),
                           dataset=[])


def test_launch_command_runs_this_module_under_accelerate(tmp_path):
    cfg = tiny_cfg(tmp_path, num_gpus=4, accelerate_config="configs/x.yaml")
    cmd = grpo.launch_command(cfg, tmp_path / "p.json")
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"] and cmd[-4:] == ["-m", "mllm4d.grpo", "--params",
                                                                                str(tmp_path / "p.json")]
    assert cmd[cmd.index("--num_processes") + 1] == "4" and cmd[cmd.index("--config_file") + 1].endswith("x.yaml")
    assert "--config_file" not in grpo.launch_command(tiny_cfg(tmp_path, num_gpus=2), "p.json")
    p = tmp_path / "p.json"
    common.write_json(p, common.as_dict(cfg))
    assert grpo.parse_cli(["--params", str(p)]) == cfg  # the launched process sees the same parameters


def test_summarize_windows():
    log = [{"step": s, "reward": float(s), "rewards/accuracy/mean": s / 20, "kl": 0.01 * s} for s in range(1, 21)]
    m = grpo.summarize(log, tiny_cfg(Path("/tmp")), seconds=10.0, steps=20)
    assert m["reward_first"] == pytest.approx(1.5) and m["reward_last"] == pytest.approx(19.5)  # 2-step windows
    assert m["kl_last"] == pytest.approx(0.195) and m["samples_seen"] == 20  # 2 completions = 1 prompt per step
    assert m["term_camera_first"] is None
