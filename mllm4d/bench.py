"""Rescore VLM4D-format prediction files without an API: ``python -m mllm4d.bench rescore …``.

    python -m mllm4d.bench rescore --questions /work/shared/external/vlm4d/data \\
        --predictions /work/shared/external/vlm4d/processed_outputs_paper_results --out vlm4d.json [--judge-fields]

``--questions`` holds ``real_mc.json`` / ``synthetic_mc.json`` (VLM4D's ``data/``). ``--predictions`` holds either
VLM4D's released layout ``{real_mc,synthetic_mc}_<prompt>/<model>.json`` (results keyed ``"<prompt>/<model>"``,
e.g. ``cot/gpt-4o_32frame``) or MLLM-4D's ``real_mc/`` + ``synthetic_mc/`` (keyed ``"<model>"``). A file is a JSON
list of items with an ``id`` and a ``response``: raw model text, an already extracted letter (MLLM-4D), or a
judged record with ``correct`` and ``extracted_answer`` (VLM4D's o4-mini judge, "A: text" / "No Valid Answer").

Scoring (paper.md §5.1-5.2): GT = the letter(s) whose option text equals the question's ``answer`` (from the
questions file; two letters for the one item with C = D); a prediction is right when its letter is one of
them. The letter comes from :func:`answer.extract_choice` on ``response``, or — with ``--judge-fields`` and where
the file has them — from the judge's ``correct`` flags (this reproduces the published tables exactly).
Where the judge's ``extracted_answer`` exists, ``judge_agreement`` is the share of items on which the
rule-based letter equals the judge's letter ("No Valid Answer" counts as ``""``).

Output JSON: ``{key: {real, real_ego, real_exo, synthetic, synthetic_directional, synthetic_fp, overall`` (all
percent), ``n_*`` counts, ``empty`` (items with no letter), ``judge_agreement`` (percent) and
``n_judge``, per file ``judge_agreement_{real,synthetic}``, ``scored_by``}}``; a table is printed. ``--summary FILE`` also writes the overall agreement.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

from mllm4d import answer, common, scoring

SPLITS: tuple[str, ...] = ("real", "synthetic")
TABLE_COLUMNS: tuple[str, ...] = ("real_ego", "real_exo", "real", "synthetic_directional", "synthetic_fp",
                                  "synthetic", "overall")


def judge_letter(extracted: Any, choices: dict) -> str:
    """The letter in a judge's ``extracted_answer``: ``"B: text"`` -> B; a bare option text -> its letter;
    ``"No Valid Answer"`` or anything else -> "".

    >>> judge_letter("B: there are no buses", {}), judge_letter("No Valid Answer", {"A": "x"})
    ('B', '')
    >>> judge_letter("not moving", {"A": "left", "B": "not moving"})
    'B'
    """
    if not isinstance(extracted, str):
        return ""
    m = re.match(r"^\s*\(?([A-Z])\)?\s*[:.)]", extracted)
    if m and (not choices or m.group(1) in {str(k).upper() for k in choices}):
        return m.group(1)
    if re.fullmatch(r"\s*[A-Z]\s*", extracted) and extracted.strip() in {str(k).upper() for k in choices}:
        return extracted.strip()
    return answer.option_letter(extracted, choices)


def discover(pred_dir: str | Path) -> list[dict]:
    """Model files under ``pred_dir``: ``[{"key", "files": {"real": Path, "synthetic": Path}}]``, sorted."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"--predictions {pred_dir}: not a directory")
    models: dict[str, dict[str, Path]] = {}
    for sub in sorted(pred_dir.iterdir()):
        m = re.fullmatch(r"(real|synthetic)_mc(?:_(.+))?", sub.name)
        if not (sub.is_dir() and m):
            continue
        split, prompt = m.group(1), m.group(2)
        for f in sorted(sub.glob("*.json")):
            key = f"{prompt}/{f.stem}" if prompt else f.stem
            models.setdefault(key, {})[split] = f
    if not models:
        raise FileNotFoundError(f"--predictions {pred_dir}: no real_mc[_<prompt>]/ or synthetic_mc[_<prompt>]/ "
                                f"folders with *.json files")
    return [{"key": k, "files": v} for k, v in sorted(models.items())]


def load_questions(q_dir: str | Path) -> dict[str, dict[str, dict]]:
    """``{"real": {id: item}, "synthetic": {id: item}}`` from ``real_mc.json`` / ``synthetic_mc.json``."""
    out = {}
    for split in SPLITS:
        path = Path(q_dir) / f"{split}_mc.json"
        if not path.exists():
            raise FileNotFoundError(f"--questions: {path} is missing")
        items = common.read_json(path)
        for i, it in enumerate(items):
            for key in ("id", "choices", "answer"):
                if key not in it:
                    raise ValueError(f"{path}: item {i} has no {key!r}")
        out[split] = {str(it["id"]): it for it in items}
    return out


