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

// ---- golden routing specs through the preview exports ------------------------------------
// The same spec files and the same judge (`tests/support/spec.rs`, `check_spec_file_with`) as
// the native `tests/native/spec.rs`; only the runner differs: here every case crosses the JS
// boundary exactly as the browser page calls it (`loadConfig`, `decide` with JS objects).

use spec_driver::{check_spec_file_with, SpecInput, SpecOutcome};
use wasm_bindgen::JsValue;

const SPEC_FILES: &[(&str, &str)] = &[
    ("cohorts.json", include_str!("../spec/cohorts.json")),
    ("config.json", include_str!("../spec/config.json")),
    ("pipeline.json", include_str!("../spec/pipeline.json")),
    ("rules.json", include_str!("../spec/rules.json")),
];

fn to_js(v: &serde_json::Value) -> JsValue {
    use serde::Serialize;
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).unwrap()
}

fn from_js(v: JsValue) -> serde_json::Value {
    serde_wasm_bindgen::from_value(v).unwrap()
}

fn js_err(e: JsValue) -> String {
    format!("{e:?}")
}

/// Runs a case through the preview exports only.
fn preview_run(input: &SpecInput<'_>) -> Result<SpecOutcome, String> {
    let config = to_js(&serde_json::json!({
        "vars": input.vars,
        "overrides": input.overrides,
        "version": input.version,
    }));
    let state = match input.state {
        serde_json::Value::Null => JsValue::UNDEFINED,
        s => to_js(s),
    };
    let request = match input.request {
        serde_json::Value::Null => to_js(&serde_json::json!({})),
        r => to_js(r),
    };
    let loaded = from_js(preview::load_config(config.clone()).map_err(js_err)?);
    let decision = from_js(preview::decide(config, request, state).map_err(js_err)?);
    let problems = loaded["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| match p.get("index").and_then(|i| i.as_u64()) {
            Some(i) => format!("{}[{i}]", p["variable"].as_str().unwrap()),
            None => p["variable"].as_str().unwrap().to_string(),
        })
        .collect();
    Ok(SpecOutcome { decision, problems, config: loaded["config"].clone() })
}

