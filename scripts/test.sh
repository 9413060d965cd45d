#!/usr/bin/env bash
# Run every suite (cargo test, EUnit, Common Test, ExUnit, the consumer app) and print one
# summary line.
# Every suite runs even when an earlier one fails; the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
# rebar3's test profile and Mix's test environment would both build into
# _build/test/lib/beam_seccomp: each would run the other's (possibly stale) code.
export REBAR_BASE_DIR=${REBAR_BASE_DIR:-_build/rebar3}
# Common Test's log index is written per OTP release: one directory per build.
ct_logs=$REBAR_BASE_DIR/ct_logs
mkdir -p "$ct_logs"
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
declare -a summary
failed=0

run() {  # run NAME COUNT-REGEX COMMAND...
  local name=$1 pattern=$2; shift 2
  echo "=== $name: $*"
  # A hard cap per suite: a wedged VM must fail the run, not hang it.
  if timeout -s KILL 1200 "$@" 2>&1 | tee "$log/$name.txt"; then status=ok; else status=FAILED; failed=1; fi
  local count
  count=$(grep -oE "$pattern" "$log/$name.txt" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  summary+=("$name: $count $status")
}

run cargo 'test result: ok\. [0-9]+ passed' cargo test --quiet
run eunit 'All [0-9]+ tests passed|Passed: [0-9]+' rebar3 eunit
run ct 'All [0-9]+ tests passed|TEST COMPLETE, [0-9]+ ok' rebar3 ct --logdir "$ct_logs"
run exunit '[0-9]+ tests?, 0 failures|Result: [0-9]+ passed' mix test
run consumer '[0-9]+ checks passed' scripts/consumer-test.sh

line=$(printf '%s; ' "${summary[@]}")
if ((failed)); then
  echo "SUMMARY: FAILED — ${line%; }"
  exit 1
fi
echo "SUMMARY: all suites passed — ${line%; }"
