#!/usr/bin/env bash
# Use the library as users do: a fresh consumer app with beam_seccomp as a git
# dependency (a file:// URL to a clone of this repository's HEAD, no Hex) and
# one with it as a path dependency. On the FIRST `mix compile` of each, eval
# and prepare must work; then a `mix release` of the git consumer must run
# them too. The checks run with --no-compile: a later `mix compile` would
# hide a NIF missing after the first. Everything happens in a temporary directory that is removed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unset MIX_ENV MIX_BUILD_PATH MIX_BUILD_ROOT MIX_DEPS_PATH REBAR_BASE_DIR

git clone --quiet "file://$repo" "$work/beam_seccomp"
# A branch for the consumer's clone to follow, even when HEAD here is detached.
git -C "$work/beam_seccomp" checkout --quiet -B consumer-test

check='
{:ok, _} = Application.ensure_all_started(:beam_seccomp)
{:ok, 3, _} = Seccomp.Eval.eval("1 + 2")
{:ok, prepared} = Seccomp.Eval.prepare("a * 2", bindings: [:a])
{:ok, 42, _} = Seccomp.Eval.run(prepared, a: 21)
{:ok, erl} = Seccomp.Eval.prepare("A + 1.", language: :erlang)
{:ok, 2, _} = Seccomp.Eval.run(erl, A: 1)
IO.puts("consumer ok: eval and prepare")
'

consumer() {  # consumer DIR DEP-SPEC
  mkdir -p "$1"
  cat >"$1/mix.exs" <<MIX
defmodule Consumer.MixProject do
  use Mix.Project
  def project do
    [app: :consumer, version: "0.1.0", deps: [{:beam_seccomp, $2}],
     # The sandbox derives what it refuses from the installed code's debug
     # information: a release keeps it (README, "Releases").
     releases: [consumer: [include_executables_for: [:unix], strip_beams: false]]]
  end
  def application, do: [extra_applications: [:logger]]
end
MIX
}

passed=0
expect_ok() {  # expect_ok WHAT COMMAND...
  local out
  if ! out=$("${@:2}" 2>&1) || ! grep -q "consumer ok: eval and prepare" <<<"$out"; then
    printf '%s\n' "$out" >&2
    echo "consumer-test: FAILED: $1" >&2
    exit 1
  fi
  echo "consumer-test: $1: ok"
  passed=$((passed + 1))
}

consumer "$work/git_app" "git: \"file://$work/beam_seccomp\""
consumer "$work/path_app" "path: \"$work/beam_seccomp\""

(cd "$work/path_app" && mix compile >/dev/null 2>&1)
expect_ok "path dependency, first compile" \
  bash -c "cd '$work/path_app' && mix run --no-compile --no-deps-check -e '$check'"

cd "$work/git_app"
MIX_ENV=prod mix deps.get >/dev/null
MIX_ENV=prod mix compile >/dev/null 2>&1
expect_ok "git dependency, first compile" env MIX_ENV=prod mix run --no-compile --no-deps-check -e "$check"
MIX_ENV=prod mix release --quiet >/dev/null 2>&1
expect_ok "release of the git consumer" _build/prod/rel/consumer/bin/consumer eval "$check"
echo "consumer-test: $passed checks passed"
