"""Exports of the 03_dataset rows to the formats the release's trainers and the Hub read (paper.md §6).

Rows are the FORMATS.md QA rows (``frames`` relative to the dataset run directory). Three targets:

1. **qwen-vl-finetune JSON** (:func:`qwen_sft_record`, release ``qwen-vl-sft``; registry keys ``mllm4d_2M`` and
   ``mllm4d_cold_start``): ``{"id", "video": [frame paths], "conversations": [{"from": "system"|"user"|"gpt",
   "value": ...}]}``. The role string must be exactly ``"user"`` (anything but user/system is the assistant, so
   we write ``"gpt"``); the user text starts with the ``<video>`` placeholder. ``mode="direct"`` (SFT: the bare
   letter) or ``"st_cot"`` (cold start: the ST system prompt and the ``cot`` target). ``data_path`` = the dataset
   run directory (the loader resolves ``video`` against it).
2. **ms-swift / trl GRPO JSONL** (:func:`grpo_record`, release ``MLLM4D-R1-30k.jsonl``): ``messages`` (system =
   ST prompt, user = ``<video>`` + question + options + the CoT suffix), ``videos``, ``solution`` = a one-element
   list holding the solution dict (the release's form, read by ``reward.normalize_solution``), ``options``.
3. **HF ``datasets`` folder** (:func:`write_hf_folder`): one JSONL per split plus a ``README.md`` dataset card
   whose YAML header declares one config per split and its features, so ``datasets.load_dataset(folder, split)``
   reads it with fixed types (a JSON reader otherwise infers ``null`` for an all-null ``camera_center`` chunk).

Also here: the dataset cards (:func:`counts`, :func:`card`: rows per subtask × answer letter), the distribution
figure (:func:`plot_distributions`) and :func:`examples_markdown` (one example per subtask), shown by 03_dataset.

Deviations: (a) the release's ``videos``/``video`` hold one video *file*; ours hold the clip's 32 stored frame
files (qwen-vl-finetune and ``qwen_vl_utils`` accept a list of frames as one video; ms-swift's ``videos`` gets
``[[frames]]``, one video given as its frame list). (b) The SFT conversation carries the Qwen default system
prompt explicitly (``prompts.DEFAULT_SYSTEM``), matching ``prompts.messages`` so training and evaluation see the
same chat; Qwen2.5-VL's template would insert it anyway, Qwen3-VL's would not.
"""
from __future__ import annotations

import collections
import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from . import common, cot, prompts

HF_COLUMNS: tuple[str, ...] = ("id", "clip_id", "subtask", "variant", "question", "options", "answer", "frames",
                               "frame_i", "frame_j", "solution")


def qwen_sft_record(row: dict, mode: str = "direct") -> dict:
    """One qwen-vl-finetune record (paper.md §6 item 1) from a dataset row."""
    if mode == "direct":
        conv = [{"from": "system", "value": prompts.DEFAULT_SYSTEM},
                {"from": "user", "value": "<video>\n" + prompts.direct_user_text(row["question"], row["options"])},
                {"from": "gpt", "value": row["answer"]}]
    elif mode == "st_cot":
        if not row.get("cot"):
            raise ValueError(f"row {row.get('id', '?')}: field 'cot' is missing; st_cot export needs cold-start rows")
        conv = [{"from": "system", "value": prompts.ST_SYSTEM},
                {"from": "user", "value": "<video>\n" + prompts.cot_user_text(row["question"], row["options"])},
                {"from": "gpt", "value": row["cot"]}]
    else:
        raise ValueError(f"export mode must be 'direct' or 'st_cot', got {mode!r}")
    return {"id": row["id"], "video": list(row["frames"]), "conversations": conv}


