# The Makefile is the project's CI: `.ci/run` calls `make test`.
#   make run    set up this machine and start the whole platform on embedded defaults
#   make test   set up this machine, start RabbitMQ/PostgreSQL if down, run every check and test
#   make bench  run the benchmarks (results in bench/results/)

SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
# uv from PATH, else the one pip installs into this Python (`python3 -m uv`).
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PROTO_OUT := services/contracts/src
PROTOS := $(shell find protos -name '*.proto' | sort)
PYTEST_ARGS ?=

.PHONY: help uv setup test-setup system-deps protos check-protos lint fmt typecheck services test test-unit \
	test-integration test-e2e run bench clean

help:
	@sed -n 's/^#   //p' Makefile

## Set-up ------------------------------------------------------------------------------------
uv:
	@command -v uv >/dev/null || python3 -m uv --version >/dev/null 2>&1 || \
	  python3 -m pip install --quiet uv

# Python packages from the lock file: all that running the platform needs.
setup: uv
	$(UV) sync --all-packages --frozen

# Everything the tests need besides: the external validators, and the Node example's packages.
test-setup: setup system-deps
	@test -d examples/node/node_modules || npm ci --prefix examples/node --no-audit --no-fund

# The external validators the tests trust (poppler's pdfsig/pdftoppm, qpdf, NSS certutil, MuPDF's
# mutool, a second renderer), SoftHSM2, the PKCS#11 token the signing tests keep the platform key
# in, Chromium, the browser the verification site's tests drive (through Playwright, no
# browser download), and Node.js, which runs the example client of examples/node.
system-deps:
	@missing=""; for pair in pdfsig:poppler-utils pdftoppm:poppler-utils qpdf:qpdf certutil:libnss3-tools \
	  softhsm2-util:softhsm2 mutool:mupdf-tools chromium:chromium node:nodejs npm:npm; do \
	  command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; done; \
	test -z "$$missing" || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$(echo $$missing | tr ' ' '\n' | sort -u); }

## Contracts ---------------------------------------------------------------------------------
protos:
	$(PY) -m grpc_tools.protoc -I protos --python_out=$(PROTO_OUT) --grpc_python_out=$(PROTO_OUT) \
	  --pyi_out=$(PROTO_OUT) $(PROTOS)

# Generated code is committed; CI fails when it drifts from the protos.
check-protos: protos
	@git diff --exit-code -- $(PROTO_OUT) || \
	  { echo "generated code differs from protos/: run 'make protos' and commit"; exit 1; }
	@test -z "$$(git ls-files --others --exclude-standard -- $(PROTO_OUT))" || \
	  { echo "untracked generated files: run 'make protos' and commit"; exit 1; }

## Static checks -----------------------------------------------------------------------------
lint:
	$(VENV)/bin/ruff check services tests bench
	$(VENV)/bin/ruff format --check services tests bench

fmt:
	$(VENV)/bin/ruff format services tests bench
	$(VENV)/bin/ruff check --fix services tests bench

typecheck:
	$(VENV)/bin/mypy -p meterai_common -p meterai_quota -p meterai_stamping -p meterai_signing \
	  -p meterai_verify -p meterai_cli -p meterai_client -p meterai_webhooks

## Tests -------------------------------------------------------------------------------------
services:
	@bash deploy/local/ensure-services.sh

# Two phases: every test that leaves the shared PostgreSQL and RabbitMQ running, spread over
# TEST_WORKERS processes (one test file per process at a time, so a module's platform is set up
# once); then, alone, the fault tests that restart those servers.
TEST_WORKERS ?= 3
test: test-setup services check-protos lint typecheck
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile -m "not disrupts_shared_services" $(PYTEST_ARGS)
	$(VENV)/bin/pytest -m disrupts_shared_services $(PYTEST_ARGS)

test-unit: test-setup
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

test-integration: test-setup services
	$(VENV)/bin/pytest tests/integration $(PYTEST_ARGS)

test-e2e: test-setup services
	$(VENV)/bin/pytest tests/e2e $(PYTEST_ARGS)

## Running -----------------------------------------------------------------------------------
run: setup
	$(VENV)/bin/meterai up

bench: test-setup services
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .meterai .pytest_cache .ruff_cache .mypy_cache
