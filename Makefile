# staticsite-operator: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

include hack/versions.env

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE := $(or $(STATICSITE_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/staticsite-operator)
TOOLS_BIN := $(CACHE)/$(KUBE_VERSION)/bin
KUBECONFIG_PATH := $(CACHE)/kubeconfig
export PATH := $(TOOLS_BIN):$(PATH):/usr/sbin
IMAGE ?= staticsite-operator:dev
PYTEST_ARGS ?=

##@ Set-up
.PHONY: venv tools nginx
venv: $(VENV)/.installed ## Python virtualenv with the operator and its test/lint tools
$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11+ is required: install python3 and re-run"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -U 'pip>=25.1'
	$(VENV)/bin/pip install -q -e . --group dev --group bench
	@touch $@

tools: ## Build the pinned control plane, kwok, kubectl and helm (cached; ~7 min cold)
	hack/build-tools.sh

nginx: ## Install Debian's nginx and busybox (nginx checks and serves rendered configs; busybox runs the fetch scripts as the pod would)
	@command -v nginx >/dev/null && command -v busybox >/dev/null || { echo "installing nginx-light busybox (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light busybox >/dev/null \
	  || { echo "could not install them: run 'sudo apt-get install nginx-light busybox' and re-run"; exit 1; }; }

##@ Cluster
.PHONY: cluster-up cluster-down
cluster-up: tools ## Start the local kwok cluster (kubeconfig in ~/.cache/staticsite-operator/kubeconfig)
	@hack/cluster.sh up >/dev/null

cluster-down: ## Stop and delete the local cluster
	hack/cluster.sh down

##@ Develop
.PHONY: dev crd lint fmt run
crd: venv ## Regenerate crds/ and the chart's copy from models.py
	cd operator && ../$(PY) -m staticsite_operator.api.crd > ../crds/staticsite.dev_staticsites.yaml
	cp crds/staticsite.dev_staticsites.yaml charts/staticsite-operator/crds/ 2>/dev/null || true

dev: venv cluster-up ## Cluster + CRD + example sites, then run the operator here (Ctrl-C to stop)
	KUBECONFIG=$(KUBECONFIG_PATH) kubectl apply --server-side -f crds/
	KUBECONFIG=$(KUBECONFIG_PATH) kubectl apply -f examples/
	@echo "operator starting; in another shell: export KUBECONFIG=$(KUBECONFIG_PATH); kubectl get staticsites -A"
	KUBECONFIG=$(KUBECONFIG_PATH) STATICSITE_LISTEN_ADDRESS=127.0.0.1 STATICSITE_HEALTH_PORT=8081 \
	  $(PY) -m staticsite_operator

lint: venv ## ruff, mypy --strict, the import layers contract, hadolint
	$(VENV)/bin/ruff check operator tests bench hack
	$(VENV)/bin/mypy
	cd operator && ../$(VENV)/bin/lint-imports --config ../pyproject.toml
	$(VENV)/bin/hadolint Dockerfile

fmt: venv ## Fix what ruff can fix
	$(VENV)/bin/ruff check --fix operator tests bench hack

##@ Test
.PHONY: test test-unit test-integration
test: venv tools nginx lint ## Everything CI runs: lint, unit, integration, install tests, and the bench and chaos harnesses, small
	$(PY) -m pytest tests bench/test_smoke.py bench/test_chaos_smoke.py $(PYTEST_ARGS)

test-unit: venv nginx ## Tests that need no cluster
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: venv tools ## Tests against the local cluster (started if needed)
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

##@ Benchmark
.PHONY: bench
bench: venv tools ## Convergence time, API writes and memory for 10, 100 and 1000 sites
	$(PY) -m bench $(BENCH_ARGS)

##@ Reliability
.PHONY: chaos
chaos: venv tools ## Faults (kills, API and etcd restarts, stalls, 429/5xx, failovers) while 300 sites converge; ~1 h
	$(PY) -m bench.chaos $(CHAOS_ARGS)

##@ Image (needs Docker)
.PHONY: image e2e-kind
image: ## Build the operator image
	docker build -t $(IMAGE) .

e2e-kind: venv image ## kind cluster, image loaded, helm install, a site served through a port-forward
	$(PY) -m pytest tests/e2e_kind --cluster=kind $(PYTEST_ARGS)

##@ Help
.PHONY: help
help: ## This list
	@awk 'BEGIN {FS = ":.*##"} /^##@/ {printf "\n\033[1m%s\033[0m\n", substr($$0, 5)} \
	  /^[a-zA-Z0-9_-]+:.*?##/ {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
