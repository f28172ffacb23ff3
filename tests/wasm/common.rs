// Shared body of the wasm test suites (`tests/wasm_node.rs` runs it in Node,
// `tests/wasm_browser.rs` in headless Chromium). It calls the *preview exports* — the exact
// functions the browser page calls — against the same pinned vectors the native tests use, so
// the browser and the edge cannot disagree.

use cmo_edge_router::preview;
use wasm_bindgen_test::*;

const VECTORS: &str = include_str!("../vectors/cohort.json");

#[derive(serde::Deserialize)]
struct Vector {
    salt: String,
    key: String,
    hash: u32,
    position: f64,
}

fn vectors() -> Vec<Vector> {
    let doc: serde_json::Value = serde_json::from_str(VECTORS).unwrap();
    serde_json::from_value(doc["vectors"].clone()).unwrap()
}

#[wasm_bindgen_test]
fn bucket_matches_pinned_vectors() {
    let vs = vectors();
    assert!(vs.len() >= 20);
    for v in vs {
        assert_eq!(preview::hash_key(&v.salt, &v.key), v.hash, "hash of {:?}:{:?}", v.salt, v.key);
        assert_eq!(preview::bucket(&v.salt, &v.key), v.position, "position of {:?}", v.key);
    }
}

#[wasm_bindgen_test]
fn rollout_membership_is_monotone_and_bounded() {
    for i in 0..500 {
        let key = format!("user-{i}");
        assert!(!preview::in_rollout("cmo_lightrag_2025", &key, 0.0).unwrap());
        assert!(preview::in_rollout("cmo_lightrag_2025", &key, 100.0).unwrap());
        let pos = preview::bucket("cmo_lightrag_2025", &key);
        let mut was_in = false;
        for r in [0.25, 1.0, 5.0, 10.0, 25.0, 50.0, 75.0, 99.0, 99.99] {
            let now_in = preview::in_rollout("cmo_lightrag_2025", &key, r).unwrap();
            assert!(!was_in || now_in, "{key} evicted when raising to {r}");
            assert_eq!(now_in, pos < r, "{key} at {pos} vs {r}");
            was_in = now_in;
        }
    }
}

#[wasm_bindgen_test]
fn bad_percentage_is_an_error_not_a_panic() {
    assert!(preview::in_rollout("s", "k", f64::NAN).is_err());
    assert!(preview::in_rollout("s", "k", 100.5).is_err());
    assert!(preview::in_rollout("s", "k", -1.0).is_err());
}
