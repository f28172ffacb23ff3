//! Edge router for LLM backends: decides, per chat request, whether LightRAG or Perplexity
//! answers the Clinical Metabolomics Oracle, and moves users over safely.
//!
//! The crate is split so the logic worth testing never depends on a runtime:
//! - [`core`]: pure Rust. Configuration, hashing, routing, resilience, scoring, statistics.
//!   Time and randomness are arguments; no clock, no I/O, no `JsValue`.
//! - `edge` (wasm32 + feature `edge`): the Cloudflare Worker handlers, KV and upstream I/O.
//! - `preview` (wasm32 without `edge`): wasm-bindgen exports of the core for the browser page and Node.

pub mod core;

#[cfg(all(target_arch = "wasm32", feature = "edge"))]
mod edge;

// The preview exports go only into the browser build (`--no-default-features`): the Worker
// never calls them, and leaving them out keeps the Worker bundle smaller.
#[cfg(all(target_arch = "wasm32", not(feature = "edge")))]
pub mod preview;
