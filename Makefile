# beam_seccomp — the commands a user runs. Each target sets the machine up first.
SHELL := /bin/bash
export MIX_ENV ?= test
export ERL_AFLAGS ?= -kernel shell_history enabled

.PHONY: setup build test demo bench lint format clean

setup:
	@scripts/setup.sh

build: setup
	@mix compile

test: setup
	@scripts/test.sh

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
