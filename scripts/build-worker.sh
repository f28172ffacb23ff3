#!/usr/bin/env bash
# Builds the Worker bundle (build/index.js + wasm) with worker-build, pointing it at the
# locally installed wasm-bindgen and npm binaryen so it never tries to download them.
# WORKER_OPT=0 skips wasm-opt (fast dev builds); the default is a release build with wasm-opt.
set -euo pipefail
cd "$(dirname "$0")/.."
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-wasm-bindgen}"
if [ "${WORKER_OPT:-1}" = 0 ]; then
  exec worker-build --release --no-opt
fi
export WASM_OPT_BIN="${WASM_OPT_BIN:-$PWD/node_modules/.bin/wasm-opt}"
exec worker-build --release
