//! The OpenFeature Remote Evaluation Protocol (OFREP) for the one flag the router serves,
//! `lightrag-routing` (string variants `lightrag` / `perplexity`).
//!
//! - `POST /ofrep/v1/evaluate/flags/{key}` with `{"context": {"targetingKey", ...}}` →
//!   200 `{key, value, reason, variant, metadata}`, or `{key, errorCode, errorDetails}` with
//!   400 / 404 / 500.
//! - `POST /ofrep/v1/evaluate/flags` (bulk) → `{"flags": [...]}` (each entry a success or an
//!   error object), with an `ETag` so a client can revalidate with `If-None-Match` and get 304.
//!
//! Why: the chat app, or any OpenFeature SDK with the OFREP provider, can ask which side a user
//! is on without knowing the router's config format; the answer is the same decision the
//! router makes, and the OFREP reason says how it was made.

use super::answer::json_type;
use crate::core::model::Upstream;
use serde_json::{json, Map, Value};
use std::fmt;

/// The flag served.
pub const FLAG_KEY: &str = "lightrag-routing";

/// The evaluation context of a request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OfrepContext {
    /// `context.targetingKey`, when present and non-empty.
    pub targeting_key: Option<String>,
    /// Every other context attribute.
    pub attributes: Map<String, Value>,
}

/// OpenFeature error codes used by OFREP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfrepErrorCode {
    ParseError,
    TargetingKeyMissing,
    FlagNotFound,
    InvalidContext,
    General,
}

impl OfrepErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OfrepErrorCode::ParseError => "PARSE_ERROR",
            OfrepErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            OfrepErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            OfrepErrorCode::InvalidContext => "INVALID_CONTEXT",
            OfrepErrorCode::General => "GENERAL",
        }
    }

    /// The HTTP status OFREP prescribes for a single-flag evaluation failing with this code.
    pub fn status(self) -> u16 {
        match self {
            OfrepErrorCode::FlagNotFound => 404,
            OfrepErrorCode::General => 500,
            _ => 400,
        }
    }
}

/// An evaluation failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfrepError {
    pub code: OfrepErrorCode,
    pub details: String,
}

impl OfrepError {
    pub fn new(code: OfrepErrorCode, details: impl Into<String>) -> Self {
        OfrepError {
            code,
            details: details.into(),
        }
    }

    /// FLAG_NOT_FOUND for any key other than [`FLAG_KEY`].
    pub fn flag_not_found(key: &str) -> Self {
        OfrepError::new(
            OfrepErrorCode::FlagNotFound,
            format!("flag `{key}` is not served here; the only flag is `{FLAG_KEY}`"),
        )
    }

    pub fn targeting_key_missing() -> Self {
        OfrepError::new(
            OfrepErrorCode::TargetingKeyMissing,
            "context.targetingKey is required: it is the user id the cohort is hashed from",
        )
    }

    pub fn status(&self) -> u16 {
        self.code.status()
    }
}

impl fmt::Display for OfrepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.details)
    }
}

impl std::error::Error for OfrepError {}

/// Parses an evaluation request body. An empty body means an empty context (the bulk endpoint
/// may be called without one); a missing `targetingKey` is not an error here, since only the
/// caller knows whether it needs one (see [`OfrepError::targeting_key_missing`]).
pub fn parse_eval_request(body: &[u8]) -> Result<OfrepContext, OfrepError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        OfrepError::new(
            OfrepErrorCode::ParseError,
            format!("request body is not valid UTF-8 ({e})"),
        )
    })?;
    if text.trim().is_empty() {
        return Ok(OfrepContext::default());
    }
    let v: Value = serde_json::from_str(text).map_err(|e| {
        OfrepError::new(
            OfrepErrorCode::ParseError,
            format!("request body is not valid JSON ({e})"),
        )
    })?;
    let obj = v.as_object().ok_or_else(|| {
        OfrepError::new(
            OfrepErrorCode::ParseError,
            format!(
                "request body must be a JSON object, found {}",
                json_type(&v)
            ),
        )
    })?;
    let mut attributes = match obj.get("context") {
        None | Some(Value::Null) => return Ok(OfrepContext::default()),
        Some(Value::Object(c)) => c.clone(),
        Some(other) => {
            return Err(OfrepError::new(
                OfrepErrorCode::InvalidContext,
                format!("`context` must be an object, found {}", json_type(other)),
            ))
        }
    };
    let targeting_key = match attributes.remove("targetingKey") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s).filter(|s| !s.trim().is_empty()),
        Some(other) => {
            return Err(OfrepError::new(
                OfrepErrorCode::InvalidContext,
                format!(
                    "`context.targetingKey` must be a string, found {}",
                    json_type(&other)
                ),
            ))
        }
    };
    Ok(OfrepContext {
        targeting_key,
        attributes,
    })
}

