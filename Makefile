# Two commands on a fresh machine: `make rate` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
DB ?= rater.db

.PHONY: rate test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Light install: rating needs no torch.
$(VENV)/.rate-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

# Full install: torch 2.13.0 (local CPU build) first, so the train extra pulls no CUDA build.
$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,train]'
	touch $@ $(VENV)/.rate-installed

rate: $(VENV)/.rate-installed
	$(BIN)/rater --db $(DB) demo --if-empty --baseline 2
	$(BIN)/rater --db $(DB) rate

# Servers the tests run against (PostgreSQL), from the system's package manager where missing.
$(VENV)/.system-deps: scripts/system_deps.sh | $(BIN)/python
	bash scripts/system_deps.sh && touch $@ || true  # no stamp when a package is missing: tried again next time

# axe-core (accessibility checks of the rating page in Chromium), from the npm registry.
AXE_VERSION := 4.10.3
$(VENV)/axe/node_modules/axe-core/axe.min.js: | $(BIN)/python
	npm install --silent --no-audit --no-fund --prefix $(VENV)/axe axe-core@$(AXE_VERSION) || \
	  echo "note: could not install axe-core with npm; the accessibility test will skip and say why" >&2

test: $(VENV)/.test-installed $(VENV)/.system-deps $(VENV)/axe/node_modules/axe-core/axe.min.js
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(VENV)/.test-installed
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) *.egg-info
