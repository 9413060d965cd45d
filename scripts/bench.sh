#!/usr/bin/env bash
# Benchmarks; 1,000,000 restricted processes need a larger process table.
set -euo pipefail
cd "$(dirname "$0")/.."
export ERL_FLAGS="+P 2000000 ${ERL_FLAGS:-}"
mix compile >/dev/null
exec mix run bench/bench.exs
