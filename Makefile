# Entry points: `make demo`, `make test` (lint, then every test), `make test-fast` (lint, then the unit tests:
# no test marked slow, under 2 minutes) and `make lint` (ruff: pyflakes, import order, lines <= 120).
# All create .venv on first use; `make demo` installs only what the demo runs (no dev extras: pyspark, wandb,
# tensorboard, ... are half of the install), the others add the dev extras.
# torch==2.13.0 is installed first so the project's `torch>=` range does not pull a CUDA build.
# The install compiles matching/_ngram_kernel.c (the matcher's C walk), so editing it re-runs the install.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.worldclip-installed
DEV_STAMP := $(VENV)/.worldclip-dev-installed
DEMO_OUT ?= demo_out
export NO_ALBUMENTATIONS_UPDATE := 1
export RAY_USAGE_STATS_ENABLED := 0
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test test-fast lint venv clean

venv: $(DEV_STAMP)

$(STAMP): pyproject.toml setup.py matching/_ngram_kernel.c
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e .
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(DEV_STAMP)

demo: $(STAMP)
	$(PY) -m pipelines.quickstart --out $(DEMO_OUT)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .

# Two pytest processes (the machines have 2 cores); --dist loadfile keeps each file's tests and fixtures in one;
# files go out in collection order, longest first (tests/conftest.py orders them).
test: lint
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder

test-fast: lint
	$(PY) -m pytest -m "not slow"

clean:
	rm -rf $(DEMO_OUT) .pytest_cache
