//! The Rust/wasm floor: the smallest workers-rs workers that do what the bare JavaScript worker
//! of `benches/edge_latency.mjs` (`BARE`) does — POST the client's body to
//! `PERPLEXITY_BASE_URL/chat/completions` and answer with Perplexity's status and body (a
//! streamed answer piped through) — so that `benches/rust_floor.mjs` can measure what any Rust
//! worker adds over that JavaScript before it routes anything (docs/performance.md, "Eighth
//! round: the Rust floor"). One variant per build, chosen by a cargo feature (`build.sh`
//! builds each into `build/<variant>/`):
//!
//! - [`shim`]: the bare worker's own JavaScript behind the wasm export (nothing crosses into
//!   Rust): what the bundle's glue costs on its own.
//! - [`pass`]: the idiomatic workers-rs worker (`#[event(fetch)]`, `worker::Fetch`).
//! - [`lean`]: the same through the router's tricks (its own executor, one JS call per step,
//!   the answer handed back as one string).
//! - [`sync`]: the bare worker's steps awaited in JS, Rust called twice synchronously with the
//!   texts: the least a worker with Rust in the request's path does.
//! - `translate` (`pass` with the `json` feature) and `lean-translate` (`lean` with it): plus
//!   the JSON work any translating router does on the way ([`translate`]: parse the client's
//!   JSON, write Perplexity's, parse the answer, write OpenAI's).
//! - `lean-pump` and `lean-translate-pump` (`lean` with the `pump` feature): a streamed answer
//!   read through Rust chunk by chunk ([`pump`]), each event translated with `json`.

#[cfg(all(target_arch = "wasm32", feature = "lean"))]
mod lean;
#[cfg(all(target_arch = "wasm32", feature = "pass"))]
mod pass;
#[cfg(all(target_arch = "wasm32", feature = "pump"))]
mod pump;
#[cfg(all(target_arch = "wasm32", feature = "shim"))]
mod shim;
#[cfg(all(target_arch = "wasm32", feature = "sync"))]
mod sync;
#[cfg(all(
    target_arch = "wasm32",
    any(feature = "pass", feature = "lean", feature = "sync")
))]
mod translate;
#[cfg(all(target_arch = "wasm32", feature = "pass"))]
mod upstream;
