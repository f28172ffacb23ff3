//! Runtime overrides through the admin API (`GET` / `PUT /admin/config`), the part that needs
//! no I/O: the body's shape, the ETag and `If-Match` check, the version bump, and which problems
//! refuse a write.
//!
//! Why pure: these rules decide whether an operator's change is stored, and two operators must
//! never silently overwrite each other — so they are unit-tested natively. The Worker only reads
//! the stored document from KV (never the isolate's cached copy), calls [`apply_put`], and
//! writes what it returns.

use crate::core::config::{self, Config, Loaded, Problem};
use crate::core::store::OverridesDoc;
use serde::Serialize;
use serde_json::{Map, Value};
use std::fmt;

/// The ETag of an override set: its version, quoted (`"v3"`).
pub fn etag(version: u64) -> String {
    format!("\"v{version}\"")
}

/// Whether an `If-Match` header (a list of ETags, weak ones allowed, or `*`) names `version`.
pub fn if_match_allows(header: &str, version: u64) -> bool {
    let want = etag(version);
    header
        .split(',')
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == "*" || t == want)
}

/// Why a `PUT /admin/config` body was refused before looking at its variables (400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    NotJson(String),
    NotAnObject,
    OverridesNotAnObject,
}

impl BodyError {
    /// The error code of the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::NotJson(_) | BodyError::NotAnObject => "malformed_body",
            BodyError::OverridesNotAnObject => "invalid_field",
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::NotJson(e) => write!(f, "request body is not valid JSON ({e})"),
            BodyError::NotAnObject => f.write_str("expected a JSON object of VARIABLE: value"),
            BodyError::OverridesNotAnObject => {
                f.write_str("`overrides` must be an object of VARIABLE: value")
            }
        }
    }
}

/// The override set in a body: `{VARIABLE: value, …}`, or the same wrapped as
/// `{"overrides": {…}}` (what `GET /admin/config` returns under that key).
pub fn parse_body(body: &[u8]) -> Result<Map<String, Value>, BodyError> {
    let parsed: Value =
        serde_json::from_slice(body).map_err(|e| BodyError::NotJson(e.to_string()))?;
    match parsed {
        Value::Object(mut o) if o.len() == 1 && o.contains_key("overrides") => {
            match o.remove("overrides") {
                Some(Value::Object(m)) => Ok(m),
                _ => Err(BodyError::OverridesNotAnObject),
            }
        }
        Value::Object(o) => Ok(o),
        _ => Err(BodyError::NotAnObject),
    }
}

/// One `PUT /admin/config`, with everything it is judged against.
#[derive(Debug, Clone, Copy)]
pub struct Put<'a> {
    /// The wrangler vars the overrides are layered on.
    pub vars: &'a Map<String, Value>,
    /// The override set stored in KV now.
    pub current: &'a OverridesDoc,
    /// The request's `If-Match` header.
    pub if_match: &'a str,
    /// The new override set (it replaces the whole current one).
    pub overrides: &'a Map<String, Value>,
    pub now_ms: u64,
}

/// What a `PUT` comes to.
#[derive(Debug, Clone)]
pub enum PutOutcome {
    /// 412: the set changed since the operator read it.
    Stale { current_etag: String },
    /// 422: values the router refuses, each naming its variable; nothing is stored.
    Rejected(Vec<Problem>),
    /// Store `doc` (its version one above the current one); `loaded` is the config it gives.
    Stored {
        doc: OverridesDoc,
        loaded: Box<Loaded>,
    },
}

/// Judges a `PUT`: the version check first, then every override value. Problems in the vars
/// underneath, and notes about translated values, do not refuse it.
pub fn apply_put(p: &Put<'_>) -> PutOutcome {
    if !if_match_allows(p.if_match, p.current.version) {
        return PutOutcome::Stale {
            current_etag: etag(p.current.version),
        };
    }
    // Saturating: the current version is read from KV, where any value may sit (found by
    // `make fuzz`, target `admin_config_body`). At the maximum the version stops moving; isolates
    // still adopt the new set, since they compare the overrides too.
    let version = p.current.version.saturating_add(1);
    let loaded = config::load(p.vars, Some(p.overrides), version);
    let refused: Vec<Problem> = loaded.override_errors().cloned().collect();
    if !refused.is_empty() {
        return PutOutcome::Rejected(refused);
    }
    PutOutcome::Stored {
        doc: OverridesDoc {
            version,
            overrides: p.overrides.clone(),
            updated_ms: p.now_ms,
        },
        loaded: Box::new(loaded),
    }
}

