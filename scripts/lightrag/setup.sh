#!/usr/bin/env bash
# Installs the real LightRAG server (PyPI `lightrag-hku[api]`, pinned) into a venv and provides
# tiktoken's BPE files offline, so `make test-lightrag` can check the router and the mock
# upstreams against the service they stand in for. Idempotent: a second run costs a second.
#
# Why the tiktoken step: lightrag-server tokenizes with tiktoken, which downloads its encoding
# files on first use (fails without internet). The `tiktoken-rs` crate on crates.io ships the same
# official files (tiktoken checks their sha256), so they are taken from there and stored under the
# names tiktoken's cache uses: sha1(<download url>).
#
# Prints the two paths the harness needs (also the defaults it assumes):
#   LIGHTRAG_VENV=...  TIKTOKEN_CACHE_DIR=...
set -euo pipefail

LIGHTRAG_VERSION=1.5.7
TIKTOKEN_RS_VERSION=0.12.1
CACHE="${CMO_CACHE_DIR:-$HOME/.cache/cmo-edge-router}"
VENV="${LIGHTRAG_VENV:-$CACHE/lightrag-venv}"
TIKTOKEN_DIR="${TIKTOKEN_CACHE_DIR:-$CACHE/tiktoken}"
PYTHON="${PYTHON:-python3}"

say() { echo "lightrag-setup: $*"; }
start=$(date +%s)

# 1. The server, in its own venv.
installed=""
if [ -x "$VENV/bin/python" ]; then
  installed=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("lightrag-hku"))' 2>/dev/null || true)
fi
if [ "$installed" = "$LIGHTRAG_VERSION" ] && [ -x "$VENV/bin/lightrag-server" ]; then
  say "lightrag-hku $LIGHTRAG_VERSION ok ($VENV)"
else
  say "installing lightrag-hku[api]==$LIGHTRAG_VERSION into $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "lightrag-hku[api]==$LIGHTRAG_VERSION"
fi

# 2. tiktoken's encoding files, from the tiktoken-rs crate.
base_url="https://openaipublic.blob.core.windows.net/encodings"
sha1_of() { printf '%s' "$1" | sha1sum | cut -d' ' -f1; }
need=0
for enc in o200k_base cl100k_base; do
  [ -s "$TIKTOKEN_DIR/$(sha1_of "$base_url/$enc.tiktoken")" ] || need=1
done
if [ "$need" = 0 ]; then
  say "tiktoken files ok ($TIKTOKEN_DIR)"
else
  say "fetching tiktoken-rs $TIKTOKEN_RS_VERSION for its encoding files"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/src"
  cat > "$tmp/Cargo.toml" <<TOML
[package]
name = "tiktoken-files"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
tiktoken-rs = "=$TIKTOKEN_RS_VERSION"
TOML
  echo 'fn main() {}' > "$tmp/src/main.rs"
  (cd "$tmp" && cargo fetch --quiet)
  crate_dir=$(cd "$tmp" && cargo metadata --format-version 1 --quiet \
    | "$VENV/bin/python" -c 'import json,sys; d=json.load(sys.stdin); print(next(p["manifest_path"] for p in d["packages"] if p["name"]=="tiktoken-rs").rsplit("/",1)[0])')
  mkdir -p "$TIKTOKEN_DIR"
  for enc in o200k_base cl100k_base; do
    src=$(find "$crate_dir" -name "$enc.tiktoken" | head -n1)
    [ -n "$src" ] || { echo "lightrag-setup: $enc.tiktoken not found in $crate_dir" >&2; exit 1; }
    cp "$src" "$TIKTOKEN_DIR/$(sha1_of "$base_url/$enc.tiktoken")"
  done
  say "tiktoken files copied to $TIKTOKEN_DIR"
fi

# 3. Prove the files load offline (tiktoken verifies the sha256 of cached files).
TIKTOKEN_CACHE_DIR="$TIKTOKEN_DIR" "$VENV/bin/python" -c '
import tiktoken
for name in ("o200k_base", "cl100k_base"):
    assert tiktoken.get_encoding(name).encode("glucose") , name
'
say "done in $(( $(date +%s) - start ))s"
echo "LIGHTRAG_VENV=$VENV"
echo "TIKTOKEN_CACHE_DIR=$TIKTOKEN_DIR"
