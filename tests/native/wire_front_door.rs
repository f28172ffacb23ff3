//! The router's own formats: OpenAI chat completions, the seed's `/query`, error bodies and
//! OFREP. Builders are checked by parsing their output back with serde_json.

use cmo_edge_router::core::model::{Arm, Reason, Upstream};
use cmo_edge_router::core::sorted_map::SortedMap;
use cmo_edge_router::core::wire::error::{error_body, wire_error_response};
use cmo_edge_router::core::wire::ofrep::{
    self, BulkEntry, FlagEvaluation, OfrepError, OfrepErrorCode,
};
use cmo_edge_router::core::wire::openai::{self, ChatMessage, RoutingInfo};
use cmo_edge_router::core::wire::seed::{self, SeedResponse};
use cmo_edge_router::core::wire::{sse, Citation, WireError};
use serde_json::{json, Map, Value};

fn routing() -> RoutingInfo {
    RoutingInfo {
        upstream: Upstream::Perplexity,
        reason: Reason::RolloutIn,
        arm: Arm::Treatment,
        position: Some(9.77),
        fallback_used: true,
        fallback_reason: Some("no_context".into()),
        config_version: 4,
        cache: None,
    }
}

fn citations() -> Vec<Citation> {
    vec![
        Citation {
            url: Some("https://hmdb.ca/x".into()),
            title: Some("HMDB".into()),
        },
        Citation {
            url: None,
            title: Some("papers/review.pdf".into()),
        },
    ]
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

// ---------- OpenAI request ----------

#[test]
fn parses_a_typical_openai_request() {
    let body = json!({
        "model": "cmo-router",
        "user": "user-42",
        "stream": true,
        "session_id": "s-1",
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "You are CMO."},
            {"role": "user", "content": "What is glycolysis?"},
            {"role": "assistant", "content": null, "tool_calls": []},
            {"role": "user", "content": [
                {"type": "text", "text": "  Which enzymes"},
                {"type": "text", "text": "regulate it?  "}
            ]}
        ]
    });
    let r = openai::parse_chat_request(body.to_string().as_bytes()).unwrap();
    assert_eq!(r.query, "Which enzymes\nregulate it?");
    assert_eq!(r.user.as_deref(), Some("user-42"));
    assert_eq!(r.session_id.as_deref(), Some("s-1"));
    assert_eq!(r.model.as_deref(), Some("cmo-router"));
    assert!(r.stream);
    assert_eq!(r.messages.len(), 4);
    assert_eq!(r.messages[2], ChatMessage::new("assistant", ""));
}

#[test]
fn minimal_openai_request_defaults() {
    let r = openai::parse_chat_request(
        br#"{"messages":[{"role":"user","content":"hello there"}],"user":"","stream":null}"#,
    )
    .unwrap();
    assert_eq!(r.query, "hello there");
    assert_eq!(r.user, None);
    assert!(!r.stream);
    assert_eq!(r.model, None);
}

