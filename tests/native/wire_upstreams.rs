//! Upstream formats: LightRAG (`/query`, `/query/stream` NDJSON) and Perplexity
//! (`/chat/completions`, SSE), with realistic payloads and malformed input.

use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::wire::lightrag::QueryMode;
use cmo_edge_router::core::wire::openai::ChatMessage;
use cmo_edge_router::core::wire::{
    lightrag, ndjson, perplexity, perplexity_event, perplexity_reply, sse, Citation,
    StreamAccumulator, StreamItem, WireError,
};
use serde_json::{json, Value};

fn cite(url: Option<&str>, title: Option<&str>) -> Citation {
    Citation {
        url: url.map(str::to_string),
        title: title.map(str::to_string),
    }
}

// ---------- LightRAG ----------

#[test]
fn lightrag_query_body() {
    let body: Value = serde_json::from_str(
        &lightrag::query_body("  What is glycolysis? ", QueryMode::Mix, false).unwrap(),
    )
    .unwrap();
    assert_eq!(
        body,
        json!({"query": "What is glycolysis?", "mode": "mix", "stream": false, "include_references": true})
    );
    let body: Value =
        serde_json::from_str(&lightrag::query_body("TCA cycle", QueryMode::Hybrid, true).unwrap())
            .unwrap();
    assert_eq!(body["stream"], true);
    assert_eq!(lightrag::query_path(true), "/query/stream");
    assert_eq!(lightrag::query_path(false), "/query");
}

#[test]
fn lightrag_rejects_short_queries() {
    let err = lightrag::query_body("ab", QueryMode::Mix, false).unwrap_err();
    assert_eq!(err.field(), Some("query"));
    assert!(err.to_string().contains("at least 3 characters"), "{err}");
    assert!(lightrag::query_body("   ", QueryMode::Mix, false).is_err());
    assert!(lightrag::query_body(" a  ", QueryMode::Mix, false).is_err());
    // CJK characters count 2: two of them pass, one does not.
    assert!(lightrag::query_body("代谢", QueryMode::Mix, false).is_ok());
    assert!(lightrag::query_body("代", QueryMode::Mix, false).is_err());
    // bypass skips the RAG minimum but not the non-empty rule.
    assert!(lightrag::query_body("hi", QueryMode::Bypass, false).is_ok());
    assert!(lightrag::query_body(" ", QueryMode::Bypass, false).is_err());
    // Modes are a type: an unknown name never gets this far (the config loader rejects it).
    assert_eq!(QueryMode::parse(" Hybrid "), Some(QueryMode::Hybrid));
    assert_eq!(QueryMode::parse("deep"), None);
}

#[test]
fn lightrag_parse_query_response() {
    let body = r#"{
        "response": "Metabolomics studies small molecules such as glucose and lactate.",
        "references": [
            {"reference_id": "1", "file_path": "papers/metabolomics_review_2024.pdf"},
            {"reference_id": "2", "file_path": "https://pubmed.ncbi.nlm.nih.gov/12345/"},
            {"reference_id": "3", "file_path": "papers/metabolomics_review_2024.pdf"},
            {"reference_id": "4", "file_path": ""}
        ],
        "response_time": 1.82,
        "llm_generated": true
    }"#;
    let a = lightrag::parse_query_response(body).unwrap();
    assert!(a.content.starts_with("Metabolomics"));
    assert_eq!(
        a.citations,
        [
            cite(None, Some("papers/metabolomics_review_2024.pdf")),
            cite(
                Some("https://pubmed.ncbi.nlm.nih.gov/12345/"),
                Some("https://pubmed.ncbi.nlm.nih.gov/12345/")
            ),
        ]
    );
    // references disabled / null
    let a = lightrag::parse_query_response(r#"{"response": "x", "references": null}"#).unwrap();
    assert!(a.citations.is_empty());
}

