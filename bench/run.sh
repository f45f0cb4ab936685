#!/usr/bin/env bash
# `make bench`: every measurement of BENCHMARKS.md in one run, on one machine.
#
#   1. core, native: criterion (filter/benches/transcode.rs, fast_* groups) and the same
#      conversions in bench/wasm-core (native build);
#   2. core inside V8: bench/wasm-core built for wasm32-wasip1 (the project's release profile,
#      wasm-opt like dist/json2grpc.wasm), run by Node (node:wasi, --no-liftoff like Envoy's V8),
#      plus on_configure (Transcoder::from_json) of a synthetic 200-service / 2,000-method API;
#   3. the peer benchmark (libprotobuf 3.21 and 27, upb, prost-reflect) from a writable copy of
#      shared/bench in .cache/peer-bench (libprotobuf 27 is built there once, ~7-12 min);
#   4. end to end in Envoy (bench/e2e.py): native transcoder vs json2grpc vs gRPC pass-through vs
#      gRPC through an empty Wasm filter (bench/floor-filter), at --concurrency 1 (E2E_CONCURRENCY);
#   5. where json2grpc's CPU goes (bench/ladder.py: the empty filter making json2grpc's host calls),
#      and server streams (bench/stream.py: messages/s, Envoy CPU per message, first message);
#   6. Envoy's RSS and start to LIVE at --concurrency 1, 2, 4 for no transcoder, native and
#      json2grpc, example and synthetic API (bench/memory.py), and Envoy's memory over the
#      100,000-request soak of `make soak` (scripts/soak.sh).
#
# Then bench/report.py prints the tables (also written to .cache/bench/run-<UTC>/summary.md).
# Run through `make bench` (it builds the .wasm, the upstream, json2grpc-tool and the venv's
# Envoy first). Knobs (environment): SKIP_PB27=1, SKIP_E2E=1, SKIP_ENVOY_EXTRA=1 (no ladder,
# memory, soak, streams), E2E_CONCURRENCY (1), LADDER_DURATION (24), STREAM_COUNT (200000),
# STREAM_ROUNDS (5), MEMORY_RUNS (3), SOAK_REQUESTS
# (100000), E2E_DURATION (s per cell, default
# 12, in E2E_ROUNDS=3 slices), E2E_WARMUP (1 s before each slice), E2E_CLIENTS (16), E2E_STREAMS (8), E2E_LARGE (8,4: for 1 MB),
# E2E_LATENCY_DURATION (4.5; also the paced cells'), E2E_PACED (0.8 of native's req/s; 0: none), CORE_MIN_TIME (0.3), CORE_ROUNDS (3), PEER_ROUNDS (1),
# PEER_MIN_TIME (0.2).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CARGO="${CARGO:-cargo}"
TARGET_DIR="${TARGET_DIR:-$ROOT/target}"
CACHE="${CACHE:-$ROOT/.cache}"
ENVOY="${ENVOY:-$ROOT/.venv/bin/envoy}"
WASM="${WASM:-$ROOT/dist/json2grpc.wasm}"
TOOL="${TOOL:-$TARGET_DIR/release/json2grpc-tool}"
UPSTREAM="${UPSTREAM:-$TARGET_DIR/release/bench_upstream}"
WASM_OPT="${WASM_OPT:-}"
WASM_OPT_FLAGS="${WASM_OPT_FLAGS:--O3}"
PEER_BENCH_SRC="${PEER_BENCH_SRC:-$ROOT/../shared/bench}"
PEER="$CACHE/peer-bench"
CORE_TARGET="$TARGET_DIR/bench-core"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
OUT="$CACHE/bench/run-$STAMP"
mkdir -p "$OUT"
step() { echo; echo "==== $* ($(date -u +%H:%M:%S), load $(cut -d' ' -f1-3 /proc/loadavg))"; }

