# The two commands a newcomer needs: `make dev` and `make test`. Both install what they need
# first (scripts/setup.sh, idempotent). Everything else here is a building block of those two.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(HOME)/.cargo/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export WRANGLER_SEND_METRICS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false
export WASM_BINDGEN_BIN := wasm-bindgen
CHROMEDRIVER ?= /usr/bin/chromedriver
# wasm-bindgen-test in Chromium reads this (Debian's chromium, sandbox off for root/CI).
export WASM_BINDGEN_TEST_WEBDRIVER_JSON := $(CURDIR)/webdriver.json

.PHONY: help setup test dev build build-dev build-floor preview fmt lint test-native test-wasm-node \
        test-wasm-chrome test-worker test-worker-hub test-soak test-browser test-bench test-lightrag bench aa simulate reference \
        fuzz soak clean

help:
	@echo "make dev   - build, start demo upstreams + the router under workerd (wrangler dev)"
	@echo "make test  - install tools if needed, then run every test layer"
	@echo "make test-lightrag - the router and the mock LightRAG against the real lightrag-server"
	@echo "make soak  - >= 5,000 requests through the router in workerd under upstream faults"

setup:
	@bash scripts/setup.sh

# ---- test layers, in the order `make test` runs them (fail fast) --------------------------
fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy --all-targets -- -D warnings
	cargo clippy --lib --target wasm32-unknown-unknown -- -D warnings
	cargo clippy --lib --tests --target wasm32-unknown-unknown --no-default-features -- -D warnings

test-native:
	cargo test

test-wasm-node:
	wasm-pack test --node -- --no-default-features --test wasm_node

test-wasm-chrome:
	wasm-pack test --headless --chrome --chromedriver $(CHROMEDRIVER) -- --no-default-features --test wasm_browser

build:
	bash scripts/build-worker.sh

build-dev:
	WORKER_OPT=0 bash scripts/build-worker.sh

# The Rust floor's workers (benches/floor: the smallest workers-rs workers, for
# benches/rust_floor.mjs), each into benches/floor/build/<variant>/; its own crate and target dir.
build-floor:
	bash benches/floor/build.sh

# The preview is built at opt-level 3 (the Worker stays at "z" for bundle size): the console's
# million-user loops run 1.5–2x faster than at "z", which would save 11 % of the wasm (README).
preview:
	CARGO_PROFILE_RELEASE_OPT_LEVEL=3 wasm-pack build --target web --out-dir www/pkg --out-name cmo_edge_router --no-pack -- --no-default-features
	@rm -f www/pkg/.gitignore

# The worker and preview builds, unless the caller built them already (`make test` builds both
# once, then runs these layers with BUILT=1).
BUILDS := $(if $(BUILT),,build preview)

# The preview build too: tests/node/front_door checks the page's decide() against the worker.
test-worker: $(BUILDS)
	node --test --test-concurrency=1 tests/mock/ tests/node/

# The state-touching suites again with the state hub as the backend (STATE_BACKEND=durable_object,
# the StateHub Durable Object of the same bundle, in workerd; docs/architecture.md#state-backends).
# Their routers-sharing-state tests run two or three routers, each its own workerd process, bound
# to one object owned by a Worker in another process (Miniflare's dev registry; tests/node/
# harness.mjs startRouters). Left out, to keep this layer
# near a minute: suites that check one isolate's behaviour, where the backend changes
# nothing they look at (body_limits, guard, exchange, no_context*, ofrep, preview_assets,
# seed_query_cache, shadow, front_door, config_vars), and fallback_stream, whose one shared-state
# check (the open breaker's record) fleet and admin_state make too.
HUB_SUITES := fleet rollout metrics admin_state breaker_timing healthz secrets
test-worker-hub: $(if $(BUILT),,build)
	ROUTER_STATE_BACKEND=durable_object node --test --test-concurrency=1 $(HUB_SUITES:%=tests/node/%.test.mjs)

# The short soak (tests/soak/soak.test.mjs): `make soak`'s phases compressed (~1,000 requests,
# ~45 s), every check a subtest.
test-soak: $(if $(BUILT),,build)
	node --test --test-concurrency=1 tests/soak/

# The console page in Chromium: its panels against www/pkg, and its Live panel against the
# release worker (build/) in workerd, which serves the page at /preview; the OFREP-CORS and
# preview-CSP pages talk to the worker too.
test-browser: $(BUILDS)
	node --test --test-concurrency=1 tests/browser/

# Smoke run of `make bench` (BENCH_QUICK, without criterion): the harness runs and our cohort
# equals unleash-client's at every whole percentage. Checks no speed. Uses build/ and www/pkg as
# test-worker and test-browser leave them (run those first when calling it on its own). Also the
# Rust floor's smoke run (tests/bench/rust_floor.test.mjs: benches/floor's workers, build-floor).
test-bench: $(if $(BUILT),,build-floor)
	node --test tests/bench/

