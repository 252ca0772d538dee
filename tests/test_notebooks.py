"""Every notebook, smoke-run in order by papermill on the ``smoke`` profile into a temporary outputs root.

Stages chain through files (each reads its upstream's run directory), so the tests run in stage order and
share one outputs root. The runner validates profile keys before papermill runs (papermill only warns).
"""
from pathlib import Path

import pytest

from mllm4d import common, runner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def outputs_root(tmp_path_factory):
    return tmp_path_factory.mktemp("outputs")


@pytest.mark.parametrize("stem", runner.stages())
def test_notebook_smoke(stem, outputs_root):
    runs = runner.plan("smoke", only=[stem], outputs_root=str(outputs_root))
    assert runs, f"params/smoke/{stem}.yaml missing"
    for run in runs:
        runner.execute(run, progress=False)
        d = runner.run_dir(run)
        assert (d / "params.json").exists() and (d / "metrics.json").exists(), f"{run.label} wrote no metrics"
        assert (d / f"{stem}.ipynb").exists()
        assert common.read_json(d / "params.json")["params"]["run_name"] == run.params["run_name"]
