"""07_bench tables and plots, from small metrics files written here."""
import math

import pytest

from mllm4d import common, plots, tables
from mllm4d.prompts import SUBTASK_NAMES, SUBTASKS


def _eval(root, run, acc):
    per = {s: acc + 0.01 * k for k, s in enumerate(SUBTASKS)}
    common.write_metrics(common.stage_dir("06_eval", run, root), {
        "overall": sum(per.values()) / 6, "micro": acc, "per_subtask": per,
        "ci95": {"overall": [acc - 0.05, acc + 0.05]}, "chance": 0.25, "constant_letter": 0.3, "n": 60})


def test_parse_runs_rejects_malformed():
    assert tables.parse_runs(["sft:a", " grpo_st : b "]) == {"sft": "a", "grpo_st": "b"}
    with pytest.raises(ValueError, match="label:run_name"):
        tables.parse_runs(["sft=a"])


def test_accuracy_table_orders_runs_and_reports_percent(tmp_path, capsys):
    _eval(tmp_path, "r_sft", 0.5)
    _eval(tmp_path, "r_base", 0.25)
    evals = tables.collect_evals(tmp_path, {"sft": "r_sft", "base": "r_base", "grpo_st": "missing"})
    assert "grpo_st" in capsys.readouterr().out  # a missing run is reported, not fatal
    df = tables.accuracy_table(evals)
    assert list(df.index) == ["base", "sft"]
    assert df.loc["sft", SUBTASK_NAMES["cad"]] == pytest.approx(50.0)
    assert df.loc["base", "overall"] == pytest.approx(100 * (0.25 + 0.025))
    md = tables.to_markdown(df)
    assert md.count("\n") == 4 and "| sft |" in md and "| 60 |" in md


def test_summary_metrics_are_fractions_with_stage_times(tmp_path):
    _eval(tmp_path, "r", 0.4)
    common.write_json(tmp_path / "04_sft" / "tiny" / "runner.json", {"seconds": 12.5})
    evals = tables.collect_evals(tmp_path, {"sft": "r"})
    m = tables.summary_metrics(evals, tables.stage_times(tmp_path))
    assert set(SUBTASKS) <= set(m["sft"]) and m["sft"]["chance"] == 0.25
    assert m["stage_seconds"] == {"04_sft/tiny": 12.5} and m["total_seconds"] == 12.5
    assert 0 <= m["sft"]["overall"] <= 1
    assert set(m["sft"]["ci95"]) == set(SUBTASKS) and m["sft_above_base"] == []  # no base run: nothing to beat


def test_plots_write_png_and_html(tmp_path):
    _eval(tmp_path, "a", 0.3)
    df = tables.accuracy_table(tables.collect_evals(tmp_path, {"sft": "a"}))
    png = plots.save_png(plots.accuracy_bars(df), tmp_path / "t.png")
    html = plots.save_html(plots.accuracy_bars_plotly(df), tmp_path / "t.html")
    assert png.read_bytes()[:4] == b"\x89PNG" and "plotly" in html.read_text()[:5000].lower()
    pts = tables.scaling_points(tmp_path, ["100:a", "1000:none"])
    assert len(pts) == 1 and math.isclose(pts["items"][0], 100)


def test_separated_needs_the_whole_interval_above():
    def ev(acc, half):
        return {"ci": {k: [acc[k] - half, acc[k] + half] for k in acc}, **acc}
    keys = (*SUBTASKS, "overall")
    base = ev({k: 0.25 for k in keys}, 0.1)
    sft = ev({**{k: 0.3 for k in keys}, "crd": 0.6, "ocrd": 0.45}, 0.1)  # crd clears 0.35, ocrd touches it
    evals = {"base": base, "sft": sft}
    assert tables.separated(evals, "sft", "base") == ["crd"]
    assert tables.separated(evals, "sft", "blind") == []
    ci = tables.interval_table(evals)
    assert ci.loc["sft", SUBTASK_NAMES["crd"]] == "60 [50, 70]" and list(ci.index) == ["base", "sft"]
