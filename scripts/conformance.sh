#!/usr/bin/env bash
# Runs the official protobuf conformance suite (protobuf v27.2's conformance_test_runner)
# against json2grpc's core JSON mapping, through the `conformance-testee` binary: proto2,
# proto3 and edition 2023 (--maximum_edition 2023: the editions forms of the proto2/proto3
# test messages and TestAllTypesEdition2023, whose descriptors protoc writes into
# EDITIONS_SET; the reflection path, prost-reflect, skips them).
#
#   scripts/conformance.sh            native testee (release build)
#   scripts/conformance.sh --wasm     the testee built for wasm32-wasip1, run by Node's WASI
#   scripts/conformance.sh --all      both
#
# Every Required and Recommended test must pass except those in conformance/failure_list.txt
# (--enforce_recommended); any other failure, or a listed test that now passes, exits non-zero.
# The runner and the protobuf sources come from scripts/build-conformance.sh (cached).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

modes=()
case "${1:-}" in
  --native) modes=(native) ;;
  --reflection) modes=(reflection) ;;
  --wasm) modes=(wasm) ;;
  "" | --all) modes=(native reflection wasm) ;;
  *) echo "usage: $0 [--native|--reflection|--wasm|--all]" >&2; exit 2 ;;
esac

RUNNER=""
PROTOBUF_SRC_DIR=""
EDITIONS_SET=""
while IFS='=' read -r key value; do
  case "$key" in
    RUNNER) RUNNER="$value" ;;
    PROTOBUF_SRC_DIR) PROTOBUF_SRC_DIR="$value" ;;
    EDITIONS_SET) EDITIONS_SET="$value" ;;
  esac
done < <(bash "$REPO/scripts/build-conformance.sh")
[[ -x "$RUNNER" && -d "$PROTOBUF_SRC_DIR" ]] || { echo "conformance: no runner" >&2; exit 1; }
[[ -s "$EDITIONS_SET" ]] || { echo "conformance: no editions descriptor set" >&2; exit 1; }
export PROTOBUF_SRC_DIR
echo "== runner: $RUNNER" >&2
echo "== protobuf sources: $PROTOBUF_SRC_DIR" >&2
echo "== editions descriptor set: $EDITIONS_SET" >&2
# The newest edition whose tests run (the runner's default is proto2/proto3 only).
MAXIMUM_EDITION=2023

FAILURE_LIST="$REPO/conformance/failure_list.txt"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
OUT="$(mktemp -d "${TMPDIR:-/tmp}/json2grpc-conformance.XXXXXX")"
trap 'rm -rf "$OUT"' EXIT

# Every test name of the binary/JSON suite, from a run where the testee skips everything
# (cached next to the runner: it only changes with the runner and the edition).
ALL_TESTS="$(dirname "$RUNNER")/all_tests_$MAXIMUM_EDITION.txt"

list_tests() { # $@: testee command
  if [[ -s "$ALL_TESTS" && "$ALL_TESTS" -nt "$RUNNER" ]]; then return; fi
  echo "== listing the suite's tests" >&2
  mkdir -p "$OUT/list"
  "$RUNNER" --verbose --maximum_edition "$MAXIMUM_EDITION" --output_dir "$OUT/list" "$@" --skip-all \
    >"$OUT/list.log" 2>&1 || true
  sed -n 's/^SKIPPED, test=\([^ ]*\) request=.*/\1/p' "$OUT/list.log" | sort -u >"$ALL_TESTS.tmp"
  if [[ ! -s "$ALL_TESTS.tmp" ]]; then
    tail -n 20 "$OUT/list.log" >&2
    echo "conformance: could not list the tests" >&2
    exit 1
  fi
  mv "$ALL_TESTS.tmp" "$ALL_TESTS"
}

# Prints passing/failing counts per level and format; $1: file of failing test names, $2: 1 if
# the testee skips the editions tests (the reflection path).
summarise() {
  awk -v failing="$1" -v skip_editions="${2:-0}" '
    BEGIN { while ((getline n < failing) > 0) bad[n] = 1 }
    {
      split($0, part, ".")
      level = part[1]; syntax = part[2]
      if ($0 ~ /TextFormat/) fmt = "TextFormat"
      else if ($0 ~ /Jspb/) fmt = "JSPB"
      else if ($0 ~ /Json(Input|Output)/) fmt = "JSON"
      else fmt = "binary"
      key = sprintf("%-11s %-15s %-10s", level, syntax, fmt)
      keys[key] = 1
      # The testee answers `skipped` to every text-format and JSPB request.
      if (fmt == "TextFormat" || fmt == "JSPB" || (skip_editions && syntax ~ /^Editions/)) s[key]++
      else if ($0 in bad) f[key]++
      else p[key]++
    }
    END { for (k in keys) printf "  %s %7d %7d %7d\n", k, p[k], f[k], s[k] }' "$ALL_TESTS" \
    | sort -r | sed "1i\\  $(printf '%-11s %-15s %-10s %7s %7s %7s' level syntax format pass fail skipped)"
}

