#!/usr/bin/env bash
# Run every suite (scripts/test.sh) on each supported toolchain and print one
# summary line per toolchain. The newer toolchains come from the directory
# SECCOMP_TOOLCHAINS names (prebuilt bundles and their install.sh) when set,
# and are built from source otherwise (scripts/build-toolchain.sh).
# SECCOMP_MATRIX picks toolchains (default: all three); "debian" is the
# system's own OTP/Elixir. Each toolchain builds into its own directory.
set -uo pipefail
cd "$(dirname "$0")/.."
matrix=${SECCOMP_MATRIX:-debian otp27.3-elixir1.18 otp29.1-elixir1.20}
declare -a lines=() failing=()
failed=0
begin=$(date +%s)
out=$(mktemp)
trap 'rm -f "$out"' EXIT

toolchain_env() {  # prints the export line of toolchain NAME
  if [ "$1" = debian ]; then return 0; fi
  if [ -n "${SECCOMP_TOOLCHAINS:-}" ] && [ -x "$SECCOMP_TOOLCHAINS/install.sh" ]; then
    "$SECCOMP_TOOLCHAINS/install.sh" "$1"
  else
    scripts/build-toolchain.sh "$1"
  fi
}

for name in $matrix; do
  echo "##### toolchain $name"
  start=$(date +%s)
  if ! setup=$(toolchain_env "$name"); then
    lines+=("$name: toolchain unavailable FAILED"); failed=1; continue
  fi
  (
    eval "$setup"
    export MIX_BUILD_ROOT=_build/matrix/$name/mix REBAR_BASE_DIR=_build/matrix/$name/rebar3
    versions=$(erl -noshell -eval 'io:format("OTP ~s", [erlang:system_info(otp_release)]), halt().')
    echo "##### $name: $versions, $(elixir --version | tail -1)"
    scripts/test.sh
  ) 2>&1 | tee "$out"
  status=${PIPESTATUS[0]}
  summary=$(grep -E '^SUMMARY:' "$out" | tail -1)
  ((status == 0)) || failed=1
  while IFS= read -r case_line; do failing+=("$name $case_line"); done < <(grep -aE '^(FAILING|FLAKY) ' "$out")
  lines+=("$name ($(($(date +%s) - start)) s): ${summary:-no summary, exit $status}")
done

((${#failing[@]})) && printf '%s\n' "${failing[@]}"
printf '%s\n' "${lines[@]/#/MATRIX }"
echo "MATRIX total: $(($(date +%s) - begin)) s, $( ((failed)) && echo FAILED || echo all toolchains passed)"
exit $failed