#[test]
fn openai_request_errors_name_the_field() {
    let cases: Vec<(&[u8], &str)> = vec![
        (b"", "request body is malformed: empty body"),
        (b"{not json", "request body is malformed: invalid JSON"),
        (b"[1]", "expected a JSON object, found an array"),
        (b"\xff\xfe", "not valid UTF-8"),
        (br#"{}"#, "missing required field `messages`"),
        (
            br#"{"messages":"hi"}"#,
            "invalid field `messages`: expected an array",
        ),
        (br#"{"messages":[]}"#, "must contain at least one message"),
        (
            br#"{"messages":[1]}"#,
            "`messages[0]`: expected an object, found a number",
        ),
        (
            br#"{"messages":[{"content":"x"}]}"#,
            "missing required field `messages[0].role`",
        ),
        (
            br#"{"messages":[{"role":"bot","content":"x"}]}"#,
            "`messages[0].role`: `bot` is not one of",
        ),
        (
            br#"{"messages":[{"role":"user"}]}"#,
            "missing required field `messages[0].content`",
        ),
        (
            br#"{"messages":[{"role":"user","content":5}]}"#,
            "`messages[0].content`: expected a string or an array",
        ),
        (
            br#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}"#,
            "`messages[0].content[0].type`: content part type `image_url` is not supported",
        ),
        (
            br#"{"messages":[{"role":"user","content":[{"text":"x"}]}]}"#,
            "`messages[0].content[0].type`",
        ),
        (
            br#"{"messages":[{"role":"user","content":[{"type":"text"}]}]}"#,
            "`messages[0].content[0].text`",
        ),
        (
            br#"{"messages":[{"role":"user","content":["x"]}]}"#,
            "`messages[0].content[0]`",
        ),
        (
            br#"{"messages":[{"role":"system","content":"x"}]}"#,
            "must contain a message with role `user`",
        ),
        (
            br#"{"messages":[{"role":"user","content":"   "}]}"#,
            "the last `user` message has empty content",
        ),
        (
            br#"{"messages":[{"role":"user","content":"x"}],"stream":"yes"}"#,
            "invalid field `stream`: expected a boolean, found a string",
        ),
        (
            br#"{"messages":[{"role":"user","content":"x"}],"user":7}"#,
            "invalid field `user`",
        ),
        (
            br#"{"messages":[{"role":"user","content":"x"}],"model":[]}"#,
            "invalid field `model`",
        ),
    ];
    for (body, want) in cases {
        let e = openai::parse_chat_request(body).unwrap_err();
        assert!(
            e.to_string().contains(want),
            "{}: got `{e}`, want `{want}`",
            String::from_utf8_lossy(body)
        );
        assert_eq!(e.status(), 400);
    }
}

// ---------- OpenAI response and stream ----------

/// The answer JSON as it was built before the direct writer (core::wire::json_out): a
/// `serde_json::Value` serialised by serde_json, keys sorted.
fn chat_response_via_value(
    id: &str,
    created_s: u64,
    model: &str,
    content: &str,
    citations: &[Citation],
    routing: &RoutingInfo,
) -> String {
    serde_json::to_string(&json!({
        "id": id,
        "object": "chat.completion",
        "created": created_s,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }],
        "citations": citations.iter().map(|c| c.label().to_string()).collect::<Vec<_>>(),
        "search_results": citations
            .iter()
            .map(|c| json!({"title": c.title, "url": c.url}))
            .collect::<Vec<_>>(),
        "routing": serde_json::to_value(routing).unwrap(),
    }))
    .unwrap()
}

#[test]
fn chat_response_writes_the_same_bytes_as_the_value_path() {
    let plain = routing();
    let rule = RoutingInfo {
        upstream: Upstream::Lightrag,
        reason: Reason::Rule("clinical \"q\" \u{1}".into()),
        arm: Arm::None,
        position: None,
        fallback_used: false,
        fallback_reason: None,
        config_version: u64::MAX,
        cache: Some("hit".into()),
    };
    let odd = RoutingInfo {
        position: Some(f64::NAN),
        reason: Reason::CircuitOpen,
        arm: Arm::Control,
        ..routing()
    };
    let whole = RoutingInfo {
        position: Some(42.0),
        ..routing()
    };
    let odd_citations = [
        Citation {
            url: None,
            title: None,
        },
        Citation {
            url: Some("https://x.example/a?b=\"c\"&d=</script>".into()),
            title: None,
        },
    ];
    let contents = [
        "Answer.",
        "",
        "line\nbreak\ttab \"quoted\" back\\slash \u{7f} \u{0} \u{1f} é 漢字 😀 \u{2028}",
    ];
    for r in [&plain, &rule, &odd, &whole] {
        for cs in [&citations()[..], &[], &odd_citations[..]] {
            for content in contents {
                for (id, created, model) in [("chatcmpl-1", 1735689600, "sonar"), ("", 0, "m\"x")] {
                    assert_eq!(
                        openai::chat_response(id, created, model, content, cs, r),
                        chat_response_via_value(id, created, model, content, cs, r),
                        "routing {r:?}, citations {cs:?}, content {content:?}"
                    );
                }
            }
        }
    }
}

