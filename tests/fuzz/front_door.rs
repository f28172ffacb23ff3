//! Front-door targets: the bodies clients send — OpenAI chat completions, the seed's
//! `POST /query`, OFREP evaluation requests — and what the router builds from them.
//!
//! What must hold: no panic; a refused body gets an error that names the field (so the 400 tells
//! the client what to fix) with a 4xx status; an accepted body satisfies what the parser promises
//! (a non-blank query, no blank ids) and re-serialised parses back to the same request; the
//! upstream request built from it is valid JSON.

use crate::gen::{any_json, body, hostile_string, object, scalar};
use cmo_edge_router::core::wire::ofrep::{self, OfrepErrorCode};
use cmo_edge_router::core::wire::openai::{self, ChatRequest, ROLES};
use cmo_edge_router::core::wire::perplexity;
use cmo_edge_router::core::wire::seed;
use cmo_edge_router::core::wire::WireError;
use cmo_edge_router::core::wire::{conversation, lightrag, perplexity_query};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

fn text() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => "[A-Za-z ?]{0,40}".prop_map(Value::String),
        3 => hostile_string().prop_map(Value::String),
        1 => scalar(),
    ]
    .boxed()
}

fn content() -> BoxedStrategy<Value> {
    let part = object(vec![
        (
            "type",
            prop_oneof![
                6 => Just(json!("text")),
                1 => prop::sample::select(vec!["image_url", "TEXT", ""]).prop_map(|s| json!(s)),
                1 => scalar(),
            ]
            .boxed(),
        ),
        ("text", text()),
    ]);
    prop_oneof![
        6 => text(),
        2 => prop::collection::vec(prop_oneof![6 => part, 1 => any_json()], 0..4).prop_map(Value::Array),
        1 => any_json(),
    ]
    .boxed()
}

fn message() -> BoxedStrategy<Value> {
    let role = prop_oneof![
        8 => prop::sample::select(ROLES.to_vec()).prop_map(|s| json!(s)),
        3 => Just(json!("user")),
        1 => prop::sample::select(vec!["User", "bot", ""]).prop_map(|s| json!(s)),
        1 => scalar(),
    ]
    .boxed();
    prop_oneof![
        12 => object(vec![("role", role), ("content", content())]),
        1 => any_json(),
    ]
    .boxed()
}

fn id() -> BoxedStrategy<Value> {
    prop_oneof![4 => "[a-z0-9-]{1,16}".prop_map(Value::String), 2 => hostile_string().prop_map(Value::String), 1 => scalar()].boxed()
}

fn chat_doc() -> BoxedStrategy<Value> {
    object(vec![
        (
            "messages",
            prop_oneof![
                8 => prop::collection::vec(message(), 0..6).prop_map(Value::Array),
                1 => any_json(),
            ]
            .boxed(),
        ),
        ("model", prop_oneof![Just(json!("sonar")), id()].boxed()),
        (
            "stream",
            prop_oneof![4 => any::<bool>().prop_map(Value::Bool), 1 => scalar()].boxed(),
        ),
        ("user", id()),
        ("session_id", id()),
        ("temperature", scalar()),
    ])
}

fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|v| v.trim().is_empty())
}

/// A refused body names what was wrong and answers 4xx.
fn check_refusal(e: &WireError) -> Result<(), TestCaseError> {
    prop_assert!(!e.to_string().trim().is_empty());
    prop_assert!(matches!(e.status(), 400 | 413), "status {}", e.status());
    if let WireError::MissingField { field } | WireError::InvalidField { field, .. } = e {
        prop_assert!(!field.is_empty(), "error names no field: {e}");
    }
    Ok(())
}

/// The request as a client would re-send it.
fn reserialise(r: &ChatRequest) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "messages": r.messages,
        "model": r.model,
        "stream": r.stream,
        "user": r.user,
        "session_id": r.session_id,
    }))
    .unwrap_or_default()
}

