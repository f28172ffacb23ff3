//! wasm tests of the preview exports, run in headless Chromium:
//! `wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver -- --test wasm_browser`.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

#[path = "support/spec.rs"]
mod spec_driver;

include!("wasm/common.rs");
