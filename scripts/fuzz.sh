#!/usr/bin/env bash
# Fuzzes the transcoding core with cargo-fuzz (libFuzzer): every target of fuzz/ (or the ones
# named) for SECONDS each, one after the other, then prints per target the executions, exec/s,
# peak RSS, slowest unit, corpus size and findings. Exits 1 when a target produced a crash,
# timeout, OOM or slow unit.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (make fuzz FUZZ_SECONDS=300)
#
# Targets (fuzz/fuzz_targets/): json_to_message, request_routing, response_decoding, config,
# path_template, stream_splitter (the client-stream element splitter), query_binding (many
# query parameters next to large bodies). Seeds are fuzz/corpus/<target>/ (small, hand-written,
# in git; query_binding's seed-many-params-raw-body, 185 KiB, is generated); the growing working corpus is fuzz/target/corpus/<target>/ and findings go to
# fuzz/artifacts/<target>/ (both ignored by git). Reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -s none <target> fuzz/artifacts/<target>/<file>
# (add the limit flags below, e.g. `-- -timeout=5 -rss_limit_mb=512`) and shrink it with
# `cargo fuzz tmin` (same options).
#
# Resource limits: memory and time are findings, not silent. Every target runs with
#   FUZZ_RSS_MB=512      -rss_limit_mb: the process's peak RSS over it is an OOM (oom-<sha>).
#   FUZZ_MALLOC_MB=256   -malloc_limit_mb: one allocation of that many MiB or more is an OOM.
#                        libFuzzer checks it only through a sanitizer's malloc hooks, so with
#                        sanitizer none the targets' allocator (fuzz/src/lib.rs) checks it and
#                        aborts (a crash-<sha>, after "==json2grpc-fuzz== ERROR: out-of-memory").
#   FUZZ_TIMEOUT=5       -timeout (seconds per input): a slower input is a timeout-<sha>.
#   FUZZ_SLOW_S=1        -report_slow_units (seconds): each new slowest input of at least that
#                        is saved as slow-unit-<sha> ("Slowest unit: N s"): a finding too, as
#                        a superlinear cost shows there long before it times out. Times
#                        are wall-clock: on a loaded machine raise it (query_binding's 1 MiB
#                        inputs take ~0.3 s each unloaded, harness included).
#   FUZZ_MAX_LEN         -max_len for every target (0: libFuzzer guesses it from the corpus,
#                        at least 4 KiB); default per target: query_binding 1 MiB
#                        (large bodies next to many parameters), response_decoding 64 KiB
#                        (gzip and many frames: response amplification), path_template 4 KiB
#                        (libFuzzer's default: short templates and paths), others 16 KiB.
# The summary's numbers come from libFuzzer's final stats (stat::number_of_executed_units,
# average_exec_per_sec, peak_rss_mb) and its "Slowest unit: N s" and "timeout after N seconds"
# lines: "slowest <1s" means no input took FUZZ_SLOW_S, ">7s" that one was stopped after 7 s.
#
# How cargo-fuzz runs on this machine (stable Rust only, no nightly toolchain needed):
# - `cargo install cargo-fuzz` (0.13.2) builds with stable. Its builds pass nightly-only flags
#   (`-Zsanitizer=address` by default), which stable refuses ("the option `Z` is only
#   accepted on the nightly compiler"); RUSTC_BOOTSTRAP=1 makes stable accept them. The
#   sanitizer-coverage instrumentation itself (`-Cpasses=sancov-module`, `-Cllvm-args=…`) is
#   stable, and libfuzzer-sys compiles libFuzzer with the system C++ compiler.
# - With RUSTC_BOOTSTRAP=1 even AddressSanitizer works (stable ships the ASan runtime), but
#   the filter is safe Rust: ASan finds nothing libFuzzer would not (panics, stack overflows,
#   OOMs, timeouts are caught without it) and costs 2-3x speed, so the default here is
#   `--sanitizer none` (FUZZ_SANITIZER=address to change it). The "Failed to find function
#   __sanitizer_*" warnings at start-up are expected without a sanitizer.
# - cargo-fuzz builds with debug assertions, so integer overflow panics in a fuzz run; the
#   release .wasm has no overflow checks (it would wrap instead). Keep that in mind when
#   judging an overflow finding. Times are those of this native build, not of the .wasm (a
#   slow unit is a cost to look at, the factor differs).
# - `-jobs=1 -workers=1` (the machine's cores are shared): libFuzzer then runs the target in
#   one child process whose output goes to fuzz-0.log, kept in fuzz/target/logs/<target>/.
# - Each target compiles its fixtures (protox) once per process; the first input is slower
#   (tens of milliseconds).
# - Some known findings are skipped by the targets so that fuzzing can go on past them (see
#   `known_*` in fuzz/); JSON2GRPC_FUZZ_NO_GUARDS=1 disables those guards.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="$ROOT/fuzz"
SECONDS_PER_TARGET="${1:-${FUZZ_SECONDS:-60}}"
shift || true
SANITIZER="${FUZZ_SANITIZER:-none}"
RSS_MB="${FUZZ_RSS_MB:-512}"
MALLOC_MB="${FUZZ_MALLOC_MB:-256}"
TIMEOUT_S="${FUZZ_TIMEOUT:-5}"
SLOW_S="${FUZZ_SLOW_S:-1}"
MAX_LEN="${FUZZ_MAX_LEN:-}"
# Extra libFuzzer flags, last on the command line (so they override the ones above), e.g.
# FUZZ_FLAGS="-dict=x.dict".
EXTRA_FLAGS="${FUZZ_FLAGS:-}"