pub fn chat_request() {
    crate::harness::run("chat_request", body(chat_doc()), |bytes| {
        match openai::parse_chat_request(&bytes) {
            Err(e) => check_refusal(&e),
            Ok(r) => {
                prop_assert!(!r.query.is_empty() && r.query.trim() == r.query);
                prop_assert!(!r.messages.is_empty());
                let last_user = r.messages.iter().rev().find(|m| m.role == "user");
                prop_assert_eq!(last_user.map(|m| m.content.trim()), Some(r.query.as_str()));
                prop_assert!(!blank(&r.user) && !blank(&r.model) && !blank(&r.session_id));
                let again = openai::parse_chat_request(&reserialise(&r)).map_err(|e| {
                    TestCaseError::fail(format!("re-serialised request refused: {e}"))
                })?;
                prop_assert_eq!(&again, &r);
                // What goes upstream is valid JSON (or a refusal naming `messages`).
                match perplexity::chat_body(&r.messages, r.model.as_deref(), r.stream) {
                    Ok(b) => {
                        let v: Value = serde_json::from_str(&b)
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        let msgs = v["messages"].as_array().cloned().unwrap_or_default();
                        prop_assert_eq!(
                            msgs.last().map(|m| m["role"].clone()),
                            Some(json!("user"))
                        );
                    }
                    Err(e) => check_refusal(&e)?,
                }
                for mode in lightrag::QueryMode::ALL {
                    match lightrag::query_body(&r.query, mode, r.stream) {
                        Ok(b) => {
                            serde_json::from_str::<Value>(&b)
                                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                        }
                        Err(e) => check_refusal(&e)?,
                    }
                }
                // The whole conversation for LightRAG: within its limits, valid JSON.
                let c = conversation::conversation(&r.messages);
                prop_assert_eq!(&c.query, &r.query);
                prop_assert!(c.history.len() <= conversation::MAX_MESSAGES);
                prop_assert!(c
                    .history
                    .iter()
                    .all(|h| h.content.chars().count() <= conversation::MAX_MESSAGE_CHARS));
                if r.query.chars().count() <= conversation::MAX_QUERY_CHARS {
                    prop_assert!(conversation::request_chars(&c) <= conversation::MAX_TOTAL_CHARS);
                }
                match lightrag::conversation_body(&c, lightrag::QueryMode::Mix, r.stream) {
                    Ok(b) => {
                        serde_json::from_str::<Value>(&b)
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    }
                    Err(e) => check_refusal(&e)?,
                }
                Ok(())
            }
        }
    });
}

fn seed_doc() -> BoxedStrategy<Value> {
    object(vec![
        ("query_text", text()),
        ("user_id", id()),
        ("session_id", id()),
        (
            "query_type",
            prop_oneof![
                prop::sample::select(vec!["temporal", "general", ""]).prop_map(|s| json!(s)),
                id()
            ]
            .boxed(),
        ),
        (
            "timeout_seconds",
            prop_oneof![
                3 => (0.001f64..600.0).prop_map(|x| json!(x)),
                1 => scalar(),
            ]
            .boxed(),
        ),
    ])
}

