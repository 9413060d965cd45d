#!/usr/bin/env bash
# Install Erlang/OTP, Elixir, rebar3, dialyzer, common_test and PropEr from
# Debian packages when any of them is missing. Safe to run again and again.
set -euo pipefail
packages=(erlang-nox erlang-dev erlang-dialyzer erlang-common-test erlang-proper elixir rebar3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo (Rust) is required: https://rustup.rs" >&2; exit 1; }