/// The stream frames as they were built before the direct writer: a `serde_json::Value` per
/// chunk, serialised and framed by `sse::sse_data`.
mod frames_via_value {
    use super::*;

    fn chunk(id: &str, created_s: u64, model: &str, delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created_s,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    }

    pub fn start(id: &str, created_s: u64, model: &str) -> String {
        let v = chunk(
            id,
            created_s,
            model,
            json!({"role": "assistant", "content": ""}),
            None,
        );
        sse::sse_data(&serde_json::to_string(&v).unwrap())
    }

    pub fn delta(id: &str, created_s: u64, model: &str, text: &str) -> String {
        let v = chunk(id, created_s, model, json!({"content": text}), None);
        sse::sse_data(&serde_json::to_string(&v).unwrap())
    }

    pub fn last(
        id: &str,
        created_s: u64,
        model: &str,
        finish_reason: &str,
        citations: &[Citation],
        routing: &RoutingInfo,
    ) -> String {
        let mut v = chunk(id, created_s, model, json!({}), Some(finish_reason));
        let o = v.as_object_mut().unwrap();
        o.insert(
            "citations".into(),
            json!(citations
                .iter()
                .map(|c| c.label().to_string())
                .collect::<Vec<_>>()),
        );
        o.insert(
            "search_results".into(),
            json!(citations
                .iter()
                .map(|c| json!({"title": c.title, "url": c.url}))
                .collect::<Vec<_>>()),
        );
        o.insert("routing".into(), serde_json::to_value(routing).unwrap());
        sse::sse_data(&serde_json::to_string(&v).unwrap())
    }

    pub fn error(message: &str) -> String {
        let v = json!({
            "error": {
                "message": message,
                "type": "upstream_error",
                "code": "stream_truncated",
            }
        });
        sse::sse_data(&serde_json::to_string(&v).unwrap())
    }
}