#[test]
fn lightrag_malformed_responses() {
    let e = lightrag::parse_query_response("<html>502 Bad Gateway</html>").unwrap_err();
    assert!(matches!(e, WireError::Malformed { .. }));
    assert!(e.to_string().starts_with("LightRAG response is malformed"));
    let e = lightrag::parse_query_response("[1,2]").unwrap_err();
    assert!(e.to_string().contains("found an array"));
    let e = lightrag::parse_query_response(r#"{"references": []}"#).unwrap_err();
    assert_eq!(
        e,
        WireError::MissingField {
            field: "response".into()
        }
    );
    let e = lightrag::parse_query_response(r#"{"response": 42}"#).unwrap_err();
    assert_eq!(e.field(), Some("response"));
    let e = lightrag::parse_query_response(r#"{"response": "x", "references": "a"}"#).unwrap_err();
    assert_eq!(e.field(), Some("references"));
    let e = lightrag::parse_query_response(
        r#"{"response": "x", "references": [{"reference_id": "1", "file_path": 3}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.field(), Some("references[0].file_path"));
    let e = lightrag::parse_query_response(r#"{"detail": "Query must be at least 3 characters"}"#)
        .unwrap_err();
    assert_eq!(
        e,
        WireError::Upstream {
            upstream: Upstream::Lightrag,
            message: "Query must be at least 3 characters".into()
        }
    );
    assert_eq!(e.status(), 502);
}

#[test]
fn lightrag_stream_end_to_end() {
    let body = concat!(
        "{\"references\": [{\"reference_id\": \"1\", \"file_path\": \"hmdb/HMDB0000122.xml\"}]}\n",
        "{\"progress\": \"extracting_keywords\"}\n",
        "{\"response\": \"Glucose is \"}\n",
        "{\"response\": \"a hexose.\"}\n",
        "{\"response_time\": 1.2}\n",
    );
    let mut acc = StreamAccumulator::new();
    let mut items = Vec::new();
    for line in ndjson::decode_all(body.as_bytes()).unwrap() {
        for item in lightrag::parse_stream_line(&line) {
            acc.apply(&item);
            items.push(item);
        }
    }
    assert_eq!(
        items,
        [
            StreamItem::Citations(vec![cite(None, Some("hmdb/HMDB0000122.xml"))]),
            StreamItem::Delta("Glucose is ".into()),
            StreamItem::Delta("a hexose.".into()),
        ]
    );
    assert_eq!(acc.error, None);
    let answer = acc.into_answer();
    assert_eq!(answer.content, "Glucose is a hexose.");
    assert_eq!(answer.citations.len(), 1);
}

#[test]
fn lightrag_stream_errors() {
    assert_eq!(
        lightrag::parse_stream_line(r#"{"error": "LLM timeout"}"#),
        [StreamItem::Error("LLM timeout".into())]
    );
    let items = lightrag::parse_stream_line("{\"response\": \"trunc");
    assert!(matches!(&items[..], [StreamItem::Error(m)] if m.contains("not valid JSON")));
    let items = lightrag::parse_stream_line("[]");
    assert!(matches!(&items[..], [StreamItem::Error(m)] if m.contains("an array")));
    let items = lightrag::parse_stream_line(r#"{"response": 1}"#);
    assert!(matches!(&items[..], [StreamItem::Error(m)] if m.contains("`response`")));
    assert!(lightrag::parse_stream_line(r#"{"progress": "x"}"#).is_empty());
    assert!(lightrag::parse_stream_line(r#"{"response": ""}"#).is_empty());
}

// ---------- Perplexity ----------

#[test]
fn perplexity_chat_body_defaults_and_normalises() {
    let body: Value = serde_json::from_str(
        &perplexity::chat_body_for_query("latest news on NAD+", None, false).unwrap(),
    )
    .unwrap();
    assert_eq!(
        body,
        json!({"model": "sonar", "messages": [{"role": "user", "content": "latest news on NAD+"}], "stream": false})
    );
    let msgs = vec![
        ChatMessage::new("assistant", "Hello! How can I help?"),
        ChatMessage::new("system", "Be concise."),
        ChatMessage::new("developer", "Cite sources."),
        ChatMessage::new("user", "What is lactate?"),
        ChatMessage::new("user", "And pyruvate?"),
        ChatMessage::new("tool", "{}"),
        ChatMessage::new("assistant", ""),
        ChatMessage::new("assistant", "Both are metabolites."),
        ChatMessage::new("user", "Which pathway links them?"),
        ChatMessage::new("assistant", "trailing"),
    ];
    let body: Value =
        serde_json::from_str(&perplexity::chat_body(&msgs, Some("sonar-pro"), true).unwrap())
            .unwrap();
    assert_eq!(body["model"], "sonar-pro");
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "Be concise.\n\nCite sources."},
            {"role": "user", "content": "What is lactate?\n\nAnd pyruvate?"},
            {"role": "assistant", "content": "Both are metabolites."},
            {"role": "user", "content": "Which pathway links them?"},
        ])
    );
    let body: Value =
        serde_json::from_str(&perplexity::chat_body(&msgs, Some("  "), true).unwrap()).unwrap();
    assert_eq!(body["model"], "sonar");
    let err = perplexity::chat_body(&[ChatMessage::new("system", "x")], None, false).unwrap_err();
    assert_eq!(err.field(), Some("messages"));
}

const PPLX_RESPONSE: &str = r#"{
  "id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
  "model": "sonar",
  "created": 1735689600,
  "usage": {"prompt_tokens": 12, "completion_tokens": 80, "total_tokens": 92},
  "object": "chat.completion",
  "choices": [{"index": 0, "finish_reason": "stop",
               "message": {"role": "assistant", "content": "Recent studies link NAD+ decline to ageing [1][2]."}}],
  "citations": ["https://www.nature.com/articles/s41586-024-0001", "https://pubmed.ncbi.nlm.nih.gov/999/"],
  "search_results": [
    {"title": "NAD+ metabolism and ageing", "url": "https://www.nature.com/articles/s41586-024-0001", "date": "2024-05-01"},
    {"title": "Extra source", "url": "https://example.org/extra", "date": null}
  ]
}"#;

#[test]
fn perplexity_parse_chat_response() {
    let a = perplexity::parse_chat_response(PPLX_RESPONSE).unwrap();
    assert!(a.content.contains("NAD+"));
    assert_eq!(
        a.citations,
        [
            cite(
                Some("https://www.nature.com/articles/s41586-024-0001"),
                Some("NAD+ metabolism and ageing")
            ),
            cite(Some("https://pubmed.ncbi.nlm.nih.gov/999/"), None),
            cite(Some("https://example.org/extra"), Some("Extra source")),
        ]
    );
    // No sources at all is fine.
    let a = perplexity::parse_chat_response(
        r#"{"choices":[{"message":{"role":"assistant","content":"ok"}}]}"#,
    )
    .unwrap();
    assert!(a.citations.is_empty());
}

/// The Perplexity request body as it was built before the direct writer: a
/// `serde_json::Value` serialised by serde_json, keys sorted.
#[test]
fn perplexity_chat_body_writes_the_same_bytes_as_the_value_path() {
    let convs: [Vec<ChatMessage>; 4] = [
        vec![ChatMessage::new("user", "What is glycolysis?")],
        vec![
            ChatMessage::new("system", "Be \"brief\".\n\u{1}"),
            ChatMessage::new("user", "first"),
            ChatMessage::new("user", "second é 😀"),
            ChatMessage::new("assistant", ""),
            ChatMessage::new("developer", "dev"),
            ChatMessage::new("user", "  third  "),
        ],
        vec![
            ChatMessage::new("assistant", "hi"),
            ChatMessage::new("user", "back\\slash"),
        ],
        vec![ChatMessage::new("tool", "x"), ChatMessage::new("user", "q")],
    ];
    for msgs in &convs {
        for model in [None, Some("sonar-pro"), Some("  "), Some("m\"x")] {
            for stream in [false, true] {
                let got = perplexity::chat_body(msgs, model, stream).unwrap();
                let v: Value = serde_json::from_str(&got).unwrap();
                let want = serde_json::to_string(&json!({
                    "model": v["model"],
                    "messages": v["messages"],
                    "stream": stream,
                }))
                .unwrap();
                assert_eq!(got, want, "{msgs:?} {model:?} {stream}");
            }
        }
    }
}

/// The fast reader (`perplexity_reply`) answers exactly as the general one wherever it
/// answers, and answers the usual bodies; it leaves errors and odd shapes to the general one.
#[test]
fn perplexity_fast_reader_matches_the_general_one() {
    let usual = [
        PPLX_RESPONSE,
        r#"{"choices":[{"message":{"role":"assistant","content":"ok"}}]}"#,
        r#"{"id":"mock-1","model":"sonar","created":1796062120,"usage":{"prompt_tokens":10,"completion_tokens":40,"total_tokens":50},"object":"chat.completion","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"Web answer [1][2]."}}],"citations":["https://pubmed.ncbi.nlm.nih.gov/?term=x","https://hmdb.ca/q"],"search_results":[{"title":"PubMed","url":"https://pubmed.ncbi.nlm.nih.gov/?term=x","date":"2025-01-15"},{"title":"HMDB","url":"https://hmdb.ca/q","date":null}]}"#,
        r#"{"error":null,"choices":[{"message":{"content":"esc\"aped \u00e9 \ud83d\ude00 \n"}},{"x":[1,2,{"y":null}]}],"citations":null,"search_results":null}"#,
        r#"{"citations":["  ","https://a.example",{"url":"https://b.example","title":"B"},{"title":"only a title"},{"url":null,"title":"  "}],"search_results":[{"url":"https://a.example","title":"A"},{"title":null},{}],"choices":[{"message":{"content":""}}]}"#,
        r#"{"choices":[{"message":{"content":"x","content_extra":1e300}}],"usage":{"n":-12345678901234567890}}"#,
        r#"{"ch\u006fices":[{"message":{"content":"escaped key"}}]}"#,
    ];
    for body in usual {
        let fast = perplexity_reply::read(body);
        assert!(
            fast.is_some(),
            "the usual body takes the fast reader: {body}"
        );
        assert_eq!(
            fast.map(Ok),
            Some(perplexity::parse_chat_response_general(body)),
            "{body}"
        );
    }
    let odd = [
        "not json",
        "[]",
        r#"{"id":"x"}"#,
        r#"{"choices":[]}"#,
        r#"{"choices":{}}"#,
        r#"{"choices":null}"#,
        r#"{"choices":[{}]}"#,
        r#"{"choices":[5]}"#,
        r#"{"choices":[{"message":{"content":null}}]}"#,
        r#"{"choices":[{"message":{"content":["parts"]}}]}"#,
        r#"{"choices":[{"message":{"content":"x"}}],"citations":[1]}"#,
        r#"{"choices":[{"message":{"content":"x"}}],"citations":[null]}"#,
        r#"{"choices":[{"message":{"content":"x"}}],"citations":"https://a"}"#,
        r#"{"choices":[{"message":{"content":"x"}}],"citations":[{"url":5}]}"#,
        r#"{"choices":[{"message":{"content":"x"}}],"search_results":[5]}"#,
        r#"{"choices":[{"message":{"content":"x"}}],"search_results":[{"url":["u"]}]}"#,
        r#"{"error":{"message":"Invalid API key","type":"invalid_request_error","code":401}}"#,
        r#"{"error":"plain","choices":[{"message":{"content":"x"}}]}"#,
        // A member read twice: the general reader keeps the last.
        r#"{"choices":[{"message":{"content":"first"}}],"choices":[{"message":{"content":"last"}}]}"#,
        r#"{"choices":[{"message":{"content":"a","content":"b"}}]}"#,
        r#"{"choices":[{"message":{"content":"x"}}],"citations":[{"url":"https://a","url":"https://b"}]}"#,
        // Refused by both: a number out of range, trailing text.
        r#"{"choices":[{"message":{"content":"x"}}],"usage":{"n":1e400}}"#,
        r#"{"choices":[{"message":{"content":"x"}}]} trailing"#,
    ];
    for body in odd {
        let general = perplexity::parse_chat_response_general(body);
        match perplexity_reply::read(body) {
            Some(fast) => assert_eq!(Ok(fast), general, "{body}"),
            None => assert_eq!(perplexity::parse_chat_response(body), general, "{body}"),
        }
    }
}

/// The fast event reader (`perplexity_event`) against the general one over a stream of events:
/// the same items per event, except that a `Citations` item may be left out (never changed),
/// and the same answer when both are folded; `citations` is how many `Citations` items the
/// fast reader gave.
fn fast_events_agree(events: &[String], citations: usize) {
    assert_eq!(fast_events_given(events), citations, "{events:?}");
}

/// [`fast_events_agree`]'s comparison; returns how many `Citations` items the fast reader gave.
pub(super) fn fast_events_given(events: &[String]) -> usize {
    let mut reader = perplexity_event::EventReader::new();
    let (mut fast_acc, mut general_acc) = (StreamAccumulator::new(), StreamAccumulator::new());
    let mut given = 0;
    for data in events {
        let fast = reader.read(data);
        let general = perplexity::parse_stream_event(data);
        let not_sources = |items: &[StreamItem]| -> Vec<StreamItem> {
            items
                .iter()
                .filter(|i| !matches!(i, StreamItem::Citations(_)))
                .cloned()
                .collect()
        };
        assert_eq!(not_sources(&fast), not_sources(&general), "{data}");
        for item in &fast {
            if let StreamItem::Citations(_) = item {
                given += 1;
                assert!(general.contains(item), "{data}: {item:?} vs {general:?}");
            }
        }
        for i in &fast {
            fast_acc.apply(i);
        }
        for i in &general {
            general_acc.apply(i);
        }
    }
    assert_eq!(fast_acc, general_acc, "{events:?}");
    given
}

#[test]
fn perplexity_sources_repeated_are_given_once_and_a_change_in_either_again() {
    let event = |cites: &str, results: &str, text: &str| {
        format!(
            r#"{{"citations":{cites},"choices":[{{"delta":{{"content":"{text}"}}}}],"search_results":{results}}}"#
        )
    };
    let (a, b) = (r#"["https://a.example"]"#, r#"["https://b.example"]"#);
    let r = r#"[{"title":"R","url":"https://r.example"}]"#;
    let run = [
        event(a, r, "1"),
        event(a, r, "2"),
        // search_results the same text, citations changed: both read, the merge given.
        event(b, r, "3"),
        event(b, r, "4"),
        // citations the same text, search_results changed (null: none).
        event(b, "null", "5"),
        event(b, "null", "6"),
        event(b, r, "7"),
    ];
    assert_eq!(fast_events_given(&run), 4);
}

#[test]
fn perplexity_fast_event_reader_matches_the_general_one() {
    // The captured shape (tests/fixtures/perplexity/README.md): sources repeated in every
    // event, given on once.
    let captured = sse::decode_all(include_bytes!("../fixtures/perplexity/stream_no_done.sse"))
        .unwrap()
        .into_iter()
        .map(|e| e.data)
        .collect::<Vec<_>>();
    assert!(captured.len() > 3);
    fast_events_agree(&captured, 1);
    // The mock's events (tests/mock/upstreams.mjs): citations and search_results in each.
    let mock = |text: &str, sofar: &str, finish: Value| {
        json!({
            "id": "mock-1", "model": "sonar", "created": 1796062120, "object": "chat.completion",
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
            "citations": ["https://pubmed.ncbi.nlm.nih.gov/?term=x", "https://hmdb.ca/q"],
            "search_results": [
                {"title": "PubMed results", "url": "https://pubmed.ncbi.nlm.nih.gov/?term=x", "date": "2025-01-15"},
                {"title": "HMDB search", "url": "https://hmdb.ca/q", "date": null},
            ],
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": sofar},
                         "delta": {"role": "assistant", "content": text}}],
        })
        .to_string()
    };
    fast_events_agree(
        &[
            mock("Lactate ", "Lactate ", Value::Null),
            mock("is made", "Lactate is made", Value::Null),
            mock(" by LDH.", "Lactate is made by LDH.", json!("stop")),
        ],
        1,
    );
    // Escapes and unicode in the text, the sources and the keys; the sources change (a title
    // arrives, a source is added) and are given on again each time; missing fields.
    let ev = |s: &str| s.to_string();
    fast_events_agree(
        &[
            ev(r#"{"choices":[{"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#),
            ev(
                r#"{"citations":["https://a.example/é"],"choices":[{"delta":{"content":"esc\"aped \u00e9 \ud83d\ude00 \n漢字"}}]}"#,
            ),
            ev(
                r#"{"citations":["https://a.example/\u00e9"],"choices":[{"delta":{"content":"same source, escaped"}}]}"#,
            ),
            ev(
                r#"{"citations":["https://a.example/é"],"search_results":[{"title":"A \"t\"","url":"https://a.example/é"}],"ch\u006fices":[{"delta":{"content":"title"}}]}"#,
            ),
            ev(
                r#"{"citations":["https://a.example/é"],"search_results":[{"title":"A \"t\"","url":"https://a.example/é"}],"choices":[{"delta":{"content":"again"}}]}"#,
            ),
            ev(r#"{"choices":[{"delta":{"content":"no sources here"}}]}"#),
            ev(
                r#"{"citations":["https://a.example/é","  ",{"url":"https://b.example","title":"B"},{"title":"only a title"}],"search_results":[{"url":"https://a.example/é","title":"A \"t\""},{"title":null},{}],"choices":[{"delta":{"content":"added"}},{"x":[1,2,{"y":null}]}]}"#,
            ),
            ev(
                r#"{"citations":null,"search_results":[],"choices":[{"delta":{"content":null},"finish_reason":null}]}"#,
            ),
            ev(
                r#"{"choices":[{"delta":{},"finish_reason":""}],"usage":{"n":-12345678901234567890,"f":1e300}}"#,
            ),
            ev(r#"{"choices":[],"error":null}"#),
            ev(r#"  {"choices":[{"delta":{"content":"Done."},"finish_reason":"stop"}]}  "#),
        ],
        3,
    );
    // Left to the general reader (and its errors and items kept): the end marker, errors,
    // odd types, members read twice, invalid JSON. After one of these the next sources are
    // given on again.
    let odd = [
        "[DONE]",
        " [DONE] ",
        "",
        "not json",
        "[]",
        r#"{"error":{"message":"Rate limited","type":"api_error"}}"#,
        r#"{"error":"","choices":[{"delta":{"content":"x"}}]}"#,
        r#"{"error":false}"#,
        r#"{"choices":{}}"#,
        r#"{"choices":[null]}"#,
        r#"{"choices":[5]}"#,
        r#"{"choices":[{"delta":"text"}]}"#,
        r#"{"choices":[{"delta":{"content":["parts"]}}]}"#,
        r#"{"choices":[{"delta":{"content":"x"},"finish_reason":1}]}"#,
        r#"{"choices":[{"delta":{"content":"a","content":"b"}}]}"#,
        r#"{"choices":[{"delta":{"content":"a"},"delta":{"content":"b"}}]}"#,
        r#"{"choices":[{"delta":{"content":"a"}}],"choices":[{"delta":{"content":"b"}}]}"#,
        r#"{"choices":[{"delta":{"content":"x"}}],"citations":[1]}"#,
        r#"{"choices":[{"delta":{"content":"x"}}],"citations":"https://a"}"#,
        r#"{"choices":[{"delta":{"content":"x"}}],"citations":[{"url":5}]}"#,
        r#"{"choices":[{"delta":{"content":"x"}}],"search_results":[5]}"#,
        r#"{"choices":[{"delta":{"content":"x"}}],"usage":{"n":1e400}}"#,
        r#"{"choices":[{"delta":{"content":"x"}}]} trailing"#,
    ];
    let source = r#"{"citations":["https://a.example"],"choices":[{"delta":{"content":"s"}}]}"#;
    for o in odd {
        fast_events_agree(&[ev(source), ev(o), ev(source)], 2);
    }
    // At the edges of the hand-written scanner's subset (src/core/wire/perplexity_scan.rs): what
    // it reads itself, what it leaves to serde's reader (valid JSON: the sources are not given
    // again after it), and invalid JSON, which the general reader reports (they are).
    let deep = format!(
        r#"{{"choices":[{{"delta":{{"content":"deep"}}}}],"x":{}1{}}}"#,
        "[".repeat(110),
        "]".repeat(110)
    );
    let too_deep = format!(
        r#"{{"choices":[{{"delta":{{"content":"deep"}}}}],"x":{}1{}}}"#,
        "[".repeat(130),
        "]".repeat(130)
    );
    let edges: [(&str, usize); 22] = [
        (
            r#"{"choices":[{"delta":{"content":"a\/b\b\f\r\t\\ \u0000\u20ac"}}],"usage":{"n":-0.5,"m":0,"z":[true,false,null,"s",{},[]],"e":{}}}"#,
            1,
        ),
        (
            r#"{"choices":[{"delta":{"content":"x"}}],"usage":{"f":1.5e3}}"#,
            1,
        ),
        (
            r#"{"choices":[{"delta":{"content":"x"}}],"usage":{"n":1234567890123456789012}}"#,
            1,
        ),
        (
            r#"{"choices":[{"delta":{"content":"x"}}],"usage":{"n":-123456789012345678.9}}"#,
            1,
        ),
        (&deep, 1),
        (&too_deep, 2),
        (r#"{"choices":[{"delta":{"content":"lone \ud800"}}]}"#, 2),
        (
            r#"{"choices":[{"delta":{"content":"lone \udc00 low"}}]}"#,
            2,
        ),
        (
            r#"{"choices":[{"delta":{"content":"x"}}],"s":"\ud800\u0041"}"#,
            2,
        ),
        (
            r#"{"choices":[{"delta":{"content":"x"}}],"usage":{"n":01}}"#,
            2,
        ),
        (
            r#"{"choices":[{"delta":{"content":"x"}}],"usage":{"n":1.}}"#,
            2,
        ),
        (
            r#"{"choices":[{"delta":{"content":"x"}}],"usage":{"n":-}}"#,
            2,
        ),
        (
            r#"{"choices":[{"delta":{"content":"x"}}],"usage":{"t":tru}}"#,
            2,
        ),
        (r#"{"choices":[{"delta":{"content":"x"}},]}"#, 2),
        (r#"{"choices":[{"delta":{"content":"x"}}],}"#, 2),
        ("{\"choices\":[{\"delta\":{\"content\":\"a\tb\"}}]}", 2),
        (r#"{"choices":[{"delta":{"content":"\q"}}]}"#, 2),
        (r#"{"choices":[{"delta":{"content":"\u12"}}]}"#, 2),
        (r#"{"choices":[{"delta":{"content":"x"}}] "usage":{}}"#, 2),
        (
            r#"{"error":null,"error":null,"choices":[{"delta":{"content":"x"}}]}"#,
            2,
        ),
        (
            r#"{"choices":[{"delta":{"content":"x"}}],"usage":{"a":1,"a":2}}"#,
            1,
        ),
        (
            r#"{"choices":[{"delta":{"content":"x"}}],"citations":[" ",{"url":"","title":"\u0020"}]}"#,
            2,
        ),
    ];
    for (e, given) in edges {
        fast_events_agree(&[ev(source), ev(e), ev(source)], given);
    }
}

#[test]
fn perplexity_malformed_responses() {
    let cases: [(&str, &str); 8] = [
        ("not json", "Perplexity response is malformed"),
        (r#"{"id":"x"}"#, "missing required field `choices`"),
        (r#"{"choices":[]}"#, "invalid field `choices`: is empty"),
        (r#"{"choices":{}}"#, "invalid field `choices`"),
        (r#"{"choices":[{}]}"#, "`choices[0].message`"),
        (
            r#"{"choices":[{"message":{"content":null}}]}"#,
            "`choices[0].message.content`",
        ),
        (
            r#"{"choices":[{"message":{"content":"x"}}],"citations":[1]}"#,
            "`citations[0]`",
        ),
        (
            r#"{"choices":[{"message":{"content":"x"}}],"search_results":[5]}"#,
            "`search_results[0]`",
        ),
    ];
    for (body, want) in cases {
        let e = perplexity::parse_chat_response(body).unwrap_err();
        assert!(e.to_string().contains(want), "{body}: {e}");
    }
    let e = perplexity::parse_chat_response(
        r#"{"error":{"message":"Invalid API key","type":"invalid_request_error","code":401}}"#,
    )
    .unwrap_err();
    assert_eq!(
        e,
        WireError::Upstream {
            upstream: Upstream::Perplexity,
            message: "Invalid API key".into()
        }
    );
}

#[test]
fn perplexity_stream_end_to_end_through_sse() {
    let chunks = [
        r#"{"id":"a","model":"sonar","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        r#"{"id":"a","citations":["https://hmdb.ca/x"],"choices":[{"index":0,"delta":{"content":"Lactate "},"finish_reason":null}]}"#,
        r#"{"id":"a","citations":["https://hmdb.ca/x"],"search_results":[{"title":"HMDB","url":"https://hmdb.ca/x"}],"choices":[{"index":0,"delta":{"content":"is produced by LDH."},"finish_reason":null}]}"#,
        r#"{"id":"a","citations":["https://hmdb.ca/x"],"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
    ];
    let mut body = String::new();
    for c in chunks {
        body.push_str(&sse::sse_data(c));
    }
    body.push_str(sse::DONE);
    let bytes = body.as_bytes();
    // Deliver in awkward 7-byte chunks.
    let mut dec = sse::SseDecoder::new();
    let mut acc = StreamAccumulator::new();
    let mut seen_done = 0;
    for piece in bytes.chunks(7) {
        for ev in dec.push(piece).unwrap() {
            for item in perplexity::parse_stream_event(&ev.data) {
                if item == StreamItem::Done {
                    seen_done += 1;
                }
                acc.apply(&item);
            }
        }
    }
    assert!(dec.finish().unwrap().is_empty());
    // The `finish_reason: "stop"` chunk and the `[DONE]` line both say "complete".
    assert_eq!(seen_done, 2);
    assert!(acc.done);
    assert_eq!(acc.content, "Lactate is produced by LDH.");
    assert_eq!(
        acc.citations,
        [cite(Some("https://hmdb.ca/x"), Some("HMDB"))]
    );
}

#[test]
fn perplexity_stream_event_items() {
    assert_eq!(perplexity::parse_stream_event("[DONE]"), [StreamItem::Done]);
    assert_eq!(
        perplexity::parse_stream_event(" [DONE] "),
        [StreamItem::Done]
    );
    assert_eq!(
        perplexity::parse_stream_event(
            r#"{"citations":["https://a.org"],"choices":[{"delta":{"content":"Hi"}}]}"#
        ),
        [
            StreamItem::Delta("Hi".into()),
            StreamItem::Citations(vec![cite(Some("https://a.org"), None)])
        ]
    );
    assert_eq!(
        perplexity::parse_stream_event(r#"{"error":{"message":"rate limited"}}"#),
        [StreamItem::Error("rate limited".into())]
    );
    let items = perplexity::parse_stream_event(r#"{"choices":[{"delta":{"con"#);
    assert!(matches!(&items[..], [StreamItem::Error(m)] if m.contains("not valid JSON")));
    let items = perplexity::parse_stream_event("42");
    assert!(matches!(&items[..], [StreamItem::Error(m)] if m.contains("a number")));
    assert!(perplexity::parse_stream_event(r#"{"choices":[{"delta":{}}]}"#).is_empty());
    let items = perplexity::parse_stream_event(r#"{"citations":"x","choices":[]}"#);
    assert!(matches!(&items[..], [StreamItem::Error(m)] if m.contains("`citations`")));
}

#[test]
fn accumulator_keeps_first_error_and_merges_citations() {
    let mut acc = StreamAccumulator::new();
    acc.apply(&StreamItem::Citations(vec![cite(Some("a"), None)]));
    acc.apply(&StreamItem::Citations(vec![]));
    acc.apply(&StreamItem::Error("first".into()));
    acc.apply(&StreamItem::Error("second".into()));
    assert_eq!(acc.citations, [cite(Some("a"), None)]);
    assert_eq!(acc.error.as_deref(), Some("first"));
    assert!(!acc.done);
}

/// Decodes an SSE body in `split`-byte pieces through Perplexity's parser.
fn perplexity_stream(body: &[u8], split: usize) -> StreamAccumulator {
    let mut dec = sse::SseDecoder::new();
    let mut acc = StreamAccumulator::new();
    for piece in body.chunks(split) {
        for ev in dec.push(piece).unwrap() {
            for item in perplexity::parse_stream_event(&ev.data) {
                acc.apply(&item);
            }
        }
    }
    for ev in dec.finish().unwrap() {
        for item in perplexity::parse_stream_event(&ev.data) {
            acc.apply(&item);
        }
    }
    acc
}

/// Real Perplexity streams end with a `finish_reason` chunk and no `[DONE]`
/// (perplexityai/api-discussion#209; fixture layout in tests/fixtures/perplexity/README.md).
#[test]
fn perplexity_real_stream_without_done_is_complete() {
    let body = include_bytes!("../fixtures/perplexity/stream_no_done.sse");
    assert!(!String::from_utf8_lossy(body).contains("[DONE]"));
    for split in [1, 7, 64, body.len()] {
        let acc = perplexity_stream(body, split);
        assert!(
            acc.done,
            "split {split}: a finish_reason chunk ends the answer"
        );
        assert_eq!(acc.error, None);
        // The delta only: the cumulative `message` must not be appended again.
        assert_eq!(
            acc.content,
            "Why  did the dog sit  in the shade? Because  he didn't want to be a hot dog!"
        );
        assert_eq!(acc.citations.len(), 3);
    }
}

/// A stream cut before the `finish_reason` chunk (and without `[DONE]`) is not complete.
#[test]
fn perplexity_stream_cut_before_finish_is_not_done() {
    let body = include_str!("../fixtures/perplexity/stream_no_done.sse");
    let last_event = body.trim_end().rfind("data: ").unwrap();
    let cut = &body.as_bytes()[..last_event];
    let acc = perplexity_stream(cut, 13);
    assert!(!acc.done);
    assert_eq!(acc.content, "Why  did the dog sit  in the shade? Because");
}

#[test]
fn perplexity_finish_reason_marks_done_after_text() {
    assert_eq!(
        perplexity::parse_stream_event(
            r#"{"object":"chat.completion","choices":[{"delta":{"content":"end."},"message":{"content":"The end."},"finish_reason":"stop"}]}"#
        ),
        [StreamItem::Delta("end.".into()), StreamItem::Done]
    );
    assert_eq!(
        perplexity::parse_stream_event(r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#),
        [StreamItem::Done]
    );
    assert!(
        perplexity::parse_stream_event(r#"{"choices":[{"delta":{},"finish_reason":null}]}"#)
            .is_empty()
    );
}