pub fn seed_query() {
    crate::harness::run(
        "seed_query",
        body(seed_doc()),
        |bytes| match seed::parse_query_request(&bytes) {
            Err(e) => check_refusal(&e),
            Ok(q) => {
                prop_assert!(!q.query_text.is_empty() && q.query_text.trim() == q.query_text);
                prop_assert!(!blank(&q.user_id) && !blank(&q.session_id) && !blank(&q.query_type));
                prop_assert!(q.timeout_seconds.is_none_or(|t| t.is_finite() && t > 0.0));
                let again = seed::parse_query_request(
                    &serde_json::to_vec(&json!({
                        "query_text": q.query_text, "user_id": q.user_id,
                        "session_id": q.session_id, "query_type": q.query_type,
                        "timeout_seconds": q.timeout_seconds,
                    }))
                    .unwrap_or_default(),
                )
                .map_err(|e| TestCaseError::fail(format!("re-serialised query refused: {e}")))?;
                // A float that crossed JSON text may differ in its last place (serde_json).
                let close = match (again.timeout_seconds, q.timeout_seconds) {
                    (Some(a), Some(b)) => (a - b).abs() <= 1e-12 * b.abs(),
                    (a, b) => a == b,
                };
                prop_assert!(
                    close,
                    "{:?} vs {:?}",
                    again.timeout_seconds,
                    q.timeout_seconds
                );
                prop_assert_eq!(
                    seed::SeedQuery {
                        timeout_seconds: q.timeout_seconds,
                        ..again
                    },
                    q.clone()
                );
                prop_assert!(q
                    .timeout_seconds
                    .is_none_or(|t| t <= seed::MAX_TIMEOUT_SECONDS));
                // The previous service's Perplexity request for it.
                let filter = perplexity_query::default_domain_filter();
                let params = perplexity_query::QueryParams {
                    model: perplexity_query::DEFAULT_MODEL,
                    temperature: perplexity_query::DEFAULT_TEMPERATURE,
                    search_domain_filter: &filter,
                    system_prompt: perplexity_query::SYSTEM_PROMPT,
                };
                let b = perplexity_query::query_body(&q.query_text, &params, false)
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let v: Value =
                    serde_json::from_str(&b).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&v["messages"][1]["content"], &json!(q.query_text));
                match perplexity::chat_body_for_query(&q.query_text, None, false) {
                    Ok(b) => {
                        serde_json::from_str::<Value>(&b)
                            .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    }
                    Err(e) => check_refusal(&e)?,
                }
                Ok(())
            }
        },
    );
}

fn ofrep_doc() -> BoxedStrategy<Value> {
    let context = object(vec![
        ("targetingKey", id()),
        ("email", text()),
        ("plan", scalar()),
        ("nested", any_json()),
    ]);
    object(vec![(
        "context",
        prop_oneof![8 => context, 1 => any_json()].boxed(),
    )])
}

pub fn ofrep_request() {
    let header = prop_oneof![
        Just("*".to_string()),
        "(W/)?\"[0-9a-f]{16}\"".prop_map(|s| s),
        hostile_string(),
    ];
    crate::harness::run(
        "ofrep_request",
        (body(ofrep_doc()), header),
        |(bytes, if_none_match)| {
            match ofrep::parse_eval_request(&bytes) {
                Err(e) => {
                    prop_assert!(!e.details.trim().is_empty());
                    prop_assert!(matches!(
                        e.code,
                        OfrepErrorCode::ParseError | OfrepErrorCode::InvalidContext
                    ));
                    prop_assert_eq!(e.status(), 400);
                    let b: Value = serde_json::from_str(&ofrep::bulk_error_body(&e))
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert!(b["errorCode"].is_string());
                }
                Ok(ctx) => {
                    prop_assert!(!blank(&ctx.targeting_key));
                    prop_assert!(!ctx.attributes.contains_key("targetingKey"));
                    // The attributes come back as metadata: only strings, numbers and booleans.
                    let ev = ofrep::FlagEvaluation {
                        key: ofrep::FLAG_KEY.to_string(),
                        upstream: cmo_edge_router::core::model::Upstream::Lightrag,
                        routing_reason: "rollout_in".into(),
                        metadata: ctx.attributes.clone(),
                    };
                    let body = ofrep::bulk_body(&[ofrep::BulkEntry::Ok(ev)]);
                    let v: Value = serde_json::from_str(&body)
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    let meta = v["flags"][0]["metadata"]
                        .as_object()
                        .cloned()
                        .unwrap_or_default();
                    prop_assert!(meta
                        .values()
                        .all(|m| m.is_string() || m.is_number() || m.is_boolean()));
                    let tag = ofrep::etag(&body);
                    prop_assert!(ofrep::if_none_match(&tag, &tag));
                    let weak = format!("W/{}", tag);
                    prop_assert!(ofrep::if_none_match(&weak, &tag));
                    let _ = ofrep::if_none_match(&if_none_match, &tag);
                }
            }
            Ok(())
        },
    );
}
