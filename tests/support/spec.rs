//! The golden-spec driver, shared by the native suite (`tests/native/spec.rs`) and the wasm
//! suites (`tests/wasm/common.rs`, through the preview exports), so browser and edge are
//! checked against the very same files by the very same judge.
//!
//! A spec file is `{"cases": [case, ...]}`; a case is
//! `{"name", "config": {VAR: value}, "overrides": {...} | null, "version": n, "state": RouteState,
//!   "request": RouteRequestDoc, "expect": {...}}`.
//! Only the fields present in `expect` are checked: `upstream`, `reason`, `arm`, `position`
//! (percentage number), `rule` (string or null), `query_type`, `in_experiment`, `probe`,
//! `config_version`, `problems` (list of `VARIABLE` or `VARIABLE[index]`, order-insensitive,
//! exact), and `config` (an object of serialized-config fields, dotted paths allowed, e.g.
//! `"breaker.enabled"`).

use cmo_edge_router::core::classify::classify;
use cmo_edge_router::core::config::{load, Problem};
use cmo_edge_router::core::decide::{decide, RouteRequestDoc, RouteState};
use serde::Deserialize;
use serde_json::{Map, Value};

/// One spec case's inputs, as the runner receives them.
pub struct SpecInput<'a> {
    pub vars: &'a Map<String, Value>,
    pub overrides: Option<&'a Map<String, Value>>,
    pub version: u64,
    /// `RouteState` JSON (`null` = default).
    pub state: &'a Value,
    /// `RouteRequest` JSON (`null` = default).
    pub request: &'a Value,
}

/// What a runner produced: the decision in its public JSON shape (the `Decision`'s
/// serialization plus the query's `query_type`, as the preview's `decide` export returns it),
/// the problem keys (`VAR` / `VAR[i]`) and the effective config as JSON.
pub struct SpecOutcome {
    pub decision: Value,
    pub problems: Vec<String>,
    pub config: Value,
}

/// The native runner: `config::load` + `decide` called directly.
#[allow(dead_code)] // the wasm suites use only the runner-independent judge
pub fn native_run(input: &SpecInput<'_>) -> Result<SpecOutcome, String> {
    let state: RouteState = match input.state {
        Value::Null => RouteState::default(),
        v => RouteState::deserialize(v).map_err(|e| format!("state: {e}"))?,
    };
    let request: RouteRequestDoc = match input.request {
        Value::Null => RouteRequestDoc::default(),
        v => RouteRequestDoc::deserialize(v).map_err(|e| format!("request: {e}"))?,
    };
    let loaded = load(input.vars, input.overrides, input.version);
    let decision = decide(&loaded.config, &state, &request.as_request());
    let mut decision = serde_json::to_value(&decision).map_err(|e| e.to_string())?;
    if let Some(d) = decision.as_object_mut() {
        d.insert(
            "query_type".into(),
            serde_json::to_value(classify(&request.query)).map_err(|e| e.to_string())?,
        );
    }
    Ok(SpecOutcome {
        decision,
        problems: loaded.problems.iter().map(Problem::key).collect(),
        config: serde_json::to_value(&loaded.config).map_err(|e| e.to_string())?,
    })
}

/// Checks one case natively; `Err` lists every mismatch.
#[allow(dead_code)]
pub fn check_spec_case(case: &Value) -> Result<(), String> {
    check_spec_case_with(case, &native_run)
}

/// Checks one case with any runner — natively, or through the wasm preview exports — so the
/// same driver judges every layer. `Err` lists every mismatch.
pub fn check_spec_case_with(
    case: &Value,
    run: &dyn Fn(&SpecInput<'_>) -> Result<SpecOutcome, String>,
) -> Result<(), String> {
    let name = case
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    let fail = |msg: String| format!("{name}: {msg}");
    let empty = Map::new();
    let vars = match case.get("config") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err(fail("config must be an object".into())),
    };
    let overrides = match case.get("overrides") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(fail("overrides must be an object or null".into())),
    };
    let expect = case
        .get("expect")
        .and_then(Value::as_object)
        .ok_or_else(|| fail("missing expect object".into()))?;
    let input = SpecInput {
        vars,
        overrides,
        version: case.get("version").and_then(Value::as_u64).unwrap_or(0),
        state: case.get("state").unwrap_or(&Value::Null),
        request: case.get("request").unwrap_or(&Value::Null),
    };
    let out = run(&input).map_err(fail)?;
    let got = &out.decision;

    let mut errors = Vec::new();
    for (field, want) in expect {
        match field.as_str() {
            "upstream" | "reason" | "arm" | "rule" | "query_type" | "in_experiment" | "probe"
            | "config_version" => {
                let g = got.get(field).unwrap_or(&Value::Null);
                if !json_eq(g, want) {
                    errors.push(format!("{field}: got {g}, want {want}"));
                }
            }
            "position" => {
                let hundredths = |v: Option<&Value>| {
                    v.and_then(Value::as_f64)
                        .map(|w| (w * 100.0).round() as i64)
                };
                if hundredths(got.get("position")) != hundredths(Some(want)) {
                    errors.push(format!(
                        "position: got {}, want {want}",
                        got.get("position").unwrap_or(&Value::Null)
                    ));
                }
            }
            "problems" => {
                let mut g = out.problems.clone();
                let mut w: Vec<String> = want
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                g.sort();
                w.sort();
                if g != w {
                    errors.push(format!("problems: got {g:?}, want {w:?}"));
                }
            }
            "config" => {
                let Some(fields) = want.as_object() else {
                    errors.push("expect.config must be an object".into());
                    continue;
                };
                for (path, w) in fields {
                    let g = path.split('.').try_fold(&out.config, |v, k| v.get(k));
                    if !g.is_some_and(|g| json_eq(g, w)) {
                        errors.push(format!("config.{path}: got {g:?}, want {w}"));
                    }
                }
            }
            other => errors.push(format!("unknown expect field {other:?}")),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fail(errors.join("; ")))
    }
}

/// JSON equality where numbers compare by value: `0` equals `0.0`, as it must once a value
/// has crossed into JavaScript (which has one number type) and back.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Checks every case of a spec document natively; returns the number of cases, or every
/// failure.
#[allow(dead_code)]
pub fn check_spec_file(doc: &Value) -> Result<usize, Vec<String>> {
    check_spec_file_with(doc, &native_run)
}

/// [`check_spec_file`] with any runner.
pub fn check_spec_file_with(
    doc: &Value,
    run: &dyn Fn(&SpecInput<'_>) -> Result<SpecOutcome, String>,
) -> Result<usize, Vec<String>> {
    let Some(cases) = doc.get("cases").and_then(Value::as_array) else {
        return Err(vec!["spec file has no \"cases\" array".into()]);
    };
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check_spec_case_with(c, run).err())
        .collect();
    if failures.is_empty() {
        Ok(cases.len())
    } else {
        Err(failures)
    }
}