def grpo_record(row: dict) -> dict:
    """One ms-swift / trl GRPO row (paper.md §6 item 2): ``messages``, ``videos``, ``solution`` = [dict]."""
    user = "<video>\n" + prompts.cot_user_text(row["question"], row["options"])
    return {"id": row["id"],
            "messages": [{"role": "system", "content": prompts.ST_SYSTEM}, {"role": "user", "content": user}],
            "videos": [list(row["frames"])],
            "solution": [row["solution"]],
            "options": row["options"], "subtask": row["subtask"]}


def hf_features(with_cot: bool) -> dict:
    """The ``datasets`` feature spec (README YAML form) of an exported split."""
    feats = [{"name": "id", "dtype": "string"}, {"name": "clip_id", "dtype": "string"},
             {"name": "subtask", "dtype": "string"}, {"name": "variant", "dtype": "string"},
             {"name": "question", "dtype": "string"},
             {"name": "options", "struct": [{"name": k, "dtype": "string"} for k in prompts.LETTERS]},
             {"name": "answer", "dtype": "string"}, {"name": "frames", "list": "string"},
             {"name": "frame_i", "dtype": "int64"}, {"name": "frame_j", "dtype": "int64"},
             {"name": "solution", "struct": [{"name": "answer", "dtype": "string"},
                                             {"name": "camera_center", "list": {"list": "float64"}},
                                             {"name": "object_center", "list": {"list": "float64"}}]}]
    if with_cot:
        feats.append({"name": "cot", "dtype": "string"})
    return {"features": feats}


def hf_row(row: dict, with_cot: bool) -> dict:
    """Project a row onto :data:`HF_COLUMNS` (+ ``cot``); ``variant`` is ``""`` when absent."""
    out = {k: row.get(k, "") if k == "variant" else row[k] for k in HF_COLUMNS}
    out["variant"] = out["variant"] or ""
    if with_cot:
        out["cot"] = row["cot"]
    return out


def counts(rows: list[dict]) -> dict[str, Any]:
    """Counts of a split: total, per subtask, per scenario, per answer letter, per subtask × letter, clips."""
    by = collections.Counter
    return {"rows": len(rows), "clips": len({r["clip_id"] for r in rows}),
            "subtask": dict(sorted(by(r["subtask"] for r in rows).items())),
            "scenario": dict(sorted(by(cot.scenario(r["subtask"], r.get("variant")) for r in rows).items())),
            "answer": dict(sorted(by(r["answer"] for r in rows).items())),
            "subtask_answer": {s: dict(sorted(by(r["answer"] for r in rows if r["subtask"] == s).items()))
                               for s in prompts.SUBTASKS}}


def card(name: str, rows: list[dict]) -> str:
    """Markdown dataset card of one split: rows per subtask × answer letter (+ totals)."""
    c = counts(rows)
    lines = [f"### {name}: {c['rows']} rows from {c['clips']} clips", "",
             "| subtask | " + " | ".join(prompts.LETTERS) + " | total |",
             "|---|" + "---|" * (len(prompts.LETTERS) + 1)]
    for s in prompts.SUBTASKS:
        per = c["subtask_answer"][s]
        lines.append(f"| {prompts.SUBTASK_NAMES[s]} | " + " | ".join(str(per.get(k, 0)) for k in prompts.LETTERS)
                     + f" | {sum(per.values())} |")
    lines.append("| **all** | " + " | ".join(str(c["answer"].get(k, 0)) for k in prompts.LETTERS) + f" | {c['rows']} |")
    return "\n".join(lines) + "\n"


