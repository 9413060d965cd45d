# beam_seccomp — the commands a user runs. Each target sets the machine up first.
SHELL := /bin/bash
export MIX_ENV ?= test
export ERL_AFLAGS ?= -kernel shell_history enabled

.PHONY: setup build test soak consumer-test test-matrix demo bench lint format clean

setup:
	@scripts/setup.sh

build: setup
	@mix compile

test: setup
	@scripts/test.sh

# The long runs (100,000 prepare cycles, 1,000,000 restricted processes) that
# `make test` runs shortened.
soak: setup
	@SECCOMP_SOAK=1 mix test test/prepare_cycles_test.exs test/churn_test.exs

# Every suite on the Debian toolchain, OTP 27.3/Elixir 1.18 and OTP 29.1/Elixir 1.20
# (SECCOMP_TOOLCHAINS: a directory of prebuilt bundles; built from source otherwise).
test-matrix: setup
	@scripts/test-matrix.sh

# A consumer app with this library as a git dependency, and its release.
consumer-test: setup
	@scripts/consumer-test.sh

demo: setup
	@MIX_ENV=dev mix compile >/dev/null && MIX_ENV=dev scripts/demo.sh

bench: setup
	@MIX_ENV=dev scripts/bench.sh

lint: setup
	cargo fmt --all -- --check
	cargo clippy --release --all-targets -- -D warnings
	mix format --check-formatted
	rebar3 dialyzer

format:
	cargo fmt --all
	mix format

clean:
	rm -rf _build target priv/native

# Five minutes of a three-node cluster (two on the seccomp carrier, one plain)
# at the default net_ticktime: no nodedown, no lost or reordered message.
.PHONY: soak-dist
soak-dist: setup
	@SECCOMP_DIST_SOAK_SECONDS=300 SECCOMP_DIST_SOAK_TICKTIME=60 \
	  rebar3 ct --suite test/seccomp_dist_SUITE --case cluster_stays_up
