# The two commands README promises on a fresh machine:
#   make repro   set up (if needed), then run every notebook on the tiny profile (the main job)
#   make test    set up (if needed), then run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export MPLBACKEND := Agg
export PYTHONUNBUFFERED := 1

PROFILE ?= tiny
# Runs at once (python -m mllm4d run --jobs): independent runs, e.g. the seven 06_eval runs, overlap on 2 cores.
JOBS ?= 2

.PHONY: setup repro test test-fast run clean-outputs

setup: $(STAMP)

# Re-installs only when requirements.txt or pyproject.toml change. open3d needs libusb at import time;
# install it from Debian when we are root and it is missing (a no-op elsewhere).
$(STAMP): requirements.txt pyproject.toml
	@if ! ldconfig -p 2>/dev/null | grep -q libusb-1.0; then \
	  if [ "$$(id -u)" = 0 ]; then (apt-get install -y -qq libusb-1.0-0 >/dev/null 2>&1 || \
	    (apt-get update -qq >/dev/null && apt-get install -y -qq libusb-1.0-0 >/dev/null)); \
	  else echo "warning: libusb-1.0-0 is missing (needed by open3d): sudo apt-get install libusb-1.0-0"; fi; fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	touch $(STAMP)

repro: setup
	$(PY) -m mllm4d run --profile $(PROFILE) --jobs $(JOBS)
	$(PY) tools/update_readme.py --profile $(PROFILE)

run: repro

test: setup
	@$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

clean-outputs:
	find outputs -mindepth 1 -maxdepth 1 ! -name .gitkeep ! -name README.md -exec rm -rf {} +
