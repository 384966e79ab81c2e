# Marquee: `make up` runs the demo, `make test` runs every check CI runs.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= $(HOME)/.cache/marquee/target
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
export REDIS_URL ?= redis://127.0.0.1:6379/

.PHONY: up test bench soak fuzz services build fmt lint unit clean-test-dbs

## Start PostgreSQL and Redis (installing them where absent), every service and the demo data.
up:
	@bash scripts/up.sh

## Formatting, lints and every test, against the real PostgreSQL and Redis.
test: services
	@bash scripts/redis-cluster.sh
	@bash scripts/browser-deps.sh
	@bash scripts/schemathesis-deps.sh
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	@bash scripts/static-checks.sh
	@bash scripts/clean-test-dbs.sh
	cargo build --workspace --bins
	cargo test --workspace --no-fail-fast
	@bash scripts/fuzz.sh

## The benchmarks (loadtest/run.sh), then opening nights of 1,000, 10,000 and 100,000 fans
## against the whole system on the release build, with their scaling table (BENCHMARKS.md).
bench: services
	@bash loadtest/run.sh
	@bash loadtest/opening-night.sh 1000 10000 100000

## An hour of opening nights with every service's memory and sockets sampled each minute.
soak: services
	@bash loadtest/soak.sh

## The fuzz targets, FUZZ_SECONDS (default 15) each.
fuzz:
	@bash scripts/fuzz.sh

services:
	@bash scripts/services.sh

build:
	cargo build --workspace --bins

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets -- -D warnings

clean-test-dbs:
	@bash scripts/clean-test-dbs.sh