status=0
run_mode() { # $1: native|wasm
  local mode="$1" testee=()
  case "$mode" in
    native)
      echo "== building the native testee (release)" >&2
      cargo build --release --quiet -p json2grpc-conformance --bin conformance-testee
      testee=("$TARGET_DIR/release/conformance-testee" --proto-root "$PROTOBUF_SRC_DIR"
        --editions-set "$EDITIONS_SET")
      ;;
    reflection)
      echo "== building the native testee (release), reflection path" >&2
      cargo build --release --quiet -p json2grpc-conformance --bin conformance-testee
      testee=("$TARGET_DIR/release/conformance-testee" --proto-root "$PROTOBUF_SRC_DIR"
        --editions-set "$EDITIONS_SET" --reflection)
      ;;
    wasm)
      command -v node >/dev/null || { echo "conformance: node is needed for --wasm" >&2; return 1; }
      rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 \
        || rustup target add wasm32-wasip1
      echo "== building the wasm32-wasip1 testee (release)" >&2
      cargo build --release --quiet --target wasm32-wasip1 -p json2grpc-conformance \
        --bin conformance-testee
      # The runner execs its program with the arguments after it.
      testee=("$(command -v node)" --no-warnings "$REPO/conformance/wasi-testee.mjs"
        "$TARGET_DIR/wasm32-wasip1/release/conformance-testee.wasm"
        --proto-root "$PROTOBUF_SRC_DIR" --editions-set "$EDITIONS_SET")
      ;;
  esac
  list_tests "${testee[@]}"

  echo "== running conformance_test_runner ($mode)" >&2
  local log="$OUT/$mode.log" rc=0
  mkdir -p "$OUT/$mode"
  "$RUNNER" --enforce_recommended --maximum_edition "$MAXIMUM_EDITION" --failure_list "$FAILURE_LIST" \
    --output_dir "$OUT/$mode" "${testee[@]}" >"$log" 2>&1 || rc=$?

  # Failing = unexpected failures + listed tests that did not pass.
  sed -n 's/^ERROR, test=\([^:]*\):.*/\1/p' "$log" | sort -u >"$OUT/$mode.unexpected"
  sed -n 's/^ERROR: test \([^ ]*\) is in the failure list, but test succeeded.*/\1/p' "$log" \
    | sort -u >"$OUT/$mode.fixed"
  sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$FAILURE_LIST" | sort -u \
    | comm -23 - "$OUT/$mode.fixed" | comm -12 - "$ALL_TESTS" >"$OUT/$mode.listed"
  sort -u "$OUT/$mode.unexpected" "$OUT/$mode.listed" >"$OUT/$mode.failing"

  echo "conformance ($mode): per level, syntax and format"
  summarise "$OUT/$mode.failing" "$([[ $mode == reflection ]] && echo 1 || echo 0)"
  grep -E '^CONFORMANCE SUITE' "$log" | sed 's/^/  /' || true
  if [[ $rc -ne 0 ]]; then
    status=1
    echo "conformance ($mode): FAILED (runner exit $rc); details:" >&2
    grep -vE '^(WARNING: All log messages|I[0-9]{4} )' "$log" | cut -c1-600 | head -n 200 >&2
  fi
  local passed failed skipped
  passed=$(sed -n 's/^CONFORMANCE SUITE [A-Z]*: \([0-9]*\) successes.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  skipped=$(sed -n 's/.* \([0-9]*\) skipped.*/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
  failed=$(wc -l <"$OUT/$mode.unexpected")
  [[ $rc -ne 0 && $failed -eq 0 ]] && failed=1 # a crash or a stale failure list entry
  echo "conformance ($mode): $(wc -l <"$OUT/$mode.listed") expected failures (conformance/failure_list.txt)"
  echo "conformance-$mode: $passed passed, $failed failed, $skipped skipped"
}

for mode in "${modes[@]}"; do
  run_mode "$mode" || status=1
done
exit "$status"
