//! wasm tests of the preview exports, run in Node: `wasm-pack test --node -- --test wasm_node`.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

#[path = "support/spec.rs"]
mod spec_driver;

include!("wasm/common.rs");
