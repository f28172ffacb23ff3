//! Golden routing spec: every case of every `tests/spec/*.json` file, run through the same
//! driver (`tests/support/spec.rs`) that the preview build runs in Node and Chromium, so the edge
//! and the browser are checked against identical expectations. All failures are reported at
//! once rather than stopping at the first.

use crate::spec_driver::{check_spec_case, check_spec_file};
use serde_json::{json, Value};
use std::path::Path;

fn spec_files() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/spec");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn golden_spec_files() {
    let files = spec_files();
    assert!(files.len() >= 4, "spec files missing: {files:?}");
    let mut total = 0;
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        match check_spec_file(&doc) {
            Ok(n) => total += n,
            Err(errs) => {
                let name = path.file_name().unwrap().to_string_lossy();
                failures.extend(errs.into_iter().map(|e| format!("{name}: {e}")));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(total >= 40, "only {total} cases");
    eprintln!("{total} spec cases passed");
}

#[test]
fn every_reason_is_covered() {
    let mut seen = std::collections::BTreeSet::new();
    for path in spec_files() {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        for case in doc["cases"].as_array().unwrap() {
            if let Some(r) = case["expect"]["reason"].as_str() {
                seen.insert(if r.starts_with("rule:") { "rule" } else { r }.to_string());
            }
        }
    }
    for r in [
        "disabled",
        "forced",
        "rollback",
        "circuit_open",
        "quality_gate",
        "rule",
        "rollout_in",
        "rollout_out",
    ] {
        assert!(seen.contains(r), "no spec case expects reason {r}");
    }
}

/// The driver itself must be able to fail: a wrong expectation is reported, with its field.
#[test]
fn driver_detects_mismatches() {
    let case = json!({
        "name": "deliberately wrong",
        "config": {"LIGHTRAG_INTEGRATION_ENABLED": "true", "LIGHTRAG_ROLLOUT_PERCENTAGE": "100"},
        "request": {"key": "user-42", "query": "hi"},
        "expect": {"upstream": "perplexity", "position": 1.0, "problems": ["X"], "config": {"breaker.enabled": false}}
    });
    let err = check_spec_case(&case).unwrap_err();
    for needle in ["upstream", "position", "problems", "config.breaker.enabled"] {
        assert!(err.contains(needle), "{err}");
    }
    let unknown = json!({"name": "u", "expect": {"upstrem": "lightrag"}});
    assert!(check_spec_case(&unknown)
        .unwrap_err()
        .contains("unknown expect field"));
    assert!(check_spec_case(&json!({"name": "no expect"})).is_err());
    assert!(check_spec_file(&json!({"nope": []})).is_err());
}