/// Maps a routing reason (docs/architecture.md#the-routing-decision) to an OFREP/OpenFeature reason:
/// `disabled` → DISABLED; `forced` and `rule:<name>` → TARGETING_MATCH; `rollout_in` /
/// `rollout_out` → SPLIT; `static` (a rollout pinned at 0 % or 100 %) → STATIC; `error` →
/// ERROR; the protective overrides (`rollback`, `circuit_open`, `quality_gate`) and anything
/// unknown → DEFAULT (the safe default variant was served).
pub fn reason_for(routing_reason: &str) -> &'static str {
    match routing_reason {
        "disabled" => "DISABLED",
        "forced" => "TARGETING_MATCH",
        r if r.starts_with("rule:") => "TARGETING_MATCH",
        "rollout_in" | "rollout_out" => "SPLIT",
        "static" => "STATIC",
        "error" => "ERROR",
        _ => "DEFAULT",
    }
}

/// A successful evaluation of [`FLAG_KEY`] (or whichever key the caller evaluated).
#[derive(Debug, Clone, PartialEq)]
pub struct FlagEvaluation {
    pub key: String,
    pub upstream: Upstream,
    /// The routing reason; mapped with [`reason_for`].
    pub routing_reason: String,
    /// Flag metadata. OFREP allows only strings, numbers and booleans: other values are dropped.
    pub metadata: Map<String, Value>,
}

fn evaluation_value(e: &FlagEvaluation) -> Value {
    let metadata = crate::core::json::object(
        e.metadata
            .iter()
            .filter(|(_, v)| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    json!({
        "key": e.key,
        "value": e.upstream.as_str(),
        "reason": reason_for(&e.routing_reason),
        "variant": e.upstream.as_str(),
        "metadata": metadata,
    })
}

fn error_value(key: Option<&str>, err: &OfrepError) -> Value {
    let mut m = Map::new();
    if let Some(k) = key {
        m.insert("key".into(), Value::String(k.to_string()));
    }
    m.insert("errorCode".into(), Value::String(err.code.as_str().into()));
    m.insert("errorDetails".into(), Value::String(err.details.clone()));
    Value::Object(m)
}

/// 200 body of a single-flag evaluation.
pub fn success_body(e: &FlagEvaluation) -> String {
    evaluation_value(e).to_string()
}

/// Error body of a single-flag evaluation; send it with [`OfrepError::status`].
pub fn error_body(key: &str, err: &OfrepError) -> String {
    error_value(Some(key), err).to_string()
}

/// One entry of a bulk evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkEntry {
    Ok(FlagEvaluation),
    Err { key: String, error: OfrepError },
}

/// 200 body of a bulk evaluation: `{"flags": [...]}`.
pub fn bulk_body(entries: &[BulkEntry]) -> String {
    let flags: Vec<Value> = entries
        .iter()
        .map(|e| match e {
            BulkEntry::Ok(ev) => evaluation_value(ev),
            BulkEntry::Err { key, error } => error_value(Some(key), error),
        })
        .collect();
    json!({ "flags": flags }).to_string()
}

/// Body of a bulk evaluation that failed as a whole (`{errorCode, errorDetails}`, 400/500).
pub fn bulk_error_body(err: &OfrepError) -> String {
    error_value(None, err).to_string()
}

/// A strong ETag for a bulk body: FNV-1a 64 of its bytes, hex, quoted. Stable across
/// isolates, builds and platforms, so any isolate answers 304 to a tag another one issued.
pub fn etag(body: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

/// Whether an `If-None-Match` header value matches `etag` (weak comparison, as RFC 9110
/// prescribes for `If-None-Match`): `*`, or any listed tag equal ignoring a `W/` prefix.
pub fn if_none_match(header: &str, etag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let want = strip(etag);
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || (!t.is_empty() && strip(t) == want))
}