test: setup
	@start=$$(date +%s); \
	for t in fmt lint test-native test-wasm-node test-wasm-chrome build preview test-worker test-worker-hub test-soak test-browser build-floor test-bench; do \
	  echo "==> make $$t"; s=$$(date +%s); \
	  $(MAKE) --no-print-directory BUILT=1 $$t; \
	  echo "<== make $$t ok ($$(( $$(date +%s) - s ))s)"; \
	done; \
	echo "make test: all layers passed in $$(( $$(date +%s) - start ))s"

# Against the REAL lightrag-server (PyPI lightrag-hku[api], pinned; offline with a mock LLM):
# its own target, not part of `make test`. Installs the server into a venv under
# ~/.cache/cmo-edge-router the first time (~1 min), then reuses it. See docs/lightrag-real.md.
test-lightrag: setup build
	bash scripts/lightrag/setup.sh
	node --test --test-concurrency=1 tests/real/

dev: setup build-dev preview
	bash scripts/dev.sh

# Every benchmark, one results table: bench-results/latest.md and latest.json (benches/run.mjs):
# criterion, our wasm decision vs unleash-client / GrowthBook / flagd-core (+ the cohort check),
# router vs bare worker latency and throughput, cold start, bundle sizes, KV operations.
# BENCH_QUICK=1 for a fast smoke run; BENCH_SKIP=criterion,kv,... to leave sections out.
bench: setup build preview build-floor
	node benches/run.mjs

# The soak (issue 8): the release router in workerd, mock upstreams switching through faults
# (500, 429, hang, reset, slow first byte, cut streams, malformed JSON, a 60 s slow-but-healthy
# stream, Perplexity down), >= 5,000 requests at concurrency 20 from thousands of users in both
# cohorts. Prints a table (statuses, fallbacks, breaker transitions, p50/p95 per phase, KV
# writes per key) and checks; exits 1 if one failed. ~2.5 min. SOAK_SEED=<n> repeats a run.
soak: setup build
	node tests/soak/run.mjs

# Fuzz every parser that reads outside input (tests/fuzz/: config, rules, front-door bodies,
# upstream replies, SSE / NDJSON decoders, KV documents, identity) with FUZZ_CASES inputs per
# target (default 1,000,000) on stable Rust: proptest, an optimised build with overflow checks
# on, two targets at a time. Prints one line per target (inputs, time, failures: a target stops
# at its first failure and shrinks it, so 0 or 1); a failure keeps its seed in
# tests/fuzz/regressions/ (commit it) and its whole input in target/fuzz-failures/.
# FUZZ_SEED=<n> repeats a run; `cargo test` runs a short version (2,000 inputs per target).
FUZZ_CASES ?= 1000000
fuzz:
	@mkdir -p target; rm -rf target/fuzz-failures; seed=$${FUZZ_SEED:-$$(date +%s)}; start=$$(date +%s); \
	echo "make fuzz: $(FUZZ_CASES) inputs per target, seed $$seed"; \
	status=0; FUZZ_CASES=$(FUZZ_CASES) FUZZ_SEED=$$seed cargo test --profile fuzz --test fuzz -- \
	  --nocapture --test-threads=2 > target/fuzz.log 2>&1 || status=$$?; \
	grep -E '^fuzz |panicked|failed:|minimal input' target/fuzz.log | cut -c1-400 || true; \
	echo "make fuzz: $$(( $$(date +%s) - start )) s in all (log: target/fuzz.log)"; \
	exit $$status

# The experiment statistics' simulations at full fidelity (every request drawn, log-normal
# latency; release build): 1,000 A/A days at a 25 % and a 5 % split, looked at every minute,
# sequential vs naive fixed-horizon, plus the power check. `cargo test` runs a faster version.
# The fleet at scale (issue 14): 1, 10, 100 and 1,000 isolates for a simulated day on simulated
# Workers KV and on the Durable Object hub, printing the README "Scale" table (~7 min on 2
# cores). `cargo test` runs a 3-hour, 1-and-10-isolate version with the goals that must hold.
simulate:
	SIM_FULL=1 cargo test --profile simulate --test native scale::fleet_at_scale -- --nocapture --test-threads=1

aa:
	AA_PER_REQUEST=1 cargo test --release --test native experiment_aa -- --nocapture --test-threads=1
	AA_PER_REQUEST=1 AA_TREATMENT_SHARE=0.05 cargo test --release --test native experiment_aa aa_false_positive -- --nocapture

# Re-generate tests/reference/experiment.json (scipy / statsmodels / mpmath, pinned versions).
STATS_VENV := $(HOME)/.cache/cmo-edge-router/stats-venv
reference:
	test -x $(STATS_VENV)/bin/python || python3 -m venv $(STATS_VENV)
	$(STATS_VENV)/bin/pip install -q -r scripts/reference/requirements.txt
	$(STATS_VENV)/bin/python scripts/reference/experiment_reference.py

clean:
	rm -rf build www/pkg .wrangler target
