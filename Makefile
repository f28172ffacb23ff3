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

.PHONY: help setup test dev build build-dev preview fmt lint test-native test-wasm-node \
        test-wasm-chrome test-worker test-browser bench clean

help:
	@echo "make dev   - build, start demo upstreams + the router under workerd (wrangler dev)"
	@echo "make test  - install tools if needed, then run every test layer"

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

# The preview is built at opt-level 3 (the Worker stays at "z" for bundle size): per-call speed
# matters more in the page's simulation loops, and it costs only ~10 % in size.
preview:
	CARGO_PROFILE_RELEASE_OPT_LEVEL=3 wasm-pack build --target web --out-dir www/pkg --out-name cmo_edge_router --no-pack -- --no-default-features
	@rm -f www/pkg/.gitignore

# The preview build too: tests/node/front_door checks the page's decide() against the worker.
test-worker: build preview
	node --test --test-concurrency=1 tests/mock/ tests/node/

test-browser: preview
	node --test tests/browser/

test: setup
	@start=$$(date +%s); \
	for t in fmt lint test-native test-wasm-node test-wasm-chrome test-worker test-browser; do \
	  echo "==> make $$t"; s=$$(date +%s); \
	  $(MAKE) --no-print-directory $$t; \
	  echo "<== make $$t ok ($$(( $$(date +%s) - s ))s)"; \
	done; \
	echo "make test: all layers passed in $$(( $$(date +%s) - start ))s"

dev: setup build-dev preview
	bash scripts/dev.sh

bench: setup
	cargo bench --bench routing --bench resilience -- --warm-up-time 1 --measurement-time 3

clean:
	rm -rf build www/pkg .wrangler target
