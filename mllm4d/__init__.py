"""mllm4d: a notebook-first reproduction of MLLM-4D (arXiv 2603.00515).

Stages (notebooks/NN_*.ipynb) call this flat package; see README.md and docs/CONTRIBUTING.md.
Modules are imported explicitly (``from mllm4d import solver``) so that importing the package stays cheap.
"""
__version__ = "0.1.0"
