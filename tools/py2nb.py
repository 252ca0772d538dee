"""Build a stripped notebook from a jupytext-style percent script (a convenience for authoring).

    python tools/py2nb.py notes.py notebooks/05_grpo.ipynb

Cells start with ``# %%`` (code), ``# %% [markdown]`` (markdown, lines prefixed ``# ``) or
``# %% tags=["parameters"]`` (the papermill parameters cell). The .ipynb is what is committed and run;
edit it in Jupyter afterwards if you like (strip outputs before committing: ``python tools/strip.py``).
"""
import json
import re
import sys

import nbformat


def convert(src: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    blocks = re.split(r"^# %%", src, flags=re.M)
    for block in blocks[1:]:
        header, _, body = block.partition("\n")
        body = body.strip("\n")
        if "[markdown]" in header:
            text = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in body.splitlines())
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell(body)
            m = re.search(r"tags=(\[.*\])", header)
            if m:
                cell.metadata["tags"] = json.loads(m.group(1))
            nb.cells.append(cell)
    for i, c in enumerate(nb.cells):  # stable ids keep diffs small
        c["id"] = f"c{i:02d}"
    return nb


if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    nbformat.write(convert(open(src, encoding="utf-8").read()), dst)
    print(f"wrote {dst}")
