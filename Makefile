# A newcomer's set-up: `make demo` runs a real deploy against the built-in Astro emulator,
# `make test` runs the whole test suite. Both need only Python 3.11+, git and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint fmt emulator bench clean

$(STAMP): pyproject.toml testkit/pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' -e ./testkit
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy ci_deploy testkit/ci_deploy_testkit

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Start-up time of a DAG-only run; BASELINE=<another checkout with its own .venv> compares.
bench: $(STAMP)
	$(BIN)/python scripts/bench_startup.py . $(BASELINE)

emulator: $(STAMP)
	$(BIN)/ci-deploy emulator

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