# ---- Debian packages: h2load/nghttp (e2e), libprotobuf + protoc, cmake/ninja (peer benchmark) ----
need=()
command -v h2load >/dev/null && command -v nghttp >/dev/null || need+=(nghttp2-client)
command -v protoc >/dev/null || need+=(protobuf-compiler)
[[ -f /usr/include/google/protobuf/util/json_util.h ]] || need+=(libprotobuf-dev)
command -v cmake >/dev/null || need+=(cmake)
command -v ninja >/dev/null || need+=(ninja-build)
command -v g++ >/dev/null || need+=(g++)
command -v node >/dev/null || need+=(nodejs)
if ((${#need[@]})); then
  echo "bench: installing ${need[*]}"
  SUDO=; [[ $(id -u) -eq 0 ]] || SUDO=sudo
  $SUDO apt-get install -y -q "${need[@]}" >/dev/null || {
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q "${need[@]}" >/dev/null; }
fi

# ---- machine and versions ----
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host: $(uname -srm), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo)"
  echo "loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "rustc: $(rustc --version)"
  echo "node: $(node --version) (V8 $(node -p process.versions.v8))"
  echo "envoy: $("$ENVOY" --version | sed -n 's/.*version: //p')"
  echo "libprotobuf (Debian): $(dpkg-query -W -f='${Version}' libprotobuf-dev 2>/dev/null || echo '?'); libprotobuf 27.2 (built from protobuf-src 2.1.1+27.1)"
  echo "h2load: $(h2load --version | head -1)"
  echo "json2grpc.wasm: $(stat -c %s "$WASM") bytes ($WASM)"
  echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
} | tee "$OUT/machine.txt"

# ---- data: the peer copy (payloads, descriptor), plugin configs, the synthetic API ----
step "peer benchmark copy ($PEER)"
if [[ -d "$PEER_BENCH_SRC" ]]; then
  mkdir -p "$PEER"
  chmod -R u+w "$PEER" 2>/dev/null || true
  # Sources only; .deps (libprotobuf 27), build/, .venv and results/ stay.
  (cd "$PEER_BENCH_SRC" && tar -cf - .) | (cd "$PEER" && tar -xf -)
  chmod -R u+w "$PEER"
elif [[ ! -d "$PEER" ]]; then
  echo "bench: no peer benchmark at $PEER_BENCH_SRC (set PEER_BENCH_SRC)" >&2; exit 1
fi
DATA="$OUT/core-data"
mkdir -p "$DATA"
cp "$PEER"/payloads/{small,medium,large}.{json,binpb} "$DATA/"
"$TOOL" descriptor -I "$ROOT/proto" -I "$ROOT/bench/proto" -o "$OUT/bench-api.pb" "$ROOT/bench/proto/bench.proto"
"$TOOL" config --descriptor "$OUT/bench-api.pb" --service bench.v1.Bench > "$DATA/plugin.json"
SYN="$CACHE/bench/synthetic"
python3 "$ROOT/bench/gen_synthetic.py" "$SYN" --services 200 > "$OUT/synthetic.list"
(cd "$SYN" && "$TOOL" descriptor -I "$ROOT/proto" -I . -o "$OUT/synthetic.pb" $(cat "$OUT/synthetic.list"))
"$TOOL" config --descriptor "$OUT/synthetic.pb" > "$DATA/synthetic-plugin.json"

# ---- builds ----
step "build: criterion bench, bench/wasm-core (native + wasm32-wasip1), peer tools"
# The project's release profile (Cargo.toml) for the harness, which is its own workspace: the
# filter crate is a dependency there, so it gets the root profile's opt-level explicitly.
mapfile -t PROFILE < <(python3 - "$ROOT/Cargo.toml" <<'EOF'
import json, sys, tomllib
release = tomllib.load(open(sys.argv[1], "rb")).get("profile", {}).get("release", {})
def flat(prefix, table):
    for k, v in table.items():
        key = f'{prefix}."{k}"' if not k.replace("-", "").replace("_", "").isalnum() else f"{prefix}.{k}"
        if isinstance(v, dict):
            yield from flat(key, v)
        else:
            yield key, v
args = dict(flat("profile.release", release))
pkg = "profile.release.package.json2grpc.opt-level"
args.setdefault(pkg, release.get("opt-level", 3))
for k, v in args.items():
    print("--config")
    print(f"{k}={json.dumps(v)}")
EOF
)
echo "profile: ${PROFILE[*]}"
(cd "$ROOT" && "$CARGO" bench -p json2grpc --bench transcode --no-run -q)
(cd "$ROOT/bench/wasm-core" && CARGO_TARGET_DIR="$CORE_TARGET" "$CARGO" build --release -q "${PROFILE[@]}")
(cd "$ROOT/bench/wasm-core" && CARGO_TARGET_DIR="$CORE_TARGET" "$CARGO" build --release -q "${PROFILE[@]}" --target wasm32-wasip1)
# The floor of the end-to-end runs: an empty proxy-wasm filter, same profile.
(cd "$ROOT/bench/floor-filter" && CARGO_TARGET_DIR="$TARGET_DIR/bench-floor" "$CARGO" build --release -q "${PROFILE[@]}" --target wasm32-wasip1)
FLOOR="$TARGET_DIR/bench-floor/wasm32-wasip1/release/json2grpc_bench_floor.wasm"
CORE_NATIVE="$CORE_TARGET/release/json2grpc-bench-core"
CORE_WASM="$OUT/bench-core.wasm"
cp "$CORE_TARGET/wasm32-wasip1/release/json2grpc-bench-core.wasm" "$CORE_WASM"
if [[ -n "$WASM_OPT" && -x "$WASM_OPT" ]]; then
  # shellcheck disable=SC2086
  "$WASM_OPT" $WASM_OPT_FLAGS "$CORE_WASM" -o "$CORE_WASM.opt" && mv "$CORE_WASM.opt" "$CORE_WASM"
  echo "bench-core.wasm: wasm-opt $WASM_OPT_FLAGS" | tee -a "$OUT/machine.txt"
else
  echo "bench-core.wasm: no wasm-opt (cargo output as is)" | tee -a "$OUT/machine.txt"
fi
PEER_ENV=(ROUNDS="${PEER_ROUNDS:-1}" MIN_TIME="${PEER_MIN_TIME:-0.2}")
[[ -n "${SKIP_PB27:-}" ]] && PEER_ENV+=(SKIP_PB27=1)
if [[ -z "${SKIP_PB27:-}" && ! -f "$PEER/.deps/protobuf27/.done" ]]; then
  echo "building libprotobuf 27 once into $PEER/.deps (~7-12 minutes)"
  (cd "$PEER" && env -u CARGO_TARGET_DIR ./build_protobuf27.sh > "$CACHE/bench/protobuf27-build.log" 2>&1) || {
    tail -30 "$CACHE/bench/protobuf27-build.log"; exit 1; }
fi

# ---- 1+2+3: core natively (criterion), the peer benchmark, then core native / V8 / C++ peers
# interleaved in rounds (each cell keeps its best round, as in the peer benchmark) ----
MIN_TIME="${CORE_MIN_TIME:-0.3}"
ROUNDS="${CORE_ROUNDS:-3}"
step "core, native: criterion (fast_* groups)"
(cd "$ROOT" && "$CARGO" bench -p json2grpc --bench transcode -q -- fast_) > "$OUT/criterion.txt" 2>&1 \
  || { tail -30 "$OUT/criterion.txt"; exit 1; }
grep -E "^fast_|thrpt" "$OUT/criterion.txt" || true
for group in fast_json_to_binary fast_binary_to_json; do
  for p in small medium large; do
    src="$TARGET_DIR/criterion/$group/$p/new"
    [[ -f "$src/estimates.json" ]] && mkdir -p "$OUT/criterion/$group/$p" && cp "$src"/{estimates,benchmark}.json "$OUT/criterion/$group/$p/"
  done
done
step "peer benchmark: ${PEER_ENV[*]} ./run.sh"
(cd "$PEER" && env -u CARGO_TARGET_DIR "${PEER_ENV[@]}" ./run.sh) > "$OUT/peer-run.log" 2>&1 || { tail -40 "$OUT/peer-run.log"; exit 1; }
raw="$(sed -n 's/^raw: //p' "$OUT/peer-run.log" | tail -1)"
cp "$PEER/$raw" "$OUT/peer.txt"
sed -n '/^Throughput/,/^$/p' "$OUT/peer-run.log" | head -12
for r in $(seq 1 "$ROUNDS"); do
  step "core round $r/$ROUNDS: native, V8 (node --no-liftoff), C++ peers (min-time ${MIN_TIME}s)"
  "$CORE_NATIVE" "$DATA" --runtime native --min-time "$MIN_TIME" --rounds 1 \
    --configure "$DATA/synthetic-plugin.json" --configure-runs 5 | tee -a "$OUT/core-native.txt"
  node --no-liftoff --no-warnings "$ROOT/bench/wasm-core/run.mjs" "$CORE_WASM" "$DATA" \
    --min-time "$MIN_TIME" --rounds 1 --configure /data/synthetic-plugin.json --configure-runs 5 \
    | tee -a "$OUT/core-v8.txt"
  for lib in pb321 pb27; do
    [[ "$lib" == pb27 && ( -n "${SKIP_PB27:-}" || ! -x "$PEER/build/bench_cpp_pb27" ) ]] && continue
    for op in j2b_resolver b2j_resolver; do   # JsonToBinaryString / BinaryToJsonString
      "$PEER/build/bench_cpp_$lib" "$PEER/proto/bench.pb" "$PEER/payloads" --min-time "$MIN_TIME" --only "$op" \
        | grep "^RESULT" | tee -a "$OUT/peer-cpp.txt"
    done
  done
done

# ---- 3b: memory a configuration keeps (each in a fresh process) ----
step "memory: what a transcoder keeps and its build's peak, native and V8"
for cfg in plugin.json synthetic-plugin.json; do
  "$CORE_NATIVE" "$DATA" --runtime native --memory "$DATA/$cfg" | tee -a "$OUT/memory.txt"
  node --no-liftoff --no-warnings "$ROOT/bench/wasm-core/run.mjs" "$CORE_WASM" "$DATA" --memory "/data/$cfg" \
    | tee -a "$OUT/memory.txt"
done

# ---- 4: end to end ----
if [[ -z "${SKIP_E2E:-}" ]]; then
  step "end to end: bench/e2e.py"
  python3 "$ROOT/bench/e2e.py" --envoy "$ENVOY" --wasm "$WASM" --upstream "$UPSTREAM" --floor "$FLOOR" \
    --concurrency "${E2E_CONCURRENCY:-1}" \
    --descriptor "$OUT/bench-api.pb" --payloads "$DATA" --out "$OUT/e2e.json" \
    --duration "${E2E_DURATION:-12}" --warmup "${E2E_WARMUP:-1}" \
    --clients "${E2E_CLIENTS:-16}" --streams "${E2E_STREAMS:-8}" --large-concurrency "${E2E_LARGE:-8,4}" \
    --latency-duration "${E2E_LATENCY_DURATION:-4.5}" --rounds "${E2E_ROUNDS:-3}" --paced-load "${E2E_PACED:-0.8}"
fi

if [[ -z "${SKIP_ENVOY_EXTRA:-}" ]]; then
  step "where the CPU goes: bench/ladder.py (empty Wasm filter + json2grpc's host calls)"
  python3 "$ROOT/bench/ladder.py" --envoy "$ENVOY" --wasm "$WASM" --floor "$FLOOR" --upstream "$UPSTREAM" \
    --descriptor "$OUT/bench-api.pb" --payloads "$DATA" --out "$OUT/ladder.json" \
    --duration "${LADDER_DURATION:-24}" --rounds "${LADDER_ROUNDS:-6}"
  step "server streams: bench/stream.py (messages/s, CPU per message, time to the first message)"
  # The venv's Python: stream.py times the first message with h2 (tests/requirements.txt).
  "${VENV_PYTHON:-$ROOT/.venv/bin/python}" "$ROOT/bench/stream.py" --envoy "$ENVOY" --wasm "$WASM" --floor "$FLOOR" --upstream "$UPSTREAM" \
    --descriptor "$OUT/bench-api.pb" --payloads "$DATA" --out "$OUT/stream.json" \
    --count "${STREAM_COUNT:-200000}" --rounds "${STREAM_ROUNDS:-5}"
  step "Envoy RSS and start to LIVE: bench/memory.py"
  python3 "$ROOT/bench/memory.py" --envoy "$ENVOY" --wasm "$WASM" --floor "$FLOOR" --out "$OUT/envoy-memory.json" \
    --runs "${MEMORY_RUNS:-3}" \
    --api "example=$ROOT/dist/flashsale.pb:flashsale.v1.Inventory,flashsale.v1.Orders" \
    --api "synthetic=$OUT/synthetic.pb:$(python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["services"]))' "$DATA/synthetic-plugin.json")"
  step "soak: scripts/soak.sh (make soak: 100,000 mixed requests, memory sampled)"
  bash "$ROOT/scripts/soak.sh" --requests "${SOAK_REQUESTS:-100000}" > "$OUT/soak.txt" 2>&1 \
    || { tail -40 "$OUT/soak.txt"; exit 1; }
  sed -n '/^memory/,$p' "$OUT/soak.txt"
fi

echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/machine.txt"
step "report"
# The venv's Python: report.py imports stream.py (h2) for its table.
"${VENV_PYTHON:-$ROOT/.venv/bin/python}" "$ROOT/bench/report.py" "$OUT" | tee "$OUT/summary.md"
echo
echo "results: $OUT (summary.md)"
