# The two commands of the README: `make demo` (the main job in the sandbox) and `make test`.
# Each creates .venv and installs the pinned dependencies (constraints.txt) when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Privacy tool: no telemetry from the embedded Prefect server.
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: demo test lint bench lock clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dsr demo

test: $(STAMP)
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-browser.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

# Regenerate constraints.txt from a clean resolve of pyproject.toml's ranges.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet --upgrade pip
	.lockenv/bin/python -m pip install --quiet -e '.[test]'
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^dsrflow' > constraints.txt
	rm -rf .lockenv

# Benchmarks (not tests): build the large on-prem database once, then measure an access request.
BENCH_DB := .sandbox/large-10m.db
$(BENCH_DB): | $(STAMP)
	mkdir -p .sandbox
	$(BIN)/python -m sandbox.large --out $(BENCH_DB) --events 10000000

bench: $(STAMP) $(BENCH_DB)
	$(BIN)/python -m benchmarks.onprem_access --url sqlite:///$(BENCH_DB) --repeat 5 --check

clean:
	rm -rf $(VENV) .sandbox .pytest_cache .ruff_cache
