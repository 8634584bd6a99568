# Two entry points (see README): `make demo` and `make test`.
# Cargo's target dir and installed tools live outside the work tree, so a fresh checkout on a
# kept machine reuses them.
SHELL := /bin/bash
CACHE_DIR ?= $(HOME)/.cache/credential-anchor
export CARGO_TARGET_DIR ?= $(CACHE_DIR)/target
AGAVE_VERSION ?= 4.2.2
export SOLANA_TEST_VALIDATOR ?= $(CACHE_DIR)/tools/agave-$(AGAVE_VERSION)/bin/solana-test-validator
# CI builds once per run: incremental state would only fill the disk (it grew to 27 GiB
# across runs on the 2-core machine) without ever being reused.
ifeq ($(CI),true)
export CARGO_INCREMENTAL ?= 0
endif
LOCALNET := $(CARGO_TARGET_DIR)/debug/localnet

.PHONY: help deps validator build lint test test-fast demo fmt deploy-check prometheus-e2e bench bench-smoke fuzz fuzz-check chaos schemathesis image image-check

help:
	@echo "make demo   - start Postgres + validator + services locally, issue and anchor a sample credential"
	@echo "make test   - install what tests need, then fmt/clippy checks, deploy-check and every test"
	@echo "make deploy-check - offline checks of the Kubernetes manifests, Prometheus rules and dashboard"
	@echo "make bench  - release build, every performance scenario vs its baseline -> bench/results/<date>.md"
	@echo "make chaos  - crash suite: relay/API SIGKILLed at each failpoint CRASH_ITERATIONS times (default 50)"
	@echo "make image  - the production image with buildah (debootstrap base, no daemon, no registry)"
	@echo "make image-check - run every binary from inside the image: --version, migrations, the demo"
	@echo "make fuzz   - cargo-fuzz (nightly) on every target, FUZZ_SECONDS each (default 600)"

## System packages and cargo tools the tests need (idempotent, quick when present).
deps:
	@bash scripts/install-deps.sh

## solana-test-validator, built once into $(CACHE_DIR)/tools (about 20 min cold).
validator: deps
	@bash scripts/install-validator.sh

build:
	cargo build --workspace --bins

lint: deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	@# No dependency that no code uses (cargo-machete, pinned in scripts/install-deps.sh).
	$(CACHE_DIR)/tools/cargo-machete/bin/cargo-machete
	@python3 scripts/check-crate-deps.py

## Everything: lint, then all tests with one PostgreSQL and one validator for the whole run.
test: validator lint deploy-check fuzz-check
	cargo build -p testkit --bin localnet
	@# The verify-flood load test first, alone: its p99 bound (issue #18) measures the attack,
	@# so it runs before the rest of the suite has loaded the validator and PostgreSQL (in
	@# the middle of the suite, the CI run of 6956fd1 measured 21-29 ms unloaded and 174-414 ms
	@# under attack, while alone it held 13 times in 15).
	$(LOCALNET) exec --validator required -- cargo nextest run --workspace --no-fail-fast -E 'binary(flood)'
	$(LOCALNET) exec --validator required -- cargo nextest run --workspace --no-fail-fast -E 'not binary(flood)'
	@bash scripts/prometheus-e2e.sh
	@bash scripts/schemathesis.sh
	@$(MAKE) --no-print-directory bench-smoke
	@# The README's first command, end to end, with a tripwire on every default port.
	@DEMO_GUARD_DEFAULT_PORTS=1 bash scripts/demo.sh

## Tests without building the validator (chain tests then start their own or fail).
test-fast: deps
	cargo build -p testkit --bin localnet
	$(LOCALNET) exec --validator auto -- cargo nextest run --workspace --no-fail-fast

## Offline checks of k8s/ and deploy/ (kustomize, schemas, promtool, metric names).
deploy-check:
	@bash scripts/check-deploy.sh

## The production image (deploy/Dockerfile) with buildah, no daemon and no registry: a
## debootstrap Debian base, the host's release binaries. Not in `make test`: on a cold
## machine the release build alone (~15 min) would take CI close to its 90 minutes.
image:
	@bash scripts/image.sh

