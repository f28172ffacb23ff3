#!/usr/bin/env bash
# Builds the Rust floor's variants (src/lib.rs), each its own worker bundle in
# benches/floor/build/<variant>/ (index.js + wasm), as scripts/build-worker.sh builds the router:
# worker-build with the local wasm-bindgen and the npm binaryen's wasm-opt, never a download.
#
#   bash benches/floor/build.sh [variant…]     (default: every variant below)
#
# Variants and their cargo features (src/lib.rs says what each does): shim, pass, lean, sync,
# translate (pass + json), lean-translate (lean + json), sync-translate (sync + json),
# lean-pump (lean + pump), lean-translate-pump (lean + json + pump).
#
# Needs the repository's node_modules (make setup). WORKER_OPT=0 skips wasm-opt.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="${WASM_BINDGEN_BIN:-wasm-bindgen}"
export WASM_OPT_BIN="${WASM_OPT_BIN:-$root/node_modules/.bin/wasm-opt}"
opt=()
if [ "${WORKER_OPT:-1}" = 0 ]; then opt=(--no-opt); fi
variants=("$@")
if [ ${#variants[@]} = 0 ]; then variants=(shim pass lean sync translate lean-translate sync-translate lean-pump lean-translate-pump); fi
for v in "${variants[@]}"; do
  case "$v" in
    shim | pass | lean | sync) features="$v" ;;
    translate) features="pass json" ;;
    lean-translate) features="lean json" ;;
    sync-translate) features="sync json" ;;
    lean-pump) features="lean pump" ;;
    lean-translate-pump) features="lean json pump" ;;
    *) echo "unknown variant: $v" >&2; exit 2 ;;
  esac
  echo "==> rust floor: $v ($features)"
  worker-build --release "${opt[@]}" --out-dir "build/$v" --features "$features"
done
