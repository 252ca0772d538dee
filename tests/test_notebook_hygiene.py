"""Notebook and profile contracts (README "Notebook anatomy"): enforced here, not by a git hook.

- committed notebooks carry no outputs; cell 0 is a markdown title; exactly one cell (cell 1) is tagged
  ``parameters`` and holds only annotated literal assignments, each with a comment;
- notebooks stay thin: no class, no function longer than 5 lines;
- the setup cell validates parameters (common.collect) and starts the run (common.start_run);
- params/<profile>/<stem>[@variant].yaml name existing notebooks and only their parameters;
  params/tiny/<stem>.yaml mirrors the parameters cell exactly (the notebook defaults ARE the tiny profile);
- package modules stay small.
"""
import ast
from pathlib import Path

import nbformat
import pytest
import yaml

from mllm4d import runner

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
YAMLS = sorted((ROOT / "params").glob("*/*.yaml"))


def _code(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_anatomy(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), "cell 0: '# Title'"
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [1], f"exactly one parameters cell, at index 1; got {tagged}"
    for c in _code(nb):
        assert c.outputs == [] and c.execution_count is None, "commit notebooks stripped (python tools/strip.py)"
    setup = nb.cells[2].source
    assert "common.collect(" in setup and "common.start_run(" in setup, "cell 2 validates params and starts the run"
    assert "## Summary" in "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_is_flat_commented_literals(path):
    src = nbformat.read(path, as_version=4).cells[1].source
    tree = ast.parse(src)
    names = set()
    for node in tree.body:
        assert isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name), \
            f"line {node.lineno}: only `name: type = literal  # comment`"
        ast.literal_eval(node.value)  # raises on anything derived or computed
        assert "#" in src.splitlines()[node.lineno - 1], f"line {node.lineno}: add a comment"
        names.add(node.target.id)
    assert {"outputs_root", "run_name", "seed"} <= names
    # papermill must parse every line too (e.g. an "=" inside the comment defeats its regex): an unparsed name
    # still gets injected, but `papermill --help-notebook` and its unknown-parameter warning then lie
    from papermill.translators import PythonTranslator
    assert {p.name for p in PythonTranslator.inspect({"source": src})} == names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_stays_thin(path):
    for c in _code(nbformat.read(path, as_version=4)):
        src = "\n".join(l for l in c.source.splitlines() if not l.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(src)):
            assert not isinstance(node, ast.ClassDef), "no classes in notebooks: put them in mllm4d/"
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                assert n <= 5, f"function {node.name} is {n} lines: move it to the package"


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_profile_yaml_keys_are_notebook_parameters(path):
    stem = path.stem.split("@")[0]
    assert (ROOT / "notebooks" / f"{stem}.ipynb").exists(), f"{path}: no notebook {stem}.ipynb"
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - set(runner.notebook_defaults(stem))
    assert not unknown, f"{path}: unknown parameters {sorted(unknown)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_tiny_profile_mirrors_notebook_defaults(path):
    data = yaml.safe_load((ROOT / "params" / "tiny" / f"{path.stem}.yaml").read_text())
    assert data == runner.notebook_defaults(path.stem)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_profile_covers_every_notebook(path):
    for profile in ("tiny", "smoke", "paper"):
        assert (ROOT / "params" / profile / f"{path.stem}.yaml").exists(), f"params/{profile}/{path.stem}.yaml"


def test_package_modules_stay_small():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "mllm4d").glob("*.py")}
    big = {k: v for k, v in sizes.items() if v > 600}
    assert not big, f"split these modules (soft cap 400 lines): {big}"