#[wasm_bindgen_test]
fn golden_routing_specs_through_preview_exports() {
    let mut total = 0;
    let mut failures = Vec::new();
    for (name, text) in SPEC_FILES {
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        match check_spec_file_with(&doc, &preview_run) {
            Ok(n) => total += n,
            Err(f) => failures.extend(f.into_iter().map(|m| format!("{name}: {m}"))),
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(total >= 100, "only {total} spec cases ran");
}

#[wasm_bindgen_test]
fn preview_errors_are_js_errors_not_panics() {
    assert!(preview::decide(JsValue::from_str("nope"), to_js(&serde_json::json!({})), JsValue::UNDEFINED).is_err());
    assert!(preview::decide(JsValue::UNDEFINED, JsValue::UNDEFINED, JsValue::UNDEFINED).is_err());
    assert!(preview::decide(
        JsValue::UNDEFINED,
        to_js(&serde_json::json!({"key": 5})),
        JsValue::UNDEFINED
    )
    .is_err());
    assert!(preview::simulate(JsValue::UNDEFINED, JsValue::from_f64(-1.0), None, JsValue::UNDEFINED).is_err());
}

#[wasm_bindgen_test]
fn simulate_through_preview_matches_rollout_share() {
    let cfg = to_js(&serde_json::json!({
        "LIGHTRAG_INTEGRATION_ENABLED": "true",
        "LIGHTRAG_ROLLOUT_PERCENTAGE": 25
    }));
    let sim = from_js(preview::simulate(cfg, JsValue::from_f64(20_000.0), None, JsValue::UNDEFINED).unwrap());
    let share = sim["lightrag_share"].as_f64().unwrap();
    assert!((share - 0.25).abs() < 0.01, "share {share}");
    assert_eq!(sim["histogram"].as_array().unwrap().len(), 100);
}

#[wasm_bindgen_test]
fn prepared_route_matches_route_and_decide() {
    let cfg = to_js(&serde_json::json!({
        "LIGHTRAG_INTEGRATION_ENABLED": "true",
        "LIGHTRAG_ROLLOUT_PERCENTAGE": "30",
        "LIGHTRAG_ENABLE_CONDITIONAL_ROUTING": "true",
        "LIGHTRAG_ROUTING_RULES": [
            {"name": "news", "when": {"query_type": "temporal"}, "action": "perplexity"},
            {"name": "graph", "when": {"keywords_any": ["pathway"]}, "action": "lightrag"}
        ]
    }));
    for query in [
        "What are the latest 2025 guidelines on newborn screening?",
        "Which pathway links TMAO to atherosclerosis?",
        "How is lactate measured in plasma samples?",
    ] {
        let mut router = preview::Router::new(cfg.clone(), JsValue::UNDEFINED).unwrap();
        router.prepare_query(query);
        for i in 0..300 {
            let key = format!("user-{i}");
            let packed = router.route(&key, &JsValue::from_str(query));
            assert_eq!(router.route_prepared(&key), packed, "{key} / {query}");
            let d = from_js(
                preview::decide(
                    cfg.clone(),
                    to_js(&serde_json::json!({"key": key, "query": query})),
                    JsValue::UNDEFINED,
                )
                .unwrap(),
            );
            assert_eq!(packed & 1 == 1, d["upstream"] == "lightrag", "{key} / {query}");
            let pos = (d["position"].as_f64().unwrap() * 100.0).round() as u32;
            assert_eq!(packed >> 8, pos);
        }
    }
}

#[wasm_bindgen_test]
fn route_reads_the_query_only_when_a_rule_can() {
    let plain = to_js(&serde_json::json!({
        "LIGHTRAG_INTEGRATION_ENABLED": "true",
        "LIGHTRAG_ROLLOUT_PERCENTAGE": "40"
    }));
    let ruled = to_js(&serde_json::json!({
        "LIGHTRAG_INTEGRATION_ENABLED": "true",
        "LIGHTRAG_ROLLOUT_PERCENTAGE": "40",
        "LIGHTRAG_ENABLE_CONDITIONAL_ROUTING": "true",
        "LIGHTRAG_ROUTING_RULES": [{"name": "news", "when": {"query_type": "temporal"}, "action": "perplexity"}]
    }));
    let news = JsValue::from_str("What are the latest 2025 guidelines?");
    let plain = preview::Router::new(plain, JsValue::UNDEFINED).unwrap();
    let ruled = preview::Router::new(ruled, JsValue::UNDEFINED).unwrap();
    let mut ruled_out = 0;
    for i in 0..200 {
        let key = format!("user-{i}");
        // Without rules the query cannot matter: a string, undefined or a number decide alike.
        let p = plain.route(&key, &news);
        assert_eq!(plain.route(&key, &JsValue::UNDEFINED), p, "{key}");
        assert_eq!(plain.route(&key, &JsValue::from_f64(7.0)), p, "{key}");
        // With a query_type rule the text is read: the temporal question goes to Perplexity by
        // rule (reason 5), the missing query falls through to the hash like `plain`.
        let r = ruled.route(&key, &news);
        assert_eq!((r & 1, (r >> 1) & 7), (0, 5), "{key}");
        assert_eq!(ruled.route(&key, &JsValue::UNDEFINED), p, "{key}");
        ruled_out += usize::from(p & 1 == 1);
    }
    assert!(ruled_out > 40 && ruled_out < 120, "{ruled_out} of 200 in the 40 % rollout");
}

// ---- the operator's console exports ------------------------------------------------------

const BREAKER_REPLAY: &str = include_str!("../spec/breaker/replay.json");

fn field_of(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &JsValue::from_str("field")).unwrap().as_string().unwrap_or_default()
}

#[wasm_bindgen_test]
fn raising_the_rollout_moves_nobody_out() {
    let at = |p: &str| to_js(&serde_json::json!({"LIGHTRAG_INTEGRATION_ENABLED": "true", "LIGHTRAG_ROLLOUT_PERCENTAGE": p}));
    let m = from_js(preview::diff_configs(at("10"), at("20"), JsValue::from_f64(20_000.0), JsValue::UNDEFINED).unwrap());
    assert_eq!(m["lightrag_to_perplexity"]["count"], 0);
    let moved = m["perplexity_to_lightrag"]["count"].as_u64().unwrap();
    assert!((1800..=2200).contains(&moved), "{moved}");
    assert_eq!(m["perplexity_to_lightrag"]["sample"].as_array().unwrap().len(), 10);
    let back = from_js(preview::diff_configs(at("20"), at("10"), JsValue::from_f64(20_000.0), JsValue::UNDEFINED).unwrap());
    assert_eq!(back["lightrag_to_perplexity"]["count"].as_u64().unwrap(), moved);
}

#[wasm_bindgen_test]
fn plan_errors_name_the_field() {
    let e = preview::plan_timeline(to_js(&serde_json::json!({"strategy": "linear", "increment": 0}))).unwrap_err();
    assert_eq!(field_of(&e), "increment");
    let e = preview::plan_timeline(JsValue::from_str("{")).unwrap_err();
    assert_eq!(field_of(&e), "body");
    let ok = from_js(preview::plan_timeline(to_js(&serde_json::json!({"strategy": "canary"}))).unwrap());
    assert_eq!(ok["timeline"]["completes_at_ms"], 180 * 60_000);
    assert_eq!(ok["timeline"]["steps"][0]["awaits_approval"], true);
    let stored = from_js(preview::stored_plan_timeline(to_js(&serde_json::json!({"strategy": "canary", "stages": ok["stages"], "safety": ok["safety"]}))).unwrap());
    assert_eq!(stored["timeline"], ok["timeline"]);
}

#[wasm_bindgen_test]
fn breaker_replay_through_the_export_matches_the_pinned_spec() {
    let spec: serde_json::Value = serde_json::from_str(BREAKER_REPLAY).unwrap();
    let lines: Vec<&str> = spec["lines"].as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect();
    let r = from_js(preview::breaker_replay(to_js(&spec["config"]), JsValue::from_str(&lines.join("\n")), JsValue::UNDEFINED).unwrap());
    let got: Vec<serde_json::Value> = r["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| serde_json::json!({"at_ms": t["at_ms"], "from": t["from"], "to": t["to"], "cause": t["cause"], "open_until_ms": t["open_until_ms"]}))
        .collect();
    assert_eq!(serde_json::Value::Array(got), spec["expect"]["transitions"]);
    let e = preview::breaker_replay(JsValue::UNDEFINED, JsValue::from_str("1 200\nsoon 503"), JsValue::UNDEFINED).unwrap_err();
    assert_eq!(field_of(&e), "line 2");
    let calls = to_js(&serde_json::json!([{"at_ms": 0, "status": 503}, {"at_ms": 1, "kind": "network_error"}, {"at_ms": 2, "status": 429}]));
    let r = from_js(preview::breaker_replay(JsValue::UNDEFINED, calls, JsValue::UNDEFINED).unwrap());
    assert_eq!(r["transitions"][0]["at_ms"], 2);
    let gen = from_js(preview::breaker_replay(JsValue::UNDEFINED, to_js(&serde_json::json!({"duration_s": 600, "error_rate": 1.0})), JsValue::UNDEFINED).unwrap());
    assert_eq!(gen["transitions"][0]["cause"], "consecutive_failures");
    assert_eq!(gen["end_ms"], 600_000);
}

#[wasm_bindgen_test]
fn live_variables_load_back_to_the_same_config() {
    let vars = to_js(&serde_json::json!({"LIGHTRAG_INTEGRATION_ENABLED": "true", "LIGHTRAG_ROLLOUT_PERCENTAGE": "33.3", "LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "45"}));
    let loaded = from_js(preview::load_config(vars).unwrap());
    let live = from_js(preview::live_variables(to_js(&loaded["config"])).unwrap());
    assert_eq!(live["notes"], serde_json::json!([]));
    let again = from_js(preview::load_config(to_js(&live["variables"])).unwrap());
    assert_eq!(again["config"], loaded["config"]);
    let state = from_js(preview::live_state(to_js(&serde_json::json!({"service_performance": {"circuit_breaker": {"state": "open"}}, "rollout_status": {"rollback_active": false, "quality_gate_closed": false}}))).unwrap());
    assert_eq!(state["state"]["lightrag_breaker"], "open");
    let defaults = from_js(preview::default_variables().unwrap());
    assert_eq!(defaults["LIGHTRAG_ROLLOUT_PERCENTAGE"], 0.0);
}

#[wasm_bindgen_test]
fn decide_many_equals_decide_per_key() {
    let cfg = to_js(&serde_json::json!({"LIGHTRAG_INTEGRATION_ENABLED": "true", "LIGHTRAG_ROLLOUT_PERCENTAGE": "40"}));
    let keys: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let rows = from_js(preview::decide_many(cfg.clone(), to_js(&serde_json::json!(keys)), to_js(&serde_json::json!({"query": "what is lactate"})), JsValue::UNDEFINED).unwrap());
    assert_eq!(rows["summary"]["total"], 200);
    let rows = &rows["rows"];
    for (k, row) in keys.iter().zip(rows.as_array().unwrap()) {
        let d = from_js(preview::decide(cfg.clone(), to_js(&serde_json::json!({"key": k, "query": "what is lactate"})), JsValue::UNDEFINED).unwrap());
        assert_eq!(row["key"], serde_json::json!(k));
        for f in ["upstream", "reason", "arm", "position", "rule", "query_type"] {
            assert_eq!(row[f], d[f], "{k} {f}");
        }
    }
}
