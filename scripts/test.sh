#!/usr/bin/env bash
# Run every suite (cargo test, EUnit, Common Test, ExUnit, the consumer app, the demo) and
# print one summary line.
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
declare -a summary=() failing=() flaky=()
failed=0

# The lines that name a suite's failed cases, by the runner's own words.
declare -A failing_case=(
  [cargo]='^test .* FAILED$'
  [eunit]='\*failed\*|\*timed out\*|cancelled'
  [ct]='%%%.*FAILED|==> .*: FAILED'
  [consumer]='FAIL|[Ee]rror'
  [exunit]='^ +[0-9]+\) (test|property|doctest) '
  [demo]='\*\*|[Ee]rror'
)

# A hard cap per suite: a wedged VM must fail the run, not hang it.
cap() { timeout -s KILL 1200 "$@"; }

record() {  # record NAME COUNT-REGEX STATUS: the suite's summary entry
  local count failures=""
  if [[ $2 == *'[0-9]'* ]]; then  # the numbers the runner prints
    count=$(grep -oE "$2" "$log/$1.txt" | grep -oE '[0-9]+' | awk '{s+=$1} END {print s+0}')
  else  # the lines that match
    count=$(grep -acE "$2" "$log/$1.txt")
  fi
  if [[ $3 != ok ]]; then
    failures=$(grep -aoE '[0-9]+ failures?|Failed: [0-9]+|[0-9]+ failed|Failed [0-9]+ tests?|failed$|tests were cancelled' "$log/$1.txt" | tail -1)
    failures=" (${failures:-see its output})"
    while IFS= read -r case_line; do failing+=("FAILING $1: ${case_line}"); done \
      < <(grep -aE "${failing_case[$1]}" "$log/$1.txt" | head -10 | cut -c1-300)
  fi
  summary+=("$1: $count $3$failures")
}

run() {  # run NAME COUNT-REGEX COMMAND...
  local name=$1 pattern=$2 status; shift 2
  echo "=== $name: $*"
  if cap "$@" 2>&1 | tee "$log/$name.txt"; then status=ok; else status=FAILED; failed=1; fi
  record "$name" "$pattern" "$status"
}

# Common Test spends most of its time waiting on its nodes (a one-minute
# cluster soak among them): it runs beside cargo, EUnit and the consumer
# app, in a build directory of its own, and its output follows theirs.
echo "=== ct (beside the next suites): rebar3 ct"
(export REBAR_BASE_DIR=$REBAR_BASE_DIR/ct
 cap rebar3 ct --logdir "$ct_logs" >"$log/ct.txt" 2>&1
 echo $? >"$log/ct.status") &
ct_pid=$!

run cargo 'test result: ok\. [0-9]+ passed' cargo test --quiet
run eunit 'All [0-9]+ tests passed|Passed: [0-9]+' rebar3 eunit
run consumer '[0-9]+ checks passed' scripts/consumer-test.sh

wait $ct_pid
echo "=== ct: rebar3 ct"
cat "$log/ct.txt"
if [[ $(cat "$log/ct.status" 2>/dev/null) == 0 ]]; then ct_status=ok; else ct_status=FAILED; failed=1; fi
record ct 'All [0-9]+ tests passed|TEST COMPLETE, [0-9]+ ok|Passed [0-9]+ tests' "$ct_status"

# A test that fails once is run once more (`mix test --failed`): one that
# passes then is named as flaky beside the summary, one that fails again
# fails the run. Only a run that finished and named its failures is retried.
echo "=== exunit: mix test"
if cap mix test 2>&1 | tee "$log/exunit.txt"; then
  record exunit '[0-9]+ tests?, 0 failures|Result: [0-9]+ passed' ok
else
  first=$(grep -aE "${failing_case[exunit]}" "$log/exunit.txt" | head -10 | cut -c1-300)
  if [[ -n $first ]] && grep -aq '^Finished in' "$log/exunit.txt" && {
       echo "=== exunit: the failed tests once more: mix test --failed"
       cap mix test --failed 2>&1 | tee "$log/exunit-retry.txt"; }; then
    while IFS= read -r case_line; do flaky+=("FLAKY exunit: ${case_line}"); done <<<"$first"
    record exunit '[0-9]+ tests?,|/[0-9]+ passed' ok
    summary[-1]+=" (${#flaky[@]} passed when run again)"
  else
    failed=1
    record exunit '[0-9]+ tests?, 0 failures|Result: [0-9]+ passed' FAILED
  fi
fi

# The walk-through `make demo' prints, in the test build (it stops at the
# first step that does not go as it says); counted: the outcomes it shows.
run demo '(allowed|refused)' mix run demo/demo.exs

line=$(printf '%s; ' "${summary[@]}")
((${#flaky[@]})) && printf '%s\n' "${flaky[@]}"
if ((failed)); then
  ((${#failing[@]})) && printf '%s\n' "${failing[@]}"
  echo "SUMMARY: FAILED — ${line%; }"
  exit 1
fi
echo "SUMMARY: all suites passed — ${line%; }"