## Every binary run from inside the image: --version, migrations, the demo flow.
image-check: validator image
	@bash scripts/image-check.sh

## Real Prometheus against the running services: targets up, no dead metric, outbox age alert.
prometheus-e2e: validator deploy-check
	@bash scripts/prometheus-e2e.sh

demo: validator
	@bash scripts/demo.sh

fmt:
	cargo fmt --all

## Benchmarks (by hand; never part of the pass/fail of `make test`): release binaries, a fresh
## PostgreSQL + validator, every scenario with its same-run baseline, report in bench/results/.
bench: validator
	cargo build --release --bins -p issuer-api -p outbox-relay -p reconciler -p bench
	cargo build -p testkit --bin localnet
	$(LOCALNET) exec --validator required --validator-nice 19 -- $(CARGO_TARGET_DIR)/release/bench \
	  --bin-dir $(CARGO_TARGET_DIR)/release --out bench/results

## The same scenarios with tiny counts on the debug binaries, so the benchmark cannot rot
## (last step of `make test`); its report goes to the cache, not the repository.
bench-smoke: validator
	cargo build --bins
	$(LOCALNET) exec --validator required -- $(CARGO_TARGET_DIR)/debug/bench --smoke \
	  --bin-dir $(CARGO_TARGET_DIR)/debug --out $(CACHE_DIR)/bench-smoke

## Fuzzing by hand (nightly + cargo-fuzz, installed into the cache): FUZZ_SECONDS per target.
## Findings land in fuzz/artifacts/<target>/; copy each into fuzz/regressions/<target>/ once
## fixed, where `make test` replays it on stable (crates/domain/tests/fuzz_regressions.rs).
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= memo_decode proof_bundle api_key issue_request
fuzz:
	@cp -f Cargo.lock fuzz/Cargo.lock
	@test -x $(CACHE_DIR)/tools/bin/cargo-fuzz || cargo install --locked cargo-fuzz --root $(CACHE_DIR)/tools
	@# pipefail: a finding makes `cargo fuzz run` fail, and `| tail` must not hide that.
	@set -o pipefail; export PATH="$(CACHE_DIR)/tools/bin:$$PATH" CARGO_TARGET_DIR=$(CACHE_DIR)/fuzz-target; cd fuzz && for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t && cp -n regressions/$$t/* corpus/$$t/ ; \
	  cargo +nightly fuzz run $$t corpus/$$t -- -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 2>&1 | tee $(CACHE_DIR)/fuzz-$$t.log | tail -n 15 || exit 1; \
	done

## The fuzz targets must compile on stable (part of `make test`; `make fuzz` runs them). fuzz/
## is its own workspace (cargo-fuzz), so it takes the workspace's lock (same versions; cargo
## only adds libfuzzer-sys) and dev profile (root Cargo.toml) to reuse the compiled tree.
fuzz-check:
	@cp -f Cargo.lock fuzz/Cargo.lock
	cargo check --manifest-path fuzz/Cargo.toml --bins \
	  --config 'profile.dev.debug="line-tables-only"' --config 'profile.dev.package."*".opt-level=1'

## Crash suite at full length (by hand; `make test` runs it with CRASH_ITERATIONS=3):
## kill -9 at each failpoint under continuous issuance, then the chain-counted figures go
## into docs/reliability.md.
CRASH_ITERATIONS ?= 50
chaos: validator
	cargo build -p testkit --bin localnet
	rm -rf $(CACHE_DIR)/chaos && mkdir -p $(CACHE_DIR)/chaos
	CRASH_ITERATIONS=$(CRASH_ITERATIONS) CRASH_REPORT_DIR=$(CACHE_DIR)/chaos \
	  $(LOCALNET) exec --validator required -- cargo nextest run --workspace --profile chaos \
	  -E 'binary(crash)'
	python3 scripts/chaos-report.py $(CACHE_DIR)/chaos docs/reliability.md

## schemathesis (PyPI, in a venv under the cache) against the running API's /openapi.json:
## no 5xx, every status, header, content type and body as documented (part of `make test`).
schemathesis: validator
	@bash scripts/schemathesis.sh
