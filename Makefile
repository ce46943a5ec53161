# modelserve-operator: every entry point a person or CI uses. `make demo` and `make test` install
# what they need themselves (virtualenv, Go-built cluster binaries) on a fresh machine.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Every dependency of the operator and its tools, pinned with hashes (`make lock` regenerates it from
# pyproject.toml's ranges); the venv is installed from it, so CI and every developer get the same set.
LOCK := requirements-dev.lock
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | sha1sum | cut -c1-12)
UV_COMPILE = $(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes -q
PYTEST_ARGS ?=

.PHONY: help
help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml $(LOCK)
	bash hack/install-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --require-hashes -r $(LOCK)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-*; touch $@

.PHONY: venv
venv: $(STAMP) ## Python virtualenv with the operator and test tools

.PHONY: lock
lock: venv ## re-lock requirements.lock (operator image), requirements-dev.lock (venv, CI) and the serving image
	$(UV_COMPILE) $(UV_FLAGS) -o requirements.lock
	$(UV_COMPILE) $(UV_FLAGS) --extra dev -o requirements-dev.lock
	PATH=$(abspath $(VENV))/bin:$$PATH $(MAKE) -C serving-image lock

.PHONY: binaries
binaries: ## build (or reuse cached) kube-apiserver, etcd, kwok, helm ... from Go modules
	hack/cluster/build.sh

.PHONY: cluster-up
cluster-up: ## start the local control plane with its fake GPU fleet
	hack/cluster/cluster.sh up

.PHONY: cluster-down
cluster-down: ## delete the local control plane
	hack/cluster/cluster.sh down

.PHONY: kind-up
kind-up: venv ## for users with Docker: a kind cluster with the same node labels (see docs/kind.md)
	hack/kind/kind-up.sh

.PHONY: crd
crd: venv ## regenerate crds/ and docs/api.md from operator/modelserve/api/
	$(PY) -m modelserve crd
	$(PY) -m modelserve crd --docs

.PHONY: lint
lint: venv ## ruff, mypy (strict) and the import-layering contract
	$(VENV)/bin/ruff check operator serving-image tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

.PHONY: unit
unit: venv ## fast tests: pure functions and the generated CRD
	$(VENV)/bin/pytest -q -m unit $(PYTEST_ARGS)

.PHONY: test
test: venv lint binaries ## everything CI runs: lint, unit, integration and e2e tests on the local cluster
	$(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: reliability
reliability: venv binaries ## long reliability runs: 12 kill rounds x 50, 90 s outages, 5 min churn of 500, fuzzing
	$(VENV)/bin/pytest -m slow --timeout=2400 -s tests/integration/reliability $(PYTEST_ARGS)

.PHONY: demo
demo: venv cluster-up ## local cluster + CRDs + operator + examples, ending with `kubectl get mdep -A`
	hack/demo.sh

.PHONY: demo-stop
demo-stop: ## stop the operator started by `make demo`
	hack/demo.sh stop

SERVING_IMAGE ?= ghcr.io/modelserve/serving
SERVING_TAG ?= $(shell $(PYTHON) -c "import re; print(re.search(r'serving:(\S+)\"', open('operator/modelserve/settings.py').read()).group(1))")

.PHONY: image
image: ## build the CPU serving image (needs a Docker engine), tagged as the operator's default
	$(MAKE) -C serving-image image IMAGE=$(SERVING_IMAGE) TAG=$(SERVING_TAG)

.PHONY: image-gpu
image-gpu: ## build the GPU serving image (needs a Docker engine)
	$(MAKE) -C serving-image image-gpu IMAGE=$(SERVING_IMAGE) TAG=$(SERVING_TAG)

.PHONY: bench
bench: venv binaries ## benchmark at N=100 against the floor; results in docs/benchmarks.md
	$(PY) bench/run.py --mode quick

.PHONY: bench-profile
bench-profile: venv binaries ## make bench with py-spy profiles of the operator (bench/results/profile-*)
	$(PY) bench/run.py --mode quick --profile

.PHONY: bench-full
bench-full: venv binaries ## benchmark at N = 100 to 2,000 (about an hour on 2 cores)
	$(PY) bench/run.py --mode full

.PHONY: chart-crds
chart-crds: ## copy crds/ into both Helm charts (tests fail when they differ)
	hack/chart-crds.sh

.PHONY: chart-readme
chart-readme: venv ## regenerate each chart's README.md from its values.yaml (a test fails when stale)
	$(PY) hack/chart-readme.py

.PHONY: dist
dist: chart-crds chart-readme ## render dist/install.yaml from the chart (a test fails when it is stale)
	dist/render.sh > dist/install.yaml.tmp
	mv dist/install.yaml.tmp dist/install.yaml
