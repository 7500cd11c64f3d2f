# Set-up in two commands: `make demo` and `make test`. Both create .venv with a Python >= 3.12 found
# on PATH first, then among pyenv's installed versions, and install the exact versions of requirements.lock
# (hashes checked), so a seed reproduces bit for bit until the lock is regenerated (`make lock`).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LOCK := requirements.lock
PYTEST_ARGS ?=

.PHONY: demo test stress lint venv lock reference-env browser clean

$(STAMP): pyproject.toml $(LOCK)
	@set -e; \
	if [ ! -x "$(PY)" ]; then \
	  py=""; \
	  for c in python3.13 python3.12 python3 python; do \
	    p=$$(command -v $$c 2>/dev/null) || continue; \
	    if $$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then py=$$p; break; fi; \
	  done; \
	  if [ -z "$$py" ]; then \
	    root=$$(pyenv root 2>/dev/null || echo $$HOME/.pyenv); \
	    for p in $$(ls -d $$root/versions/3.1[2-9]*/bin/python3 2>/dev/null | sort -V -r); do \
	      if $$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then py=$$p; break; fi; \
	    done; \
	  fi; \
	  if [ -z "$$py" ]; then \
	    echo "error: jgan needs Python >= 3.12 (jax >= 0.11 dropped 3.11); none found on PATH or in pyenv's versions." >&2; \
	    echo "       Install one (e.g. 'pyenv install 3.12') and run make again." >&2; exit 1; \
	  fi; \
	  echo "Creating $(VENV) with $$py ($$($$py --version))"; \
	  $$py -m venv $(VENV); \
	fi; \
	$(PY) -m pip install -q --upgrade pip; \
	$(PY) -m pip install -q --require-hashes -r $(LOCK); \
	$(PY) -m pip install -q --no-deps -e .; \
	touch $(STAMP)

venv: $(STAMP)

# requirements.lock: the exact versions (with hashes) of jgan's dependencies and its judge, test, lint,
# crosscheck and cloud extras (all the venv above installs), resolved by uv from pyproject's ranges for every
# platform and Python >= 3.12.
# `make lock` keeps the pinned versions that still satisfy pyproject (adding what is new);
# `make lock LOCK_ARGS=--upgrade` moves everything to the newest versions. uv runs from its own small
# environment (.venv-lock), never from jgan's.
UV_VERSION := 0.13.9
LOCK_ARGS ?=

lock:
	@set -e; \
	if [ ! -x .venv-lock/bin/uv ]; then \
	  python3 -m venv .venv-lock && .venv-lock/bin/python -m pip install -q uv==$(UV_VERSION); \
	fi; \
	.venv-lock/bin/uv pip compile pyproject.toml --extra judge --extra test --extra lint --extra crosscheck --extra cloud \
	  --universal --python-version 3.12 --generate-hashes --custom-compile-command "make lock" \
	  --quiet $(LOCK_ARGS) -o $(LOCK); \
	echo "wrote $(LOCK): $$(grep -c '^[A-Za-z0-9]' $(LOCK)) pinned packages"

# The reference packages (pytorch-fid, clean-fid) that tests/test_metrics_references.py compares the
# metrics with need PyTorch + torchvision: a separate environment, so jgan's own never holds them.
# Python 3.11 first (where this machine keeps PyTorch wheels on disk), else python3. About 6 GB;
# `make test SKIP_REFERENCE=1` skips it (those tests then skip, saying why).
REF_VENV := .venv-ref
REF_STAMP := $(REF_VENV)/.installed
SKIP_REFERENCE ?=

$(REF_STAMP): tests/reference/requirements.txt
	@set -e; \
	py=$$(command -v python3.11 2>/dev/null || command -v python3); \
	echo "Creating $(REF_VENV) with $$py ($$($$py --version)) for the reference packages"; \
	$$py -m venv $(REF_VENV); \
	$(REF_VENV)/bin/python -m pip install -q --upgrade pip; \
	$(REF_VENV)/bin/python -m pip install -q -r tests/reference/requirements.txt; \
	touch $(REF_STAMP)

reference-env: $(REF_STAMP)

demo: $(STAMP)
	$(PY) launch.py --config configs/demo_mnist5k.py --workdir runs/demo

# The browser tests of `jgan judge` (tests/test_labs_judge_browser.py) drive Chromium through Playwright
# with the system's browser (Playwright's own download is not used): Debian's chromium package, installed
# here if missing (CI runs as root; elsewhere through sudo). JGAN_CHROMIUM names another Chromium binary.
CHROMIUM ?= $(or $(JGAN_CHROMIUM),/usr/bin/chromium)

browser:
	@set -e; \
	if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "error: the browser tests need Chromium at $(CHROMIUM) (set JGAN_CHROMIUM to its path)" >&2; exit 1; \
	fi; \
	sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	echo "Installing chromium (Debian package) for the browser tests"; \
	$$sudo apt-get update -q; \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q -o DPkg::Lock::Timeout=600 chromium

test: $(STAMP) browser $(if $(SKIP_REFERENCE),,$(REF_STAMP))
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

# The fault, checkpoint and multi-process tests STRESS_N times each (and the first-save kill
# STRESS_FIRST_SAVE times) while two busy loops load the cores; prints how many repeats of each test
# passed. Not part of `make test` (about an hour on 2 cores).
STRESS_N ?= 5
STRESS_FIRST_SAVE ?= 20
stress: $(STAMP)
	$(PY) -m tests.stress --count $(STRESS_N) --first_save_count $(STRESS_FIRST_SAVE) --busy 2 $(PYTEST_ARGS)

# ruff (lint rules and formatting, pyproject's [tool.ruff]) and mypy ([tool.mypy]) over the repository.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(REF_VENV) .venv-lock runs .pytest_cache
