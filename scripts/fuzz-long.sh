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

summary=()
failed=0
for target in "${targets[@]}"; do
  cpu=0 execs=0 slices=0 peak=0 slowest="" findings="none"
  while (( cpu < CPU_GOAL )); do
    slices=$((slices + 1))
    out="$LOG_DIR/$target.$slices.log"
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
