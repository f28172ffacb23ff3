//! wasm-bindgen exports of the core for the browser preview page (`www/`) and Node.
//!
//! Why a separate, thin module: the page must compute exactly what the worker computes, so it
//! calls the same core functions; this file only converts plain JS values in and out
//! (serde-wasm-bindgen) and turns every error into a JS `Error` with a message — nothing here
//! may panic, because a panic in wasm poisons the whole module instance.

use crate::core::cohort;
use wasm_bindgen::prelude::*;

/// The user's position on the rollout line in `[0, 100)` with 0.01 resolution (DESIGN §2).
#[wasm_bindgen]
pub fn bucket(salt: &str, key: &str) -> f64 {
    cohort::position(salt, key).percent()
}

/// The raw murmur3 hash (`murmur3_x86_32(salt + ":" + key, 0)`), for cross-checking other tools.
#[wasm_bindgen(js_name = hashKey)]
pub fn hash_key(salt: &str, key: &str) -> u32 {
    cohort::hash(salt, key)
}

/// Whether `key` is in a rollout of `percentage` (0–100, 0.01 resolution).
#[wasm_bindgen(js_name = inRollout)]
pub fn in_rollout(salt: &str, key: &str, percentage: f64) -> Result<bool, JsError> {
    let pct = cohort::Percent::from_percent(percentage).ok_or_else(|| {
        JsError::new(&format!("percentage must be a number in [0, 100], got {percentage}"))
    })?;
    Ok(cohort::in_rollout(cohort::position(salt, key), pct))
}

/// The crate version this build came from.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