def score_items(items: list[dict], questions: dict[str, dict], split: str, judge_fields: bool,
                source: str = "") -> tuple[list[dict], int]:
    """Per-item records ``{split, id, answer, pred, correct, judge}`` and the number of items skipped.

    An item whose id is not in ``questions`` is scored against its own ``choices`` and ``answer`` /
    ``ground_truth_answer`` when it has them, else skipped (counted, never fatal).
    """
    records, skipped = [], 0
    for it in items:
        q = questions.get(str(it.get("id"))) if isinstance(it, dict) else None
        if q is None and isinstance(it, dict) and "choices" in it and ("answer" in it or "ground_truth_answer" in it):
            q = {"choices": it["choices"], "answer": it.get("answer", it.get("ground_truth_answer"))}
        if q is None:
            skipped += 1
            continue
        gts = scoring.gt_letters(q["choices"], q["answer"])
        pred = answer.extract_choice(it.get("response", ""), q["choices"])
        use_judge = judge_fields and isinstance(it.get("correct"), bool)
        records.append({
            "split": split, "id": str(it["id"]), "answer": q["answer"], "pred": pred,
            "correct": it["correct"] if use_judge else scoring.is_correct(pred, gts),
            "judge": judge_letter(it["extracted_answer"], q["choices"]) if "extracted_answer" in it else None,
            "release": answer.release_choice(it.get("response", "")),
            "scored_by": "judge" if use_judge else "extractor"})
    if skipped:
        print(f"warning: {source}: {skipped} item(s) without a matching question were skipped", file=sys.stderr)
    return records, skipped


def _pct(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(100.0 * x, 6)


def model_result(records: list[dict], skipped: int = 0) -> dict:
    """One model's row: the VLM4D table in percent, counts, empty answers and judge agreement."""
    table = scoring.vlm4d_table(records)
    out: dict[str, Any] = {k: _pct(table[k]) for k in TABLE_COLUMNS}
    out.update({f"n_{k}": table[f"n_{k}"] for k in TABLE_COLUMNS})
    out["empty"] = sum(r["pred"] == "" for r in records)
    judged = [r for r in records if r["judge"] is not None]
    agree = sum(r["pred"] == r["judge"] for r in judged)
    out["judge_agreement"] = _pct(agree / len(judged)) if judged else None
    out["n_judge"], out["judge_agree"] = len(judged), agree
    out["release_agree"] = sum(r["release"] == r["judge"] for r in judged)  # the release's cascade, for comparison
    for split in SPLITS:  # per prediction file
        js = [r for r in judged if r["split"] == split]
        out[f"judge_agreement_{split}"] = _pct(sum(r["pred"] == r["judge"] for r in js) / len(js)) if js else None
    out["scored_by"] = sorted({r["scored_by"] for r in records})
    out["skipped"] = skipped
    return out


def rescore(questions_dir: str | Path, predictions_dir: str | Path, judge_fields: bool = False) -> dict:
    """``{key: model_result}`` for every model file under ``predictions_dir`` (see module docstring)."""
    questions = load_questions(questions_dir)
    results = {}
    for model in discover(predictions_dir):
        records, skipped = [], 0
        for split, path in model["files"].items():
            items = common.read_json(path)
            if not isinstance(items, list):
                raise ValueError(f"{path}: expected a JSON list of prediction items")
            r, s = score_items(items, questions[split], split, judge_fields, source=str(path))
            records += r
            skipped += s
        results[model["key"]] = model_result(records, skipped)
    return results


def agreement_summary(results: dict) -> dict:
    """Extractor-vs-judge agreement pooled over every judged item (and the worst file)."""
    judged = {k: v for k, v in results.items() if v["n_judge"]}
    n = sum(v["n_judge"] for v in judged.values())
    agree = sum(v["judge_agree"] for v in judged.values())
    release = sum(v["release_agree"] for v in judged.values())
    worst = min(judged, key=lambda k: judged[k]["judge_agree"] / judged[k]["n_judge"], default=None)
    return {"n": n, "agree": agree, "agreement": _pct(agree / n) if n else None, "n_models": len(judged),
            "release_cascade_agreement": _pct(release / n) if n else None,
            "worst": worst, "worst_agreement": judged[worst]["judge_agreement"] if worst else None}


def format_table(results: dict) -> str:
    """Plain-text table: key, the seven VLM4D columns (%), empty answers, agreement with the judge (%)."""
    head = ["model", "Ego", "Exo", "Real", "Dir", "FP", "Syn", "Overall", "empty", "agree"]
    width = max([len(head[0])] + [len(k) for k in results])
    lines = [f"{head[0]:<{width}} " + " ".join(f"{h:>7}" for h in head[1:])]
    fmt = lambda x: "    -  " if x is None else f"{x:7.1f}"  # noqa: E731
    for k, v in results.items():
        cells = [fmt(v[c]) for c in TABLE_COLUMNS] + [f"{v['empty']:7d}", fmt(v["judge_agreement"])]
        lines.append(f"{k:<{width}} " + " ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mllm4d.bench", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    rs = sub.add_parser("rescore", help="score VLM4D-format prediction files (no API calls)")
    rs.add_argument("--questions", required=True, help="folder with real_mc.json and synthetic_mc.json")
    rs.add_argument("--predictions", required=True, help="folder with {real,synthetic}_mc[_<prompt>]/<model>.json")
    rs.add_argument("--out", required=True, help="JSON file to write the per-model results to")
    rs.add_argument("--judge-fields", action="store_true",
                    help="score by the files' judge `correct` flags where present (reproduces published tables)")
    rs.add_argument("--summary", default=None, help="optional JSON file for the pooled judge agreement")
    args = ap.parse_args(argv)
    results = rescore(args.questions, args.predictions, judge_fields=args.judge_fields)
    common.write_json(args.out, results)
    print(format_table(results))
    summ = agreement_summary(results)
    if summ["n"]:
        print(f"\nrule-based extractor vs judge: {summ['agree']}/{summ['n']} = {summ['agreement']:.2f} % over "
              f"{summ['n_models']} models (lowest: {summ['worst']} {summ['worst_agreement']:.2f} %); the release's "
              f"cascade: {summ['release_cascade_agreement']:.2f} %")
    if args.summary:
        common.write_json(args.summary, summ)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