for setting in "FUZZ_RSS_MB=$RSS_MB" "FUZZ_MALLOC_MB=$MALLOC_MB" "FUZZ_TIMEOUT=$TIMEOUT_S" \
  "FUZZ_SLOW_S=$SLOW_S" "FUZZ_MAX_LEN=${MAX_LEN:-0}"; do
  if ! [[ "${setting#*=}" =~ ^[0-9]+$ ]]; then
    echo "${setting%%=*}: a whole number expected, got '${setting#*=}'" >&2
    exit 2
  fi
done

# -max_len per target (FUZZ_MAX_LEN overrides).
max_len_of() {
  if [[ -n "$MAX_LEN" ]]; then
    echo "$MAX_LEN"
    return
  fi
  case "$1" in
    query_binding) echo 1048576 ;;
    response_decoding) echo 65536 ;;
    path_template) echo 4096 ;;
    *) echo 16384 ;;
  esac
}

if ! [[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ ]] || [[ "$SECONDS_PER_TARGET" -eq 0 ]]; then
  echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz is not installed: installing it (cargo install cargo-fuzz)"
  cargo install cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1
cargo_fuzz=(cargo fuzz)
build_flags=(--fuzz-dir "$FUZZ_DIR" --sanitizer "$SANITIZER")

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  mapfile -t targets < <(cd "$ROOT" && "${cargo_fuzz[@]}" list --fuzz-dir "$FUZZ_DIR")
fi

echo "building ${#targets[@]} fuzz targets (sanitizer: $SANITIZER)"
(cd "$ROOT" && "${cargo_fuzz[@]}" build "${build_flags[@]}")

summary=()
failed=0
for target in "${targets[@]}"; do
  corpus="$FUZZ_DIR/target/corpus/$target"
  seeds="$FUZZ_DIR/corpus/$target"
  logs="$FUZZ_DIR/target/logs/$target"
  artifacts="$FUZZ_DIR/artifacts/$target"
  mkdir -p "$corpus" "$seeds" "$logs" "$artifacts"
  rm -f "$logs/fuzz-0.log"
  before=$(find "$artifacts" -type f | wc -l)
  max_len=$(max_len_of "$target")
  limits=(-rss_limit_mb="$RSS_MB" -malloc_limit_mb="$MALLOC_MB" -timeout="$TIMEOUT_S"
    -report_slow_units="$SLOW_S" -max_len="$max_len")
  echo "=== $target: ${SECONDS_PER_TARGET}s, ${limits[*]}"
  # The child's output is in fuzz-0.log; a crash makes cargo fuzz exit non-zero.
  # shellcheck disable=SC2086
  (cd "$logs" && "${cargo_fuzz[@]}" run "${build_flags[@]}" "$target" "$corpus" "$seeds" -- \
      -max_total_time="$SECONDS_PER_TARGET" -jobs=1 -workers=1 "${limits[@]}" \
      -print_final_stats=1 $EXTRA_FLAGS) >"$logs/cargo-fuzz.out" 2>&1 || true
  log="$logs/fuzz-0.log"
  [[ -f "$log" ]] || log="$logs/cargo-fuzz.out"
  final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  execs=$(final_stat number_of_executed_units)
  rate=$(final_stat average_exec_per_sec)
  peak=$(final_stat peak_rss_mb)
  if [[ -z "$execs" ]]; then
    # Stopped without final stats: the last status line has the counts.
    execs=$(sed -nE 's/^#([0-9]+).*/\1/p' "$log" | tail -1)
    rate=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' "$log" | tail -1)
  fi
  [[ -n "$peak" ]] || peak=$(sed -nE 's/.* rss: ([0-9]+)Mb.*/\1/p' "$log" | tail -1)
  # "Slowest unit: N s:" is printed for each new slowest input of at least -report_slow_units
  # (none: all were faster); an input stopped by -timeout is slower still.
  slow=$(sed -nE 's/^Slowest unit: ([0-9]+) s.*/\1/p' "$log" | tail -1)
  timed_out=$(sed -nE 's/.*ERROR: libFuzzer: timeout after ([0-9]+) seconds.*/\1/p' "$log" | tail -1)
  if [[ -n "$timed_out" ]]; then
    slowest=">${timed_out}s"
  elif [[ -n "$slow" ]]; then
    slowest="${slow}s"
  else
    slowest="<${SLOW_S}s"
  fi
  # libFuzzer's corpus (units kept) at the end, and the files of the working corpus directory.
  units=$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' "$log" | tail -1)
  size="${units:-?} ($(find "$corpus" -type f | wc -l) files)"
  after=$(find "$artifacts" -type f | wc -l)
  new=$((after - before))
  findings="none"
  if [[ "$new" -gt 0 ]]; then
    failed=1
    findings=$(find "$artifacts" -type f -printf '%T@ %f\n' | sort -n | tail -n "$new" | cut -d' ' -f2 | tr '\n' ' ')
    # What stopped the run (a slow unit does not), and each slow unit.
    grep -m1 -A2 -E "panicked at|ERROR: libFuzzer|ERROR: out-of-memory" "$log" | sed "s/^/  $target: /" || true
    grep -E "^Slowest unit:" -A1 "$log" | sed "s/^/  $target: /" || true
  fi
  summary+=("$(printf '%-18s execs %-9s exec/s %-6s peak RSS %5s MB  slowest %-5s corpus %-20s findings: %s' \
    "$target" "${execs:-?}" "${rate:-?}" "${peak:-?}" "$slowest" "$size" "$findings")")
done

echo
echo "fuzz summary (${SECONDS_PER_TARGET}s per target, -rss_limit_mb=$RSS_MB -malloc_limit_mb=$MALLOC_MB" \
  "-timeout=$TIMEOUT_S -report_slow_units=$SLOW_S; findings in fuzz/artifacts/<target>/)"
printf '  %s\n' "${summary[@]}"
exit "$failed"
