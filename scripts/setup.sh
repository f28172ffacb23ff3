#!/usr/bin/env bash
# Installs every tool `make test` and `make dev` need, from the package registries only
# (crates.io, npm, Debian). Idempotent: a tool whose version already matches is skipped, so a
# second run costs seconds. Version pins must move together; see docs/toolchain.md.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

RUST_VERSION=1.95.0            # must equal rust-toolchain.toml's channel
say() { echo "setup: $*"; }

# The pinned toolchain, before anything runs cargo or rustup inside the repository (where
# rust-toolchain.toml selects it). Machines of this kind have only `stable` and cannot download
# another toolchain; when stable *is* the pinned version, name it so: rustup treats a toolchain
# directory called 1.95.0-<host> as that toolchain (`rustup toolchain link` refuses official
# names). Everything here runs from / so the repository's toolchain file is not consulted yet.
ensure_toolchain() (
  cd /
  local home host
  home="${RUSTUP_HOME:-$HOME/.rustup}"
  host="$(rustc +stable -vV 2>/dev/null | sed -n 's/^host: //p')"
  if rustup run "$RUST_VERSION" rustc --version >/dev/null 2>&1; then
    say "rust $RUST_VERSION ok"
  elif [ -n "$host" ] && rustc +stable --version 2>/dev/null | grep -q "^rustc $RUST_VERSION "; then
    say "naming the stable toolchain $RUST_VERSION (it is that version)"
    ln -sfn "stable-$host" "$home/toolchains/$RUST_VERSION-$host"
    rustup run "$RUST_VERSION" rustc --version >/dev/null
  else
    say "installing rust $RUST_VERSION (needs static.rust-lang.org)"
    rustup toolchain install "$RUST_VERSION" --profile minimal \
      --component clippy --component rustfmt --target wasm32-unknown-unknown
  fi
)
ensure_toolchain
cd "$repo"

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=0.2.130   # must equal the wasm-bindgen pin in Cargo.toml / Cargo.lock
WASM_PACK_VERSION=0.15.1

start=$(date +%s)
# One shared target dir lets the three cargo installs reuse each other's compiled deps.
export CARGO_TARGET_DIR="${SETUP_CARGO_TARGET_DIR:-$HOME/.cache/cmo-edge-router/cargo-install}"
SUDO=""; if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

has_version() { # has_version <cmd> <version>
  command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -qF "$2"
}

# Rust: the wasm target and the lint/format components.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding rust target wasm32-unknown-unknown"; rustup target add wasm32-unknown-unknown
fi
for c in clippy rustfmt; do
  if ! rustup component list --installed | grep -q "^$c"; then rustup component add "$c"; fi
done

# Cargo-installed tools. (The npm wasm-pack and worker-build's own downloader fetch binaries
# from outside the registries and fail here, so these are built from crates.io.)
if has_version wasm-bindgen "$WASM_BINDGEN_VERSION"; then say "wasm-bindgen $WASM_BINDGEN_VERSION ok"; else
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # Not --locked: its lockfile asks for a webpki-roots version the registry mirror lacks.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi
if has_version worker-build "$WORKER_BUILD_VERSION"; then say "worker-build $WORKER_BUILD_VERSION ok"; else
  say "installing worker-build $WORKER_BUILD_VERSION"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked --force
fi
if has_version wasm-pack "$WASM_PACK_VERSION"; then say "wasm-pack $WASM_PACK_VERSION ok"; else
  say "installing wasm-pack $WASM_PACK_VERSION"
  cargo install wasm-pack --version "$WASM_PACK_VERSION" --locked --force
fi

# Debian Chromium + ChromeDriver for the browser tests (never a downloaded browser build).
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  say "chromium $(chromium --version 2>/dev/null | awk '{print $2}') ok"
else
  say "installing chromium + chromium-driver (apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# npm packages (wrangler, miniflare, binaryen, playwright-core, OpenFeature clients, and the
# flag libraries `make bench` compares against: unleash-client, GrowthBook, flagd-core), exactly
# as locked. A stamp of the lockfile's hash makes the second run a no-op.
stamp=node_modules/.setup-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then say "npm packages ok"
elif [ -L node_modules ]; then
  # A shared install (a worktree linking another checkout's packages): `npm ci` here would
  # empty the linked directory for everyone using it. Use it as it is.
  say "node_modules links to $(readlink node_modules), installed for another lockfile; not reinstalling through the link"
else
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

say "done in $(( $(date +%s) - start ))s"
