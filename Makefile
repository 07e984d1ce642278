# aideploy: the two commands a newcomer needs are `make run` and `make test`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCAL_KUBECONFIG := $(CURDIR)/.local/kubeconfig
PYTEST_ARGS ?=
BENCH_ARGS ?=
# `make lock PIP_COMPILE_ARGS=--upgrade` (or --upgrade-package NAME) moves pins; plain
# `make lock` keeps every pin that still satisfies pyproject.toml.
PIP_COMPILE_ARGS ?=
# The lock files must not name this machine's indexes or wheel folders: a fresh clone elsewhere
# installs them from the default index.
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes \
  --strip-extras --no-emit-index-url --no-emit-find-links --allow-unsafe $(PIP_COMPILE_ARGS)

.PHONY: help install lock control-plane prometheus lint crds unit integration test bench run demo cluster-up cluster-down clean e2e-kind

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

# The versions CI tested, from the lock (hashes checked); then the project itself, editable,
# in a pip call of its own: --require-hashes cannot check an editable install.
$(STAMP): requirements-dev.lock requirements.lock pyproject.toml
	@echo "[install] creating .venv with the locked dependencies (a minute or two, first run only)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)
	@echo "[install] done: .venv is ready"

install: $(STAMP) ## create .venv with the operator and its dev tools, at the locked versions

lock: install ## re-pin requirements.lock (runtime) and requirements-dev.lock from pyproject.toml
	$(PIP_COMPILE) --extra dev -o requirements-dev.lock pyproject.toml
	$(PIP_COMPILE) --constraint requirements-dev.lock -o requirements.lock pyproject.toml

control-plane: ## build (or find cached) kube-apiserver, controller-manager and etcd
	@bash hack/build-control-plane.sh >/dev/null

prometheus: ## fetch (or find cached) Debian's prometheus and promtool for the tests
	bash hack/fetch-prometheus.sh >/dev/null

crds: install ## regenerate crds/ (and the Helm chart's copy) from the package's schema
	$(BIN)/python -m aideploy.api.crd > crds/aideployment.yaml
	cp crds/*.yaml charts/aideploy-operator/crds/

lint: install ## ruff, mypy --strict, and a check that crds/ is generated
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m aideploy.api.crd | diff -u crds/aideployment.yaml - \
	  || { echo "crds/ is stale: run 'make crds'"; exit 1; }

unit: install ## unit tests (pure logic, no cluster)
	$(BIN)/pytest tests/unit -q $(PYTEST_ARGS)

integration: install control-plane prometheus ## tests against a real control plane the suite starts
	$(BIN)/pytest tests/integration -q $(PYTEST_ARGS)

test: install control-plane prometheus lint ## install everything, lint, then run the whole suite
	$(BIN)/pytest tests -q $(PYTEST_ARGS)

bench: install control-plane prometheus ## figures, not pass/fail: BENCH_ROUNDS BENCH_OBJECTS BENCH_BURST BENCH_IDLE_SECONDS
	$(BIN)/python -m tests.bench.run

cluster-up: install control-plane ## start the local control plane; prints the KUBECONFIG line
	@$(BIN)/python -m tests.support.localcluster up

cluster-down: ## stop the local control plane started by cluster-up
	@$(BIN)/python -m tests.support.localcluster down

run: install ## run the operator against KUBECONFIG, or the local control plane when unset
	@if [[ -z "$${KUBECONFIG:-}" || "$${KUBECONFIG}" == "$(LOCAL_KUBECONFIG)" ]]; then \
	  $(MAKE) --no-print-directory control-plane; \
	fi
	@exec bash hack/run.sh $(RUN_ARGS)

demo: install control-plane ## the operator, the local control plane and a stand-in node: see README's walkthrough
	@exec $(BIN)/python -m tests.support.demo $(DEMO_ARGS)

e2e-kind: install ## kind cluster + image + Helm chart, then the end-to-end suite (needs docker, kind, kubectl)
	bash hack/e2e-kind.sh

clean: ## remove the virtualenv and caches (not the control-plane build cache)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