/// The `GET /admin/config` document: the stored set, its ETag, and the config in effect.
#[derive(Debug, Serialize)]
pub struct ConfigDocument<'a> {
    pub version: u64,
    pub etag: String,
    pub overrides: &'a Map<String, Value>,
    pub updated_ms: u64,
    pub effective: &'a Config,
    pub problems: &'a [Problem],
}

impl ConfigDocument<'_> {
    pub fn new<'a>(doc: &'a OverridesDoc, loaded: &'a Loaded) -> ConfigDocument<'a> {
        ConfigDocument {
            version: doc.version,
            etag: etag(doc.version),
            overrides: &doc.overrides,
            updated_ms: doc.updated_ms,
            effective: &loaded.config,
            problems: &loaded.problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_maximal_stored_version_does_not_overflow() {
        let current = OverridesDoc {
            version: u64::MAX,
            ..OverridesDoc::default()
        };
        let put = Put {
            vars: &Map::new(),
            current: &current,
            if_match: &etag(u64::MAX),
            overrides: &Map::new(),
            now_ms: 1,
        };
        match apply_put(&put) {
            PutOutcome::Stored { doc, .. } => assert_eq!(doc.version, u64::MAX),
            other => panic!("{other:?}"),
        }
    }
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn etags_and_if_match() {
        assert_eq!(etag(3), "\"v3\"");
        assert!(if_match_allows("\"v3\"", 3));
        assert!(if_match_allows("W/\"v3\"", 3));
        assert!(if_match_allows("\"v1\", \"v3\"", 3));
        assert!(if_match_allows("*", 9));
        assert!(!if_match_allows("\"v2\"", 3));
        assert!(!if_match_allows("v3", 3));
    }

    #[test]
    fn body_shapes() {
        let plain = parse_body(br#"{"LIGHTRAG_ROLLOUT_PERCENTAGE": 5}"#).unwrap();
        let wrapped = parse_body(br#"{"overrides": {"LIGHTRAG_ROLLOUT_PERCENTAGE": 5}}"#).unwrap();
        assert_eq!(plain, wrapped);
        assert!(matches!(parse_body(b"{nope"), Err(BodyError::NotJson(_))));
        assert_eq!(parse_body(b"[1]"), Err(BodyError::NotAnObject));
        let e = parse_body(br#"{"overrides": 5}"#).unwrap_err();
        assert_eq!(
            (e.code(), e),
            ("invalid_field", BodyError::OverridesNotAnObject)
        );
    }

    #[test]
    fn a_put_is_checked_versioned_and_judged_by_its_own_values() {
        let vars = map(json!({"LIGHTRAG_ROLOUT_PERCENTAGE": "5"})); // a typo in the vars
        let current = OverridesDoc {
            version: 4,
            ..Default::default()
        };
        let ok = map(json!({"LIGHTRAG_ROLLOUT_PERCENTAGE": 30}));
        let put = |if_match, overrides| Put {
            vars: &vars,
            current: &current,
            if_match,
            overrides,
            now_ms: 1_000,
        };
        // Someone else wrote v4 after this operator read v3.
        match apply_put(&put("\"v3\"", &ok)) {
            PutOutcome::Stale { current_etag } => assert_eq!(current_etag, "\"v4\""),
            other => panic!("{other:?}"),
        }
        // The vars' own typo does not refuse the operator's valid change.
        match apply_put(&put("\"v4\"", &ok)) {
            PutOutcome::Stored { doc, loaded } => {
                assert_eq!((doc.version, doc.updated_ms), (5, 1_000));
                assert_eq!(doc.overrides, ok);
                assert_eq!(loaded.config.version, 5);
                assert_eq!(loaded.config.rollout_percentage.hundredths(), 3000);
                assert_eq!(
                    loaded.problems.len(),
                    1,
                    "the vars' problem is still reported"
                );
            }
            other => panic!("{other:?}"),
        }
        // A window the breaker cannot hold is refused, naming the variable.
        let bad = map(json!({"LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE": 200, "ADMIN_TOKEN": "x"}));
        match apply_put(&put("*", &bad)) {
            PutOutcome::Rejected(p) => {
                let mut keys: Vec<String> = p.iter().map(Problem::key).collect();
                keys.sort();
                assert_eq!(
                    keys,
                    ["ADMIN_TOKEN", "LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE"]
                );
            }
            other => panic!("{other:?}"),
        }
        // The previous service's rule object is accepted, with a note (not a refusal).
        let legacy = map(json!({"LIGHTRAG_ROUTING_RULES":
            {"long": {"type": "query_length", "min_length": 100}}}));
        assert!(matches!(
            apply_put(&put("*", &legacy)),
            PutOutcome::Stored { .. }
        ));
    }
}
