# The two commands a new user runs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench docs clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "make: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The plot extra too, so that the tests of the calibration timeline picture run.
$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,plot]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m butler.demo

test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy compiler/butlerc runtime/butler

# Benchmarks run in their own virtualenv: the peer (lsst-daf-butler) ships a
# `butler` command of its own that would replace ours in .venv.
BENCH := .venv-bench
bench:
	@test -x $(BENCH)/bin/python || $(PYTHON) -m venv $(BENCH)
	$(BENCH)/bin/python -m pip install --quiet -e '.[test,peers,plot]'
	$(BENCH)/bin/python benchmarks/compile.py
	$(BENCH)/bin/python benchmarks/calibrations.py
	$(BENCH)/bin/python benchmarks/vs_daf_butler.py

docs: $(STAMP)
	$(BIN)/python -m butlerc.codes --write-docs docs/errors

clean:
	rm -rf $(VENV) $(BENCH) build *.egg-info .pytest_cache .hypothesis
