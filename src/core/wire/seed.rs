//! The seed's query shape (`POST /query` of the original CMO integration): request
//! `{query_text, user_id, session_id, query_type, timeout_seconds}` and a response with
//! `content, citations, confidence_scores, service_used, routing, processing_time_ms,
//! quality_score, fallback_used, cached, success` (+ `error`).
//!
//! `query_type` is the caller's class of the question: when it names one of the router's
//! classes ([`crate::core::classify::QueryType`]) rule conditions on `query_type` use it instead
//! of the classifier. `timeout_seconds` shortens the request's budget (never beyond
//! `LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS`). `confidence_scores` maps the answer's citation
//! numbers to the scores its Perplexity prompt asked for ([`super::perplexity_query`]).
//!
//! Why keep it: existing callers of the seed's Python service keep working when pointed at the
//! router, and see the same routing facts as OpenAI clients (through [`RoutingInfo`]).

use super::answer::{opt_str, parse_object, to_json, Citation, WireError};
use super::openai::RoutingInfo;
use crate::core::model::Upstream;
use crate::core::sorted_map::SortedMap;
use serde_json::{json, Value};

/// A parsed seed query.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedQuery {
    /// Trimmed, non-empty.
    pub query_text: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    /// The caller's own classification hint (e.g. `temporal`), if any.
    pub query_type: Option<String>,
    /// The caller's time budget in seconds (finite, > 0, at most [`MAX_TIMEOUT_SECONDS`]), if any.
    pub timeout_seconds: Option<f64>,
}

/// Parses and validates a seed query body.
pub fn parse_query_request(body: &[u8]) -> Result<SeedQuery, WireError> {
    let obj = parse_object(body, "request body")?;
    let query_text = opt_str(&obj, "query_text", "query_text")?
        .ok_or_else(|| WireError::missing("query_text"))?
        .trim()
        .to_string();
    if query_text.is_empty() {
        return Err(WireError::invalid("query_text", "must not be empty"));
    }
    let non_empty = |s: Option<String>| s.filter(|v| !v.trim().is_empty());
    Ok(SeedQuery {
        query_text,
        user_id: non_empty(opt_str(&obj, "user_id", "user_id")?),
        session_id: non_empty(opt_str(&obj, "session_id", "session_id")?),
        query_type: non_empty(opt_str(&obj, "query_type", "query_type")?),
        timeout_seconds: timeout_seconds(obj.get("timeout_seconds"))?,
    })
}

/// The longest `timeout_seconds` kept (the bound of `LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS`).
pub const MAX_TIMEOUT_SECONDS: f64 = 600.0;

fn timeout_seconds(v: Option<&Value>) -> Result<Option<f64>, WireError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        // Capped at the largest budget the router has (`LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS`'
        // bound): a longer wish is simply the configured budget.
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() && x > 0.0 => Ok(Some(x.min(MAX_TIMEOUT_SECONDS))),
            _ => Err(WireError::invalid(
                "timeout_seconds",
                "must be a number of seconds greater than 0",
            )),
        },
        Some(other) => Err(WireError::invalid(
            "timeout_seconds",
            format!(
                "expected a number, found {}",
                super::answer::json_type(other)
            ),
        )),
    }
}

/// Everything a seed response says.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedResponse<'a> {
    pub content: &'a str,
    pub citations: &'a [Citation],
    /// The upstream that produced `content` (after fallback); `None` when both failed.
    pub service_used: Option<Upstream>,
    pub routing: &'a RoutingInfo,
    pub processing_time_ms: u64,
    pub quality_score: Option<f64>,
    /// Citation number → confidence score (empty unless the answer carried annotations).
    pub confidence_scores: &'a SortedMap<String, f64>,
    /// Served from the response cache.
    pub cached: bool,
    pub success: bool,
    /// Set on failure: what went wrong, for the caller.
    pub error: Option<&'a str>,
}

/// The seed response JSON.
pub fn query_response(r: &SeedResponse<'_>) -> String {
    let mut v = json!({
        "content": r.content,
        "citations": r.citations,
        "service_used": r.service_used,
        "routing": {
            "upstream": r.routing.upstream,
            "reason": r.routing.reason,
            "arm": r.routing.arm,
            "position": r.routing.position,
        },
        "processing_time_ms": r.processing_time_ms,
        "quality_score": r.quality_score,
        "confidence_scores": r.confidence_scores,
        "fallback_used": r.routing.fallback_used,
        "cached": r.cached,
        "success": r.success,
    });
    if let (Some(e), Value::Object(o)) = (r.error, &mut v) {
        o.insert("error".into(), Value::String(e.to_string()));
    }
    to_json(&v)
}
