"""Exports (mllm4d/exports.py), each read back by its target loader: json (qwen-vl-finetune), datasets (HF, trl)."""
import hashlib
import json

import datasets
import numpy as np
import pytest

from mllm4d import exports, prompts, reward
from tests.fixtures_data import make_row, with_cot


@pytest.fixture()
def splits():
    rng = np.random.default_rng(0)
    rows = [make_row(f"clip{c:04d}", k, 1 if c % 2 else -1, 32, rng) for c in range(3) for k in range(6)]
    for r in rows:
        r["variant"] = "lateral" if r["subtask"] == "ocrdir" else ""
    for r in rows[:4]:  # camera questions: the object is not involved (all-null object centres first)
        r["solution"] = {**r["solution"], "object_center": [None, None], "camera_center": [[0, 0, 0], [0.1, 0, 1.2]]}
    return {"sft": rows, "coldstart": [with_cot(r) for r in rows[4:10]], "rft": rows[:5], "bench": rows[5:8]}


def _qwen_role(turn):  # qwen-vl-finetune's rule (paper.md §6 item 1): anything but user/system is the assistant
    return turn["from"] if turn["from"] in ("user", "system") else "assistant"


def test_qwen_sft_json(tmp_path, splits):
    paths = exports.write_exports(tmp_path, splits, "card")
    recs = json.loads((tmp_path / paths["qwen_sft"]).read_text())
    assert len(recs) == len(splits["sft"])
    for rec, row in zip(recs, splits["sft"]):
        assert [_qwen_role(t) for t in rec["conversations"]] == ["system", "user", "assistant"]
        user = rec["conversations"][1]["value"]
        assert user.startswith("<video>") and user.count("<video>") == 1  # one video, one placeholder
        assert prompts.DIRECT_SUFFIX in user and row["question"] in user and "Options:\nA. " in user
        assert rec["conversations"][2]["value"] == row["answer"] and rec["video"] == row["frames"]
    cold = json.loads((tmp_path / paths["qwen_coldstart"]).read_text())
    assert [c["conversations"][0]["value"] for c in cold] == [prompts.ST_SYSTEM] * len(splits["coldstart"])
    assert [c["conversations"][2]["value"] for c in cold] == [r["cot"] for r in splits["coldstart"]]
    with pytest.raises(ValueError, match="cot"):
        exports.qwen_sft_record(splits["sft"][0], "st_cot")


def test_grpo_jsonl_loads_and_feeds_the_reward(tmp_path, splits):
    paths = exports.write_exports(tmp_path, splits, "card")
    ds = datasets.load_dataset("json", data_files=str(tmp_path / paths["swift_rft"]), split="train",
                               cache_dir=str(tmp_path / "cache"))
    assert len(ds) == len(splits["rft"])
    assert set(ds.column_names) >= {"messages", "videos", "solution"}
    for rec, row in zip(ds, splits["rft"]):
        assert [m["role"] for m in rec["messages"]] == ["system", "user"]
        user = rec["messages"][1]["content"]
        assert user.count("<video>") == 1 and prompts.COT_SUFFIX in user
        assert rec["videos"] == [row["frames"]]
        assert len(rec["solution"]) == 1 and rec["solution"][0] == row["solution"]  # release: one-element list
        good = f"<thinking>x</thinking><answer>{row['answer']}</answer>"
        bad = "<thinking>x</thinking><answer>Z</answer>"
        r = reward.REWARDS["st"]([good, bad], [rec["solution"]] * 2, options=[rec["options"]] * 2)
        assert r[0] - r[1] == pytest.approx(0.5)  # accuracy term read from the exported solution


def test_hf_folder_loads_with_fixed_features(tmp_path, splits):
    paths = exports.write_exports(tmp_path, splits, "## card body")
    folder = tmp_path / paths["hf"]
    assert "## card body" in (folder / "README.md").read_text()
    for name, rows in splits.items():
        ds = datasets.load_dataset(str(folder), name, split="train", cache_dir=str(tmp_path / "cache"))
        assert len(ds) == len(rows)
        assert ("cot" in ds.column_names) == (name == "coldstart")
        assert str(ds.features["solution"]["camera_center"]) == "List(List(Value('float64')))"
        for rec, row in zip(ds, rows):
            assert rec["solution"]["object_center"] == row["solution"]["object_center"]
            assert rec["solution"]["camera_center"] == row["solution"]["camera_center"]
            assert rec["options"] == row["options"] and rec["frames"] == row["frames"]


def test_exports_are_byte_deterministic(tmp_path, splits):
    def digest(d):
        return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(d.rglob("*")) if p.is_file()}
    exports.write_exports(tmp_path / "a", splits, "card")
    exports.write_exports(tmp_path / "b", splits, "card")
    assert digest(tmp_path / "a") == digest(tmp_path / "b") and len(digest(tmp_path / "a")) == 8


def test_bad_mode_is_rejected(splits):
    with pytest.raises(ValueError, match="direct"):
        exports.qwen_sft_record(splits["sft"][0], "cot")


def test_cards_count_rows_per_subtask_and_letter(splits):
    rows = splits["sft"]
    c = exports.counts(rows)
    assert c["rows"] == len(rows) and sum(c["answer"].values()) == len(rows)
    assert sum(sum(v.values()) for v in c["subtask_answer"].values()) == len(rows)
    md = exports.card("sft", rows)
    total = md.splitlines()[-1]
    assert total.startswith("| **all** |") and total.endswith(f"| {len(rows)} |")
    for s in prompts.SUBTASKS:
        line = next(l for l in md.splitlines() if l.startswith(f"| {prompts.SUBTASK_NAMES[s]} |"))
        assert line.endswith(f"| {sum(r['subtask'] == s for r in rows)} |")


def test_examples_markdown_one_per_subtask(splits):
    md = exports.examples_markdown(splits["coldstart"], with_cot=True)
    present = {r["subtask"] for r in splits["coldstart"]}
    assert sum(f"**{prompts.SUBTASK_NAMES[s]}**" in md for s in prompts.SUBTASKS) == len(present)
    assert md.count("```text") == len(present) and "<answer>" in md


def test_distribution_figure(splits):
    fig = exports.plot_distributions(splits)
    bars = fig.axes[0].patches
    assert len(bars) == 7 * len(splits) and sum(b.get_height() for b in bars) == sum(map(len, splits.values()))
