# ALB testbed. The two commands a new user needs: `make demo` and `make test`.
# Every target sets up what it needs (.venv, Docker engine, tools, images, cluster).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CACHE ?= $(or $(ALBTB_CACHE),$(HOME)/.cache/alb-testbed)
export PATH := $(CACHE)/bin/tools:$(abspath $(BIN)):$(PATH)
# Cluster shape: testbed's own default (DEFAULT_WORKERS, testbed/cluster/kindconfig.py) unless
# WORKERS=N is given, so `testbed cluster up`, `make cluster-up`, runs and e2e agree.
WORKERS ?=
PYTEST_ARGS ?=
PARALLEL ?= 3
SHARD ?=
REPORTS := reports

.PHONY: help venv docker images cluster-up cluster-down cluster-status lint unit integration \
        e2e test demo bench soak clean

help:
	@echo "make demo   - bring everything up and run the main job"
	@echo "make test   - lint + unit + integration + e2e tests (sets everything up)"
	@echo "make e2e    - e2e tests only, against the kind cluster"
	@echo "make bench  - benchmarks (ratios measured in one run)"
	@echo "make cluster-up | cluster-status | cluster-down"

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

venv: $(VENV)/.installed

docker:
	@bash testbed/assets/scripts/ensure-docker.sh

images: venv docker
	$(BIN)/testbed image build all

cluster-up: venv docker
	$(BIN)/testbed cluster up $(if $(WORKERS),--workers $(WORKERS))

cluster-down: venv
	$(BIN)/testbed cluster down

cluster-status: venv
	$(BIN)/testbed cluster status

lint: venv
	$(BIN)/ruff check controller testbed tests bench
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

integration: venv
	$(BIN)/pytest tests/integration -q $(PYTEST_ARGS)

# Scenarios run PARALLEL at a time; SHARD=K/N runs a stable share of them (a CI matrix).
e2e: venv docker images cluster-up
	@mkdir -p $(REPORTS)
	E2E_PARALLEL=$(PARALLEL) SHARD=$(SHARD) \
	  $(BIN)/pytest tests/e2e -q --junitxml=$(REPORTS)/e2e-junit$(if $(SHARD),-$(subst /,-of-,$(SHARD))).xml $(PYTEST_ARGS)

test: lint venv docker images cluster-up
	@mkdir -p $(REPORTS)
	E2E_PARALLEL=$(PARALLEL) $(BIN)/pytest tests -q --junitxml=$(REPORTS)/junit.xml $(PYTEST_ARGS)

demo: venv docker images cluster-up
	$(BIN)/testbed demo

bench: venv
	@bash testbed/assets/scripts/ensure-bench-tools.sh
	$(BIN)/python -m bench

# 10 minutes of 1,000 rps through the whole stack with no rollout (needs the cluster).
soak: venv docker images cluster-up
	$(BIN)/python -m bench.soak_bench

clean:
	rm -rf $(VENV) $(REPORTS) .mypy_cache .ruff_cache .pytest_cache
