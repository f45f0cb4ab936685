#!/usr/bin/env bash
# Long fuzzing by CPU time: runs each target (all, or the ones named) in slices of
# FUZZ_SLICE_SECONDS (default 600) of scripts/fuzz.sh until it has used FUZZ_CPU_MINUTES
# (default 30) of CPU time. On a shared machine wall time says little: a 30-minute run next to
# a build may get a few minutes of CPU. Slices continue the same corpus; the run of a target
# stops at its first finding. Prints per target: CPU seconds, executions (summed), the highest
# peak RSS and the slowest unit of its slices, and findings.
#
#   scripts/fuzz-long.sh [TARGET...]          (make fuzz-long FUZZ_CPU_MINUTES=30)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CPU_GOAL=$(( ${FUZZ_CPU_MINUTES:-30} * 60 ))
SLICE="${FUZZ_SLICE_SECONDS:-600}"
LOG_DIR="$ROOT/fuzz/target/long"
mkdir -p "$LOG_DIR"

if [[ $# -gt 0 ]]; then
  targets=("$@")
else
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz
  mapfile -t targets < <(cd "$ROOT" && RUSTC_BOOTSTRAP=1 cargo fuzz list --fuzz-dir "$ROOT/fuzz")
fi

# A slow unit on a busy machine may be the machine: when every artifact the slice left is a
# slow unit that runs in under 250 ms alone, it is moved to fuzz/target/long/load-slow/ and the
# target goes on. A timeout, crash or OOM is always a finding.
only_load_slowness() {
  local target="$1" dir="$ROOT/fuzz/artifacts/$1" binary
  binary=$(find "$ROOT/fuzz/target" -path "*/release/$target" -type f | head -1)
  [[ -x "$binary" ]] || return 1
  local artifacts=() f ms
  mapfile -t artifacts < <(find "$dir" -type f -newer "$LOG_DIR/.slice-start")
  [[ ${#artifacts[@]} -gt 0 ]] || return 1
  for f in "${artifacts[@]}"; do
    [[ "$(basename "$f")" == slow-unit-* ]] || return 1
    ms=$("$binary" -runs=3 "$f" 2>&1 | sed -nE 's/^Executed .* in ([0-9]+) ms$/\1/p' | sort -n | tail -1)
    [[ -n "$ms" && "$ms" -lt 250 ]] || return 1
  done
  mkdir -p "$LOG_DIR/load-slow"
  mv "${artifacts[@]}" "$LOG_DIR/load-slow/"
}

summary=()
failed=0
for target in "${targets[@]}"; do
  cpu=0 execs=0 slices=0 peak=0 slowest="" findings="none"
  while (( cpu < CPU_GOAL )); do
    slices=$((slices + 1))
    out="$LOG_DIR/$target.$slices.log"
    touch "$LOG_DIR/.slice-start"
    rc=0
    /usr/bin/time -f "cpu %U %S" -o "$out.time" bash "$ROOT/scripts/fuzz.sh" "$SLICE" "$target" >"$out" 2>&1 || rc=$?
    used=$(awk '/^cpu/ {printf "%d", $2 + $3}' "$out.time")
    cpu=$((cpu + ${used:-0}))
    line=$(grep -E "^  $target +execs" "$out" | tail -1 || true)
    n=$(sed -nE 's/.* execs ([0-9]+).*/\1/p' <<<"$line")
    execs=$((execs + ${n:-0}))
    p=$(sed -nE 's/.*peak RSS +([0-9]+) MB.*/\1/p' <<<"$line")
    (( ${p:-0} > peak )) && peak=${p:-0}
    s=$(sed -nE 's/.*slowest ([^ ]+) .*/\1/p' <<<"$line")
    [[ "$s" == "<"* && -n "$slowest" ]] || slowest="$s"
    echo "$target slice $slices: cpu ${used:-?}s (total ${cpu}s), $line"
    if [[ "$rc" -ne 0 ]] && only_load_slowness "$target"; then
      echo "$target slice $slices: the slow unit(s) run fast alone (machine load): going on"
      rc=0
    fi
    if [[ "$rc" -ne 0 ]]; then
      findings=$(sed -nE 's/.*findings: (.*)/\1/p' <<<"$line")
      failed=1
      break
    fi
  done
  summary+=("$(printf '%-18s cpu %6ss  execs %-11s slices %-3s peak RSS %4s MB  slowest %-5s findings: %s' \
    "$target" "$cpu" "$execs" "$slices" "$peak" "${slowest:-?}" "${findings:-?}")")
done

echo
echo "long fuzz summary (goal ${CPU_GOAL}s of CPU per target, slices of ${SLICE}s; logs in fuzz/target/long/)"
printf '  %s\n' "${summary[@]}"
exit "$failed"
