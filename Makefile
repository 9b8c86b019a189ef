# memgraph-ha developer commands. Every target creates/reuses .venv with the pinned dependencies.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
DURATION ?= 300
DEMO_ARGS ?=
HOLD ?= 0

VERSION  := $(shell sed -n 's/^version = //p' setup.cfg)
REGISTRY ?= ghcr.io/memgraph-ha
BROWSER_PKGS := chromium chromium-driver

.PHONY: help venv net-setup test lint unit scenarios demo bench soak images clean browser-deps

help:
	@echo "make demo   - 3-pod emulated cluster, a writer, a rolling restart, the final status"
	@echo "              (prints the status page's address; HOLD=120 keeps the cluster up 120 s after)"
	@echo "make demo DEMO_ARGS=--keep - the same, then the cluster stays up for kubectl until Ctrl-C"
	@echo "make test   - lint + the test suite without the long scenarios (what CI runs; XDIST= for one process)"
	@echo "make scenarios - every scenario, the long ones included"
	@echo "make net-setup  - as root: install nftables when missing (make test/demo/scenarios run it)"
	@echo "make bench  - measurements on the emulated cluster; last line is JSON"
	@echo "make soak DURATION=600 - randomized fault schedules"
	@echo "make images [REGISTRY=...] - hadolint, then docker build of both images where a Docker engine runs"

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

# The status page's browser test needs Debian's chromium + chromium-driver: installed here when missing and
# this runs as root with apt-get (quiet, once); otherwise the test skips and says why. Never fails the build.
browser-deps:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing $(BROWSER_PKGS) for the status page's browser test (apt-get)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -qq --no-install-recommends $(BROWSER_PKGS) >/dev/null 2>&1 \
	  || { apt-get update -qq >/dev/null 2>&1 \
	       && apt-get install -y -qq --no-install-recommends $(BROWSER_PKGS) >/dev/null 2>&1; } \
	  || echo "could not install $(BROWSER_PKGS): the browser test will skip"; \
	else echo "chromium/chromedriver missing (installing needs root and apt-get): the browser test will skip"; fi

# As root: install the Debian package nftables when `nft` is missing (silent partitions); quiet otherwise.
net-setup:
	@sh sim/net_setup.sh

# Two pytest workers (pytest-xdist, one file per worker at a time): the suite mostly waits on timeouts of
# the emulated cluster, so two workers halve the wall time on 2 cores. Tests marked `serial` run after, in
# one process (schemathesis' generated cases do not run on xdist workers). Both runs always happen; the
# target fails if either failed.
XDIST ?= -n 2 --dist loadfile
test: lint browser-deps net-setup
	@rc=0; $(BIN)/python -m pytest -m "not long and not serial" $(XDIST) $(PYTEST_ARGS) || rc=$$?; \
	$(BIN)/python -m pytest -m "serial and not long" $(PYTEST_ARGS) || rc=$$?; exit $$rc

scenarios: $(STAMP) net-setup
	$(BIN)/python -m pytest tests/scenarios $(PYTEST_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

demo: $(STAMP) net-setup
	$(BIN)/python -m sim.demo --hold $(HOLD) $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/python -m sim.bench

soak: $(STAMP)
	$(BIN)/python -m sim.soak --duration $(DURATION)

# Both images, tagged $(REGISTRY)/memgraph-ha-{agent,coordinator}:$(VERSION) (the chart's default tags).
# Without a running Docker engine (as on the development machines) it lints and says so, exit 0.
images: $(STAMP)
	$(BIN)/hadolint Dockerfile
	@if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
	  set -e; \
	  docker build --target agent -t $(REGISTRY)/memgraph-ha-agent:$(VERSION) . ; \
	  docker build --target coordinator -t $(REGISTRY)/memgraph-ha-coordinator:$(VERSION) . ; \
	  echo "built $(REGISTRY)/memgraph-ha-agent:$(VERSION) and $(REGISTRY)/memgraph-ha-coordinator:$(VERSION)"; \
	else \
	  echo "make images: no Docker engine available here; the Dockerfile passes hadolint, nothing was built"; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache
