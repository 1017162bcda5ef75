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

# The project's own modules compiled to bytecode, as pip does for an installed package: where
# PYTHONDONTWRITEBYTECODE is set, Python would otherwise compile them anew in every command
# (~0.3 s each). compileall skips what is current.
demo: $(STAMP)
	$(BIN)/python -m compileall -q dsrflow connectors flows sandbox
	$(BIN)/dsr demo

test: $(STAMP)
	bash scripts/ensure-postgres.sh
	bash scripts/ensure-browser.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 --dist loadgroup

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

# Regenerate constraints.txt from a clean resolve of pyproject.toml's ranges.
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet --upgrade pip
	.lockenv/bin/python -m pip install --quiet -e '.[test]'
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^dsrflow' > constraints.txt
	rm -rf .lockenv

# Benchmarks (not tests): every benchmark, one after the other (benchmarks/run_all.py builds the
# large on-prem databases under .sandbox/ when missing); figures into benchmarks/results/summary.md
# and .json and the README's table. Small sizes: make bench BENCH_FLAGS=--quick
BENCH_FLAGS ?=
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all $(BENCH_FLAGS)

clean:
	rm -rf $(VENV) .sandbox .pytest_cache .ruff_cache
