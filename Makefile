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
PYTEST_ARGS ?=

##@ Set-up
.PHONY: venv tools nginx chromium
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

chromium: ## Install Debian's chromium (the browser test loads a served SPA headless, over the DevTools protocol)
	@command -v chromium >/dev/null || { echo "installing chromium (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
	  || { echo "could not install chromium: run 'sudo apt-get install chromium' and re-run"; exit 1; }; }
	@chromium --version >/dev/null 2>&1 || { echo "chromium is installed but does not run: chromium --version failed"; exit 1; }

##@ Cluster
.PHONY: cluster-up cluster-down images
cluster-up: tools ## Start the local cluster: control plane, 2 fake nodes, 1 real node (kubeconfig in ~/.cache/staticsite-operator/kubeconfig)
	@hack/cluster.sh up >/dev/null

cluster-down: ## Stop and delete the local cluster (the node's images are kept)
	hack/cluster.sh down

images: cluster-up ## Build the operator, nginx, fetcher and fixture images into the real node (cached; ~4 min cold)
	@hack/images.sh build

##@ Develop
.PHONY: dev crd lint fmt run
crd: venv ## Regenerate crds/ and the chart's copy from models.py
	cd operator && ../$(PY) -m staticsite_operator.api.crd > ../crds/staticsite.dev_staticsites.yaml
	cd operator && ../$(PY) -m staticsite_operator.api.crd pool > ../crds/staticsite.dev_staticsitepools.yaml
	cp crds/staticsite.dev_staticsites.yaml crds/staticsite.dev_staticsitepools.yaml charts/staticsite-operator/crds/ 2>/dev/null || true

dev: venv images ## Cluster + example sites served on 127.0.0.1, and the operator running here (Ctrl-C stops)
	@hack/dev.sh $(PY)

lint: venv ## ruff, mypy --strict, the import layers contract, hadolint
	$(VENV)/bin/ruff check operator tests bench hack
	$(VENV)/bin/mypy
	cd operator && ../$(VENV)/bin/lint-imports --config ../pyproject.toml
	$(VENV)/bin/hadolint Dockerfile

fmt: venv ## Fix what ruff can fix
	$(VENV)/bin/ruff check --fix operator tests bench hack

##@ Test
.PHONY: test test-unit test-integration test-e2e
test: venv tools nginx chromium lint ## Everything CI runs: lint, unit (a real browser too), integration, e2e on the real node, the bench and chaos harnesses, small
	@hack/test.sh $(PY) -m pytest tests bench/test_smoke.py bench/test_chaos_smoke.py $(PYTEST_ARGS)

test-unit: venv nginx chromium ## Tests that need no cluster
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: venv tools ## Tests against the local cluster's API and fake nodes (started if needed)
	@hack/test.sh $(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-e2e: venv tools ## The chart and sites on the real node, served by real nginx pods
	@hack/test.sh $(PY) -m pytest tests/e2e $(PYTEST_ARGS)

##@ Benchmark
.PHONY: bench
bench: venv tools nginx ## Convergence time, API writes and memory for 10, 100 and 1000 sites; then the shared tier at 1000
	$(PY) -m bench $(BENCH_ARGS)
	$(PY) -m bench.pool $(BENCH_POOL_ARGS)

.PHONY: bench-serve
bench-serve: venv nginx ## Serving speed of the rendered nginx.conf against hand-written nginx, 8 site shapes (~9 min)
	@command -v wrk >/dev/null || { echo "installing wrk (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null \
	  || { echo "could not install wrk: run 'sudo apt-get install wrk' and re-run"; exit 1; }; }
	$(PY) -m bench.serve $(BENCH_SERVE_ARGS)

##@ Reliability
.PHONY: chaos
chaos: venv tools ## Faults (kills, API and etcd restarts, stalls, 429/5xx, failovers) while 300 sites converge (40 min with --seeds 1)
	$(PY) -m bench.chaos $(CHAOS_ARGS)

##@ Image
.PHONY: image image-pool
image: cluster-up ## Build the operator image from the Dockerfile with BuildKit, into the real node (no Docker)
	@hack/images.sh build operator

image-pool: cluster-up ## Build the pool image (the Dockerfile's target pool: a StaticSitePool's agent and nginx) into the real node
	@hack/images.sh build pool

##@ Help
.PHONY: help
help: ## This list
	@awk 'BEGIN {FS = ":.*##"} /^##@/ {printf "\n\033[1m%s\033[0m\n", substr($$0, 5)} \
	  /^[a-zA-Z0-9_-]+:.*?##/ {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)
