"""Strip outputs and execution counts from notebooks/*.ipynb in place (keeps cell tags).

    python tools/strip.py [notebook ...]
"""
import glob
import sys

import nbformat

for path in sys.argv[1:] or sorted(glob.glob("notebooks/*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
        for k in ("execution", "ExecuteTime", "collapsed", "scrolled", "papermill"):
            c.metadata.pop(k, None)
    nb.metadata.pop("papermill", None)
    nbformat.write(nb, path)
    print(f"stripped {path}")