def plot_distributions(splits: dict[str, list[dict]]):
    """Figure: rows per scenario (left) and per answer letter (right) for every split."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.8), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / max(len(splits), 1)
    for k, (name, rows) in enumerate(splits.items()):
        c = counts(rows)
        x = np.arange(len(cot.SCENARIOS))
        axes[0].bar(x + k * width, [c["scenario"].get(s, 0) for s in cot.SCENARIOS], width, label=name)
        x = np.arange(len(prompts.LETTERS))
        axes[1].bar(x + k * width, [c["answer"].get(s, 0) for s in prompts.LETTERS], width, label=name)
    axes[0].set_xticks(np.arange(len(cot.SCENARIOS)) + width * (len(splits) - 1) / 2, cot.SCENARIOS, rotation=20)
    axes[1].set_xticks(np.arange(len(prompts.LETTERS)) + width * (len(splits) - 1) / 2, prompts.LETTERS)
    axes[0].set_ylabel("rows")
    axes[0].set_title("rows per scenario (7 slices)")
    axes[1].set_title("answer letters")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(splits), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig


def examples_markdown(rows: list[dict], with_cot: bool = False) -> str:
    """Markdown: the first row of every subtask (question, options, answer, solution; the CoT if asked)."""
    out = []
    for s in prompts.SUBTASKS:
        r = next((r for r in rows if r["subtask"] == s), None)
        if r is None:
            continue
        opts = "  ".join(f"**{k}.** {v}" for k, v in sorted(r["options"].items()))
        out.append(f"**{prompts.SUBTASK_NAMES[s]}** (`{r['id']}`): {r['question']}  \n{opts}  \n"
                   f"answer **{r['answer']}**, solution `{json.dumps(r['solution'])}`")
        if with_cot and r.get("cot"):
            out.append("```text\n" + r["cot"] + "\n```")
    return "\n\n".join(out) + "\n"


def _card(name: str, splits: dict[str, list[dict]], card_body: str) -> str:
    import yaml  # PyYAML: the dataset card's header must be YAML
    header = {"configs": [{"config_name": s, "data_files": [{"split": "train", "path": f"{s}.jsonl"}]}
                          for s in splits],
              "dataset_info": [{"config_name": s, **hf_features(s == "coldstart")} for s in splits]}
    return f"---\n{yaml.safe_dump(header, sort_keys=False)}---\n\n# {name}\n\n{card_body}\n"


def write_hf_folder(folder: str | Path, splits: dict[str, list[dict]], name: str, card_body: str) -> Path:
    """A Hub-style dataset folder: ``<split>.jsonl`` per split + ``README.md`` (configs, features, card).

    Read with ``datasets.load_dataset(str(folder), "<split>", split="train")``; frames stay relative to the
    dataset run directory (the folder's parent).
    """
    folder = Path(folder)
    for s, rows in splits.items():
        common.write_jsonl(folder / f"{s}.jsonl", (hf_row(r, s == "coldstart") for r in rows))
    common.atomic_write_text(folder / "README.md", _card(name, splits, card_body))
    return folder


def write_exports(run_dir: str | Path, splits: dict[str, list[dict]], card_body: str) -> dict[str, str]:
    """Write every export of a dataset run under ``<run_dir>/export/``; returns {export name: relative path}.

    - ``qwen_sft.json`` (SFT rows, direct) and ``qwen_coldstart.json`` (cold-start rows, st_cot): JSON lists;
    - ``swift_rft.jsonl``: the RFT rows as ms-swift/trl GRPO rows;
    - ``hf/``: the Hub-style folder of all splits.
    """
    run_dir = Path(run_dir)
    out = run_dir / "export"
    paths = {
        "qwen_sft": _write_json_list(out / "qwen_sft.json",
                                     (qwen_sft_record(r, "direct") for r in splits.get("sft", []))),
        "qwen_coldstart": _write_json_list(out / "qwen_coldstart.json",
                                           (qwen_sft_record(r, "st_cot") for r in splits.get("coldstart", []))),
        "swift_rft": common.write_jsonl(out / "swift_rft.jsonl", (grpo_record(r) for r in splits.get("rft", []))),
        "hf": write_hf_folder(out / "hf", splits, "MLLM4D-style synthetic datasets", card_body),
    }
    return {k: str(Path(v).relative_to(run_dir)) for k, v in paths.items()}


def _write_json_list(path: Path, records: Iterable[dict]) -> Path:
    """A JSON list, one record per line (diff-friendly, still one ``json.load``)."""
    body = ",\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    return common.atomic_write_text(path, f"[\n{body}\n]\n" if body else "[]\n")