#[test]
fn stream_frames_write_the_same_bytes_as_the_value_path() {
    let texts = [
        "Answer.",
        "",
        "line\nbreak\r\ncr\rtab\t \"quoted\" back\\slash \u{7f} \u{0} \u{1f} é 漢字 😀 \u{2028}",
    ];
    let odd_citations = [
        Citation {
            url: None,
            title: None,
        },
        Citation {
            url: Some("https://x.example/a?b=\"c\"&d=</script>\n".into()),
            title: Some("t\u{2029}".into()),
        },
    ];
    let rule = RoutingInfo {
        reason: Reason::Rule("clinical \"q\" \u{1}".into()),
        position: None,
        cache: Some("hit".into()),
        ..routing()
    };
    for (id, created, model) in [
        ("chatcmpl-1", 1735689600, "sonar"),
        ("", 0, "m\"x\n"),
        ("id\u{0}", u64::MAX, "漢字"),
    ] {
        assert_eq!(
            openai::chunk_start(id, created, model),
            frames_via_value::start(id, created, model)
        );
        for t in texts {
            assert_eq!(
                openai::chunk_delta(id, created, model, t),
                frames_via_value::delta(id, created, model, t),
                "{t:?}"
            );
            assert_eq!(openai::chunk_error(t), frames_via_value::error(t), "{t:?}");
        }
        for cs in [&citations()[..], &[], &odd_citations[..]] {
            for r in [&routing(), &rule] {
                for finish in ["stop", "length", ""] {
                    assert_eq!(
                        openai::chunk_final(id, created, model, finish, cs, r),
                        frames_via_value::last(id, created, model, finish, cs, r),
                        "{cs:?} {r:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn chat_response_round_trips() {
    let body = openai::chat_response(
        "chatcmpl-1",
        1735689600,
        "sonar",
        "Answer.",
        &citations(),
        &routing(),
    );
    let v = parse(&body);
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["id"], "chatcmpl-1");
    assert_eq!(v["created"], 1735689600);
    assert_eq!(v["model"], "sonar");
    assert_eq!(
        v["choices"][0]["message"],
        json!({"role": "assistant", "content": "Answer."})
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["citations"],
        json!(["https://hmdb.ca/x", "papers/review.pdf"])
    );
    assert_eq!(
        v["search_results"],
        json!([{"title": "HMDB", "url": "https://hmdb.ca/x"}, {"title": "papers/review.pdf", "url": null}])
    );
    let r: RoutingInfo = serde_json::from_value(v["routing"].clone()).unwrap();
    assert_eq!(r, routing());
    assert_eq!(v["routing"]["upstream"], "perplexity");
}

#[test]
fn stream_chunks_round_trip_through_the_sse_decoder() {
    let mut body = String::new();
    body.push_str(&openai::chunk_start("c1", 7, "m"));
    body.push_str(&openai::chunk_delta("c1", 7, "m", "Hello\nwörld"));
    body.push_str(&openai::chunk_final(
        "c1",
        7,
        "m",
        "stop",
        &citations(),
        &routing(),
    ));
    body.push_str(&openai::chunk_error("LightRAG stream cut after 3 chunks"));
    body.push_str(openai::DONE);
    let events = sse::decode_all(body.as_bytes()).unwrap();
    assert_eq!(events.len(), 5);
    let start = parse(&events[0].data);
    assert_eq!(start["object"], "chat.completion.chunk");
    assert_eq!(
        start["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(start["choices"][0]["finish_reason"], Value::Null);
    let delta = parse(&events[1].data);
    assert_eq!(delta["choices"][0]["delta"]["content"], "Hello\nwörld");
    assert_eq!(delta["id"], "c1");
    assert_eq!(delta["created"], 7);
    let fin = parse(&events[2].data);
    assert_eq!(fin["choices"][0]["finish_reason"], "stop");
    assert_eq!(fin["choices"][0]["delta"], json!({}));
    assert_eq!(fin["citations"][0], "https://hmdb.ca/x");
    assert_eq!(fin["routing"]["reason"], "rollout_in");
    let err = parse(&events[3].data);
    assert_eq!(err["error"]["code"], "stream_truncated");
    assert!(err["error"]["message"].as_str().unwrap().contains("cut"));
    assert_eq!(events[4].data, "[DONE]");
}

// ---------- seed ----------

#[test]
fn seed_request() {
    let q = seed::parse_query_request(
        br#"{"query_text":"  How does insulin affect glucose uptake? ","user_id":"u1","session_id":"","query_type":"mechanism"}"#,
    )
    .unwrap();
    assert_eq!(q.query_text, "How does insulin affect glucose uptake?");
    assert_eq!(q.user_id.as_deref(), Some("u1"));
    assert_eq!(q.session_id, None);
    assert_eq!(q.query_type.as_deref(), Some("mechanism"));
    let e = seed::parse_query_request(br#"{"query":"x"}"#).unwrap_err();
    assert_eq!(
        e,
        WireError::MissingField {
            field: "query_text".into()
        }
    );
    let e = seed::parse_query_request(br#"{"query_text":"  "}"#).unwrap_err();
    assert_eq!(e.field(), Some("query_text"));
    let e = seed::parse_query_request(br#"{"query_text":"ok","user_id":1}"#).unwrap_err();
    assert_eq!(e.field(), Some("user_id"));
    assert!(seed::parse_query_request(b"nope").is_err());
}

#[test]
fn seed_response_success_and_failure() {
    let r = routing();
    let cites = citations();
    let ok = parse(&seed::query_response(&SeedResponse {
        content: "Insulin promotes GLUT4 translocation.",
        citations: &cites,
        service_used: Some(Upstream::Perplexity),
        routing: &r,
        processing_time_ms: 812,
        quality_score: Some(0.82),
        confidence_scores: &SortedMap::from([("1".to_string(), 0.9)]),
        cached: false,
        success: true,
        error: None,
    }));
    assert_eq!(
        ok,
        json!({
            "content": "Insulin promotes GLUT4 translocation.",
            "citations": [{"url": "https://hmdb.ca/x", "title": "HMDB"}, {"url": null, "title": "papers/review.pdf"}],
            "service_used": "perplexity",
            "routing": {"upstream": "perplexity", "reason": "rollout_in", "arm": "treatment", "position": 9.77},
            "processing_time_ms": 812,
            "quality_score": 0.82,
            "confidence_scores": {"1": 0.9},
            "fallback_used": true,
            "cached": false,
            "success": true
        })
    );
    let failed = parse(&seed::query_response(&SeedResponse {
        content: "",
        citations: &[],
        service_used: None,
        routing: &r,
        processing_time_ms: 30000,
        quality_score: None,
        confidence_scores: &SortedMap::new(),
        cached: false,
        success: false,
        error: Some("both upstreams failed: lightrag timeout, perplexity 500"),
    }));
    assert_eq!(failed["success"], false);
    assert_eq!(failed["service_used"], Value::Null);
    assert_eq!(failed["quality_score"], Value::Null);
    assert!(failed["error"]
        .as_str()
        .unwrap()
        .contains("both upstreams failed"));
}

// ---------- error bodies ----------

#[test]
fn error_bodies() {
    assert_eq!(
        parse(&error_body(404, "not_found", "no route for GET /nope")),
        json!({"error": {"code": "not_found", "message": "no route for GET /nope", "status": 404}})
    );
    let (status, body) = wire_error_response(&WireError::TooLarge {
        what: "request body".into(),
        limit: 65536,
    });
    assert_eq!(status, 413);
    assert_eq!(parse(&body)["error"]["code"], "too_large");
    let (status, body) = wire_error_response(&openai::parse_chat_request(b"{}").unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(
        parse(&body)["error"]["message"],
        "missing required field `messages`"
    );
    assert_eq!(parse(&body)["error"]["code"], "missing_field");
}

// ---------- OFREP ----------

#[test]
fn ofrep_parse_eval_request() {
    let c = ofrep::parse_eval_request(
        br#"{"context":{"targetingKey":"user-42","plan":"pro","country":"DE"}}"#,
    )
    .unwrap();
    assert_eq!(c.targeting_key.as_deref(), Some("user-42"));
    assert_eq!(c.attributes.len(), 2);
    assert_eq!(c.attributes["plan"], "pro");
    assert_eq!(ofrep::parse_eval_request(b"").unwrap(), Default::default());
    assert_eq!(
        ofrep::parse_eval_request(b"{}").unwrap().targeting_key,
        None
    );
    assert_eq!(
        ofrep::parse_eval_request(br#"{"context":{"targetingKey":""}}"#)
            .unwrap()
            .targeting_key,
        None
    );
    let e = ofrep::parse_eval_request(b"{oops").unwrap_err();
    assert_eq!(e.code, OfrepErrorCode::ParseError);
    assert_eq!(e.status(), 400);
    assert_eq!(
        ofrep::parse_eval_request(b"[]").unwrap_err().code,
        OfrepErrorCode::ParseError
    );
    let e = ofrep::parse_eval_request(br#"{"context":"u1"}"#).unwrap_err();
    assert_eq!(e.code, OfrepErrorCode::InvalidContext);
    let e = ofrep::parse_eval_request(br#"{"context":{"targetingKey":42}}"#).unwrap_err();
    assert_eq!(e.code, OfrepErrorCode::InvalidContext);
    assert!(e.details.contains("targetingKey"));
}

#[test]
fn ofrep_reasons_and_statuses() {
    let cases = [
        ("disabled", "DISABLED"),
        ("forced", "TARGETING_MATCH"),
        ("rule:temporal", "TARGETING_MATCH"),
        ("rollout_in", "SPLIT"),
        ("rollout_out", "SPLIT"),
        ("static", "STATIC"),
        ("rollback", "DEFAULT"),
        ("circuit_open", "DEFAULT"),
        ("quality_gate", "DEFAULT"),
        ("error", "ERROR"),
        ("something-new", "DEFAULT"),
    ];
    for (reason, want) in cases {
        assert_eq!(ofrep::reason_for(reason), want, "{reason}");
    }
    let statuses = [
        (OfrepErrorCode::ParseError, "PARSE_ERROR", 400),
        (
            OfrepErrorCode::TargetingKeyMissing,
            "TARGETING_KEY_MISSING",
            400,
        ),
        (OfrepErrorCode::FlagNotFound, "FLAG_NOT_FOUND", 404),
        (OfrepErrorCode::InvalidContext, "INVALID_CONTEXT", 400),
        (OfrepErrorCode::General, "GENERAL", 500),
    ];
    for (code, s, status) in statuses {
        assert_eq!(code.as_str(), s);
        assert_eq!(code.status(), status);
    }
}

fn evaluation(upstream: Upstream, reason: &str) -> FlagEvaluation {
    let mut metadata = Map::new();
    metadata.insert("position".into(), json!(9.77));
    metadata.insert("configVersion".into(), json!(4));
    metadata.insert("inExperiment".into(), json!(true));
    metadata.insert("routingReason".into(), json!(reason));
    metadata.insert("nested".into(), json!({"dropped": true}));
    metadata.insert("nothing".into(), Value::Null);
    FlagEvaluation {
        key: ofrep::FLAG_KEY.into(),
        upstream,
        routing_reason: reason.into(),
        metadata,
    }
}

#[test]
fn ofrep_success_and_error_bodies() {
    let v = parse(&ofrep::success_body(&evaluation(
        Upstream::Lightrag,
        "rollout_in",
    )));
    assert_eq!(
        v,
        json!({
            "key": "lightrag-routing",
            "value": "lightrag",
            "reason": "SPLIT",
            "variant": "lightrag",
            "metadata": {"position": 9.77, "configVersion": 4, "inExperiment": true, "routingReason": "rollout_in"}
        })
    );
    let e = OfrepError::flag_not_found("dark-mode");
    assert_eq!(e.status(), 404);
    let v = parse(&ofrep::error_body("dark-mode", &e));
    assert_eq!(v["key"], "dark-mode");
    assert_eq!(v["errorCode"], "FLAG_NOT_FOUND");
    assert!(v["errorDetails"]
        .as_str()
        .unwrap()
        .contains("lightrag-routing"));
    let v = parse(&ofrep::error_body(
        ofrep::FLAG_KEY,
        &OfrepError::targeting_key_missing(),
    ));
    assert_eq!(v["errorCode"], "TARGETING_KEY_MISSING");
    let v = parse(&ofrep::bulk_error_body(&OfrepError::new(
        OfrepErrorCode::General,
        "KV down",
    )));
    assert_eq!(
        v,
        json!({"errorCode": "GENERAL", "errorDetails": "KV down"})
    );
}

#[test]
fn ofrep_bulk_and_etag() {
    let entries = [
        BulkEntry::Ok(evaluation(Upstream::Perplexity, "circuit_open")),
        BulkEntry::Err {
            key: "other".into(),
            error: OfrepError::flag_not_found("other"),
        },
    ];
    let body = ofrep::bulk_body(&entries);
    let v = parse(&body);
    assert_eq!(v["flags"][0]["value"], "perplexity");
    assert_eq!(v["flags"][0]["reason"], "DEFAULT");
    assert_eq!(v["flags"][1]["errorCode"], "FLAG_NOT_FOUND");
    assert_eq!(v["flags"][1]["key"], "other");
    assert_eq!(parse(&ofrep::bulk_body(&[])), json!({"flags": []}));

    let tag = ofrep::etag(&body);
    assert!(
        tag.starts_with('"') && tag.ends_with('"') && tag.len() == 18,
        "{tag}"
    );
    assert_eq!(tag, ofrep::etag(&body.clone()));
    assert_ne!(tag, ofrep::etag(&ofrep::bulk_body(&entries[..1])));
    // Pinned: the hash must not change between builds or isolates.
    assert_eq!(ofrep::etag(""), "\"cbf29ce484222325\"");
    assert_eq!(ofrep::etag("a"), "\"af63dc4c8601ec8c\"");

    assert!(ofrep::if_none_match(&tag, &tag));
    assert!(ofrep::if_none_match(&format!("W/{tag}"), &tag));
    assert!(ofrep::if_none_match(&format!("\"x\", {tag}"), &tag));
    assert!(ofrep::if_none_match("*", &tag));
    assert!(!ofrep::if_none_match("\"x\"", &tag));
    assert!(!ofrep::if_none_match("", &tag));
}
