"""The notebook runner: order, variants, skip-if-complete, force, unknown keys, stop at the failing cell."""
import nbformat
import pytest

from mllm4d import common, runner

pytestmark = pytest.mark.slow  # starts a few Jupyter kernels (~2 s each)

BODY = """
import json, pathlib
from mllm4d import common
d = common.stage_dir(STEM, run_name, outputs_root); d.mkdir(parents=True, exist_ok=True)
assert not fail, "asked to fail"
common.write_json(d / "params.json", {"params": dict(outputs_root=outputs_root, run_name=run_name, seed=seed, fail=fail)})
common.write_metrics(d, {"ok": 1})
"""


def _notebook(path, stem):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell('outputs_root: str = "outputs"  # root\nrun_name: str = "tiny"  # run\n'
                                  'seed: int = 0  # seed\nfail: bool = False  # fail on purpose')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {stem}"), p, nbformat.v4.new_code_cell(f"STEM = {stem!r}" + BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "params" / "t").mkdir(parents=True)
    for stem in ("01_a", "02_b"):
        _notebook(tmp_path / "notebooks" / f"{stem}.ipynb", stem)
    (tmp_path / "params" / "t" / "01_a.yaml").write_text("run_name: first\n")
    (tmp_path / "params" / "t" / "02_b@v2.yaml").write_text("run_name: second\n")
    monkeypatch.setattr(runner, "NOTEBOOKS", tmp_path / "notebooks")
    monkeypatch.setattr(runner, "PARAMS", tmp_path / "params")
    return tmp_path


def test_plan_orders_stages_and_variants(fake_repo):
    runs = runner.plan("t", outputs_root=str(fake_repo / "out"))
    assert [(r.label, r.params["run_name"]) for r in runs] == [("01_a", "first"), ("02_b", "tiny"), ("02_b@v2", "second")]


def test_run_skips_complete_and_force_reruns(fake_repo, capsys):
    out = str(fake_repo / "out")
    assert runner.run_all("t", outputs_root=out, progress=False) == 0
    assert (fake_repo / "out" / "02_b" / "second" / "02_b.ipynb").exists()
    assert common.read_json(fake_repo / "out" / "01_a" / "first" / "runner.json")["seconds"] > 0
    capsys.readouterr()
    assert runner.run_all("t", outputs_root=out, progress=False) == 0
    assert capsys.readouterr().out.count("complete, skipped") == 3
    assert runner.run_all("t", outputs_root=out, force=True, progress=False) == 0
    assert "skipped" not in capsys.readouterr().out


def test_unknown_yaml_key_is_an_error(fake_repo):
    (fake_repo / "params" / "t" / "01_a.yaml").write_text("rum_name: x\n")
    with pytest.raises(SystemExit, match="rum_name"):
        runner.plan("t")


def test_failing_cell_stops_the_run(fake_repo, capsys):
    (fake_repo / "params" / "t" / "01_a.yaml").write_text("fail: true\n")
    assert runner.run_all("t", outputs_root=str(fake_repo / "out"), progress=False) == 1
    err = capsys.readouterr().err
    assert "FAILED 01_a" in err and "asked to fail" in err
    assert not (fake_repo / "out" / "02_b").exists()


def test_parallel_run_matches_serial_and_stops_after_a_failure(fake_repo, capsys):
    out = str(fake_repo / "out")
    assert runner.run_all("t", outputs_root=out, progress=False, jobs=2) == 0
    assert all((fake_repo / "out" / s / r / "metrics.json").exists()
               for s, r in (("01_a", "first"), ("02_b", "tiny"), ("02_b", "second")))
    assert "2 at a time" in capsys.readouterr().out
    assert runner.run_all("t", outputs_root=out, progress=False, jobs=2) == 0
    assert capsys.readouterr().out.count("complete, skipped") == 3
    (fake_repo / "params" / "t" / "02_b@v2.yaml").write_text("run_name: second\nfail: true\n")
    assert runner.run_all("t", outputs_root=out, progress=False, jobs=2) == 1
    assert "FAILED 02_b@v2" in capsys.readouterr().err


def _run(stem, **params):
    return runner.Run(stem, "", None, params)


@pytest.mark.parametrize("run, earlier, expected", [
    (_run("03_dataset", curation_run="c"), _run("01_curation", run_name="c"), True),
    (_run("03_dataset", curation_run="c"), _run("01_curation", run_name="d"), False),
    (_run("05_grpo", sft_run="s", dataset_run="x"), _run("04_sft", run_name="s"), True),
    (_run("06_eval", model="", model_stage="04_sft/sft", model_run="s"), _run("04_sft", run_name="s"), True),
    (_run("06_eval", model="tiny:qwen3_vl", model_stage="04_sft/sft", model_run="s"), _run("04_sft", run_name="s"), False),
    (_run("06_eval", model="", model_stage="05_grpo", model_run="s"), _run("04_sft", run_name="s"), False),
    (_run("04_sft", model="outputs/04_sft/tiny/sft/model"), _run("04_sft", run_name="tiny"), True),
    (_run("04_sft", model="outputs/04_sft/tiny2/sft/model"), _run("04_sft", run_name="tiny"), False),
    (_run("05_grpo", mystery_run="a"), _run("01_curation", run_name="z"), True),   # unknown *_run: wait for all
    (_run("07_bench", table3_runs=["sft:s"]), _run("02_solver", run_name="z"), True),
])
def test_depends_on(run, earlier, expected):
    assert runner.depends_on(run, earlier) is expected


def test_tiny_profile_graph_lets_independent_runs_overlap():
    runs = runner.plan("tiny")
    labels = [r.label for r in runs]
    after = {r.label: {labels[j] for j in d} for r, d in zip(runs, runner.dependencies(runs))}
    assert after["06_eval@base"] == {"03_dataset"}
    assert after["05_grpo@acc"] == {"03_dataset", "04_sft"}
    assert after["04_sft@more"] == {"03_dataset", "04_sft"}
    assert after["06_eval@grpo_acc"] == {"03_dataset", "05_grpo@acc"}
    assert after["07_bench"] == set(labels) - {"07_bench"}
