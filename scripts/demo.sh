#!/usr/bin/env bash
# The live walk-through: sandboxed eval, a filtered cluster, supervised capabilities.
set -euo pipefail
cd "$(dirname "$0")/.."
exec mix run demo/demo.exs
