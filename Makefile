# memgraph-ha developer commands. Every target creates/reuses .venv with the pinned dependencies.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
DURATION ?= 300
DEMO_ARGS ?=

.PHONY: help venv test lint unit scenarios demo bench soak clean

help:
	@echo "make demo   - 3-pod emulated cluster, a writer, a rolling restart, the final status"
	@echo "make demo DEMO_ARGS=--keep - the same, then the cluster stays up for kubectl until Ctrl-C"
	@echo "make test   - lint + the test suite without the long scenarios (what CI runs)"
	@echo "make scenarios - the long scenarios (marked long)"
	@echo "make bench  - measurements on the emulated cluster; last line is JSON"
	@echo "make soak DURATION=600 - randomized fault schedules"

$(STAMP): constraints.txt setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=23" 
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	@touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest -m "not long" $(PYTEST_ARGS)

scenarios: $(STAMP)
	$(BIN)/python -m pytest tests/scenarios -m long $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

demo: $(STAMP)
	$(BIN)/python -m sim.demo $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/python -m sim.bench

soak: $(STAMP)
	$(BIN)/python -m sim.soak --duration $(DURATION)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
