"""evaluate.py: items, blind pairing, metrics, and a resumable end-to-end run with a tiny random model."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mllm4d import common, evaluate, models
from tests.fixtures_data import clip_frames, make_dataset

BASE = dict(outputs_root="outputs", run_name="t", seed=0, dataset_run="fx", model="tiny:qwen3_vl", model_stage="",
            model_run="", prompt_mode="direct", choice="generate", max_items=0, num_frames=4, frame_window="clip", frame_size=64, fps=2.0,
            max_new_tokens=6, do_sample=False, temperature=1.0, top_p=1.0, batch_size=4, dtype="float32",
            blind_video=False, vlm4d_questions="", vlm4d_video_root="", n_boot=100,
            judge_url="", judge_model="")


def cfg_of(**kw):
    return common.validate(evaluate.EvalParams, {**BASE, **kw})


def test_params_validate():
    with pytest.raises(common.ParamError, match="prompt_mode"):
        cfg_of(prompt_mode="cot")
    with pytest.raises(common.ParamError, match="model_stage"):
        cfg_of(model_stage="03_dataset")


def test_model_spec_resolution(tmp_path):
    assert evaluate.model_spec(cfg_of(model="tiny:qwen3_vl")) == "tiny:qwen3_vl"
    cfg = cfg_of(outputs_root=str(tmp_path), model="", model_stage="04_sft/coldstart", model_run="r")
    with pytest.raises(FileNotFoundError, match="coldstart/model/config.json"):
        evaluate.model_spec(cfg)
    (tmp_path / "04_sft" / "r" / "coldstart" / "model").mkdir(parents=True)
    (tmp_path / "04_sft" / "r" / "coldstart" / "model" / "config.json").write_text("{}")
    assert evaluate.model_spec(cfg) == str(tmp_path / "04_sft" / "r" / "coldstart" / "model")
    with pytest.raises(common.ParamError, match="model_stage"):
        evaluate.model_spec(cfg_of(model="", model_stage=""))


def test_vlm4d_video_path(tmp_path):
    url = "https://huggingface.co/datasets/shijiezhou/VLM4D/resolve/main/videos_synthetic/synth_001.mp4"
    assert evaluate.vlm4d_video_path(url, tmp_path) == tmp_path / "videos_synthetic" / "synth_001.mp4"
    other = "/home/x/VLM4D_bench/videos_real/davis/a.mp4"
    assert evaluate.vlm4d_video_path(other, tmp_path) == tmp_path / "videos_real" / "davis" / "a.mp4"
    local = tmp_path / "v.mp4"
    local.write_bytes(b"")
    assert evaluate.vlm4d_video_path(str(local), "/nowhere") == local


@pytest.mark.parametrize("clips", [["a", "a", "b", "c"], ["a", "b"], list("abcdefgh"), ["x"] * 3 + ["y"]])
def test_blind_pairing_uses_another_clip(clips):
    donors = evaluate.blind_pairing(clips, np.random.default_rng(3))
    assert len(donors) == len(clips) and all(clips[d] != c for d, c in zip(donors, clips))


def test_blind_pairing_single_clip_falls_back_to_itself():
    assert evaluate.blind_pairing(["a", "a"], np.random.default_rng(0)) == [0, 1]


def test_bench_metrics():
    rows = [{"subtask": "cad", "gt": ["A"], "pred": "A", "correct": True},
            {"subtask": "cad", "gt": ["B"], "pred": "", "correct": False},
            {"subtask": "crd", "gt": ["A"], "pred": "C", "correct": False},
            {"subtask": "crd", "gt": ["A"], "pred": "A", "correct": True}]
    m = evaluate.bench_metrics(rows, [4] * 4, np.random.default_rng(0), n_boot=50)
    assert m["per_subtask"] == {"cad": 0.5, "crd": 0.5} and m["overall"] == 0.5 and m["n"] == 4
    assert m["empty_rate"] == 0.25 and m["chance"] == 0.25
    assert m["constant_letter"] == 0.75 and m["constant_letter_choice"] == "A"  # macro: cad 0.5, crd 1.0
    assert set(m["ci95"]) == {"overall", "micro", "cad", "crd"}
    assert m["pred_letter_counts"] == {"A": 2, "B": 0, "C": 1, "D": 0, "": 1}


def _write_video(path: Path, direction: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 8, (64, 64))
    for f in clip_frames(direction, 12):
        w.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    w.release()


@pytest.fixture(scope="module")
def tiny():
    return models.load("tiny:qwen3_vl", dtype="float32")


def test_end_to_end_resumable_with_vlm4d(tmp_path, tiny, monkeypatch):
    root = tmp_path / "outputs"
    make_dataset(root / "03_dataset" / "fx", n_clips=3, rows_per_clip=2)
    vids = tmp_path / "vlm4d"
    _write_video(vids / "videos_real" / "davis" / "a.avi", 1)
    q = [{"id": "validation_1", "video": "https://hf.co/x/resolve/main/videos_real/davis/a.avi",
          "question": "Which way does the square move?", "choices": {"A": "left", "B": "right", "C": 1, "D": 2},
          "answer": "right"},
         {"id": "validation_950", "video": "https://hf.co/x/resolve/main/videos_real/ego4d/missing.mp4",
          "question": "?", "choices": {"A": "x", "B": "y"}, "answer": "x"}]
    (vids / "real_mc.json").write_text(json.dumps(q))
    cfg = cfg_of(outputs_root=str(root), vlm4d_questions=str(vids / "real_mc.json"), vlm4d_video_root=str(vids))
    run_dir = common.start_run("06_eval", cfg)
    m = evaluate.run(cfg, run_dir, *tiny)
    rows = common.read_jsonl(run_dir / "predictions.jsonl")
    assert len(rows) == 4 and {r["source"] for r in rows} == {"bench", "vlm4d"}  # 3 bench + 1 VLM4D with video
    assert m["n"] == 3 and 0 <= m["overall"] <= 1 and m["chance"] == 0.25
    assert m["generation"]["do_sample"] is False and m["generation"]["max_new_tokens"] == 6
    assert m["vlm4d"]["n_real"] == 1 and m["vlm4d"]["skipped_no_video"] == 1
    assert json.loads((run_dir / "metrics.json").read_text())["n"] == 3

    # a rerun answers nothing new ...
    monkeypatch.setattr(models, "generate", lambda *a, **k: pytest.fail("regenerated a finished item"))
    assert evaluate.run(cfg, run_dir, *tiny)["overall"] == m["overall"]
    assert len(common.read_jsonl(run_dir / "predictions.jsonl")) == 4
    # ... but changed generation settings invalidate the old rows
    monkeypatch.setattr(models, "generate", lambda model, proc, msgs, frames, **k: ["B"] * len(msgs))
    m2 = evaluate.run(cfg_of(**{**cfg.__dict__, "max_new_tokens": 3}), run_dir, *tiny)
    rows2 = common.read_jsonl(run_dir / "predictions.jsonl")
    assert len(rows2) == 4 and all(r["pred"] == "B" for r in rows2)
    assert m2["vlm4d"]["real"] == 1.0 and m2["empty_rate"] == 0.0


def test_blind_video_pairs_other_clips(tmp_path, tiny, monkeypatch):
    root = tmp_path / "outputs"
    make_dataset(root / "03_dataset" / "fx", n_clips=4, rows_per_clip=1)
    seen = []
    monkeypatch.setattr(models, "generate", lambda model, proc, msgs, frames, **k: seen.extend(frames) or
                        ["A"] * len(msgs))
    cfg = cfg_of(outputs_root=str(root), blind_video=True)
    evaluate.run(cfg, common.start_run("06_eval", cfg), *tiny)
    rows = common.read_jsonl(root / "06_eval" / "t" / "predictions.jsonl")
    assert all(r["video_of"].split("-")[0] != r["id"].split("-")[0] for r in rows)
    assert len(seen) == 4


def test_letter_logits_choice_always_names_a_letter(tmp_path, tiny):
    # the untrained tiny model generates no letter (free text scores 0); restricted to A-D it picks one
    root = tmp_path / "outputs"
    make_dataset(root / "03_dataset" / "fx", n_clips=3, rows_per_clip=2)
    cfg = cfg_of(outputs_root=str(root), choice="letter_logits")
    m = evaluate.run(cfg, common.start_run("06_eval", cfg), *tiny)
    rows = common.read_jsonl(root / "06_eval" / "t" / "predictions.jsonl")
    assert rows and all(r["pred"] in ("A", "B", "C", "D") and r["response"] == r["pred"] for r in rows)
    assert m["empty_rate"] == 0.0
    with pytest.raises(common.ParamError, match="choice"):
        bad = cfg_of(outputs_root=str(root), run_name="t2", choice="letter_logits", prompt_mode="st_cot")
        evaluate.run(bad, common.start_run("06_eval", bad), *tiny)


def test_prediction_key_follows_the_model_files(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"1")
    cfg = cfg_of(model=str(d))
    k1 = evaluate.generation_settings(cfg, str(d))["key"]
    (d / "model.safetensors").write_bytes(b"22")  # retrained under the same path
    assert evaluate.generation_settings(cfg, str(d))["key"] != k1
    # a tiny spec is rebuilt identically from its name, which carries the small tokenizer's version
    assert models.folder_fingerprint("tiny:qwen3_vl") == [f"tiny-qwen3_vl-smalltok{models.SMALL_TOKENIZER_VERSION}"]


def test_nothing_to_evaluate_is_an_error(tmp_path):
    cfg = cfg_of(outputs_root=str(tmp_path), dataset_run="")
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate.run(cfg, tmp_path)


def test_optional_judge_cross_check_is_resumable(tmp_path):
    items = [{"id": "i1", "question": "Q?", "options": {"A": "left", "B": "right"}, "gt": ["B"]},
             {"id": "i2", "question": "Q?", "options": {"A": "left", "B": "right"}, "gt": ["A"]}]
    rows = [{"id": "i1", "pred": "B", "response": "right it is", "key": "k"},
            {"id": "i2", "pred": "", "response": "no idea", "key": "k"}]
    calls = []

    def fake(url, payload, headers, timeout):
        calls.append(payload["messages"][1]["content"])
        verdict = '{"extracted_answer": "B: right", "correct": true}' if "right it is" in calls[-1] \
            else '{"extracted_answer": "No Valid Answer", "correct": false}'
        return {"choices": [{"message": {"content": verdict}}]}

    cfg = cfg_of(judge_url="http://judge.invalid/v1", judge_model="m")
    out = evaluate.judge_rows(cfg, items, rows, tmp_path, transport=fake)
    assert out == {"accuracy": 0.5, "n": 2, "agreement": 1.0, "errors": 0, "model": "m"}
    assert "Ground Truth Answer: right" in calls[0] and len(calls) == 2
    evaluate.judge_rows(cfg, items, rows, tmp_path, transport=fake)  # resumed: no new calls
    assert len(calls) == 2


def test_blind_donors_stay_within_their_source():
    items = [{"source": "bench", "clip": c} for c in "aabb"] + [{"source": "vlm4d", "clip": v} for v in "xyz"]
    donors = evaluate.blind_donors(items, np.random.default_rng(0))
    for i, d in enumerate(donors):
        assert items[d]["source"] == items[i]["source"] and items[d]["clip"] != items[i]["clip"]


def test_unreadable_clip_is_skipped_and_reported(tmp_path, tiny, monkeypatch):
    root = tmp_path / "outputs"
    d = make_dataset(root / "03_dataset" / "fx", n_clips=3, rows_per_clip=1)
    for f in (d / "frames" / "clip0001").iterdir():
        f.write_bytes(b"not a jpeg")
    monkeypatch.setattr(models, "generate", lambda model, proc, msgs, frames, **k: ["A"] * len(msgs))
    cfg = cfg_of(outputs_root=str(root))
    m = evaluate.run(cfg, common.start_run("06_eval", cfg), *tiny)
    assert m["n"] == 2 and m["failed_items"]["n"] == 1
    assert m["failed_items"]["first"][0]["id"].startswith("clip0001")


def test_question_window_blind_uses_the_questions_frames_of_another_clip(tmp_path, tiny, monkeypatch):
    root = tmp_path / "outputs"
    d = root / "03_dataset" / "fx"
    make_dataset(d, n_clips=3, rows_per_clip=1)
    rows = common.read_jsonl(d / "bench.jsonl")
    common.write_jsonl(d / "bench.jsonl", [{**r, "frame_i": 1, "frame_j": 3} for r in rows])
    read = []
    real = models.read_frames
    monkeypatch.setattr(models, "read_frames", lambda paths, n, size: read.append(list(paths)) or real(paths, n, size))
    monkeypatch.setattr(models, "generate", lambda model, proc, msgs, frames, **k: ["A"] * len(msgs))
    cfg = cfg_of(outputs_root=str(root), blind_video=True, frame_window="question")
    evaluate.run(cfg, common.start_run("06_eval", cfg), *tiny)
    preds = common.read_jsonl(root / "06_eval" / "t" / "predictions.jsonl")
    assert len(read) == len(preds) == 3
    for paths, p in zip(read, preds):
        donor = p["video_of"].split("-")[0]
        assert [Path(x).name for x in paths] == ["01.jpg", "02.jpg", "03.jpg"] and all(donor in x for x in paths)
