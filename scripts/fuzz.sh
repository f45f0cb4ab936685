#!/usr/bin/env bash
# Fuzzes the transcoding core with cargo-fuzz (libFuzzer): every target of fuzz/ (or the ones
# named) for SECONDS each, one after the other, then prints executions, exec/s, corpus size
# and findings per target. Exits 1 when a target produced a crash, timeout or OOM.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (make fuzz FUZZ_SECONDS=300)
#
# Targets (fuzz/fuzz_targets/): json_to_message, request_routing, response_decoding, config,
# path_template. Seeds are fuzz/corpus/<target>/ (small, hand-written, in git); the growing
# working corpus is fuzz/target/corpus/<target>/ and findings go to fuzz/artifacts/<target>/
# (both ignored by git). Reproduce one with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -s none <target> fuzz/artifacts/<target>/<file>
# and shrink it with `cargo fuzz tmin` (same options).
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
#   judging an overflow finding.
# - `-jobs=1 -workers=1` (the machine's cores are shared): libFuzzer then runs the target in
#   one child process whose output goes to fuzz-0.log, kept in fuzz/target/logs/<target>/.
# - Each target compiles its fixtures (protox) once per process; the first input is slower.
# - Some known findings are skipped by the targets so that fuzzing can go on past them (see
#   `known_*` in fuzz/); JSON2GRPC_FUZZ_NO_GUARDS=1 disables those guards.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FUZZ_DIR="$ROOT/fuzz"
SECONDS_PER_TARGET="${1:-${FUZZ_SECONDS:-60}}"
shift || true
SANITIZER="${FUZZ_SANITIZER:-none}"
# Extra libFuzzer flags, e.g. FUZZ_FLAGS="-max_len=16384".
EXTRA_FLAGS="${FUZZ_FLAGS:-}"

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
  echo "=== $target: ${SECONDS_PER_TARGET}s"
  # The child's output is in fuzz-0.log; a crash makes cargo fuzz exit non-zero.
  # shellcheck disable=SC2086
  (cd "$logs" && "${cargo_fuzz[@]}" run "${build_flags[@]}" "$target" "$corpus" "$seeds" -- \
      -max_total_time="$SECONDS_PER_TARGET" -jobs=1 -workers=1 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 $EXTRA_FLAGS) >"$logs/cargo-fuzz.out" 2>&1 || true
  log="$logs/fuzz-0.log"
  [[ -f "$log" ]] || log="$logs/cargo-fuzz.out"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [[ -z "$execs" ]]; then
    # Stopped by a finding: the last status line has the count.
    execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    rate=$(grep -oE 'exec/s: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+')
  fi
  # libFuzzer's corpus (units kept) at the end, and the files of the working corpus directory.
  units=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 | cut -d' ' -f2)
  size="${units:-?} ($(find "$corpus" -type f | wc -l) files)"
  after=$(find "$artifacts" -type f | wc -l)
  new=$((after - before))
  findings="none"
  if [[ "$new" -gt 0 ]]; then
    failed=1
    findings=$(find "$artifacts" -type f -printf '%T@ %f\n' | sort -n | tail -n "$new" | cut -d' ' -f2 | tr '\n' ' ')
    grep -m1 -A2 -E "panicked at|ERROR: libFuzzer" "$log" | sed "s/^/  $target: /" || true
  fi
  summary+=("$(printf '%-18s execs %-10s exec/s %-7s corpus %-22s findings: %s' \
    "$target" "${execs:-?}" "${rate:-?}" "$size" "$findings")")
done

echo
echo "fuzz summary (${SECONDS_PER_TARGET}s per target; findings in fuzz/artifacts/<target>/)"
printf '  %s\n' "${summary[@]}"
exit "$failed"
