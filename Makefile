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
