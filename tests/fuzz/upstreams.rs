//! Upstream-reply targets: LightRAG's `POST /query` JSON and `/query/stream` NDJSON lines,
//! Perplexity's chat JSON and SSE events — shaped like the captured replies in
//! `tests/fixtures/` (which seed the generators) and then damaged.
//!
//! What must hold: no panic; a refused reply is an error value with a message; an accepted
//! answer re-encoded in the upstream's own format parses back to the same answer; a stream read
//! through its incremental decoder gives the same answer whatever the chunking.

use crate::gen::{any_json, apply, body, cuts, edit, hostile_string, object, scalar, split, Edit};
use cmo_edge_router::core::answer::{AnswerHead, Judgement, NoContextDetector};
use cmo_edge_router::core::wire::ndjson::NdjsonDecoder;
use cmo_edge_router::core::wire::perplexity_query;
use cmo_edge_router::core::wire::sse::SseDecoder;
use cmo_edge_router::core::wire::{
    lightrag, perplexity, StreamAccumulator, StreamItem, UpstreamAnswer,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Value};

const LIGHTRAG_REPLIES: &[&str] = &[
    include_str!("../fixtures/lightrag/query_answer.json"),
    include_str!("../fixtures/lightrag/query_answer_no_refs.json"),
    include_str!("../fixtures/lightrag/query_no_context.json"),
    include_str!("../fixtures/lightrag/query_llm_down.json"),
    include_str!("../fixtures/lightrag/422_too_short.json"),
    include_str!("../fixtures/lightrag/403_invalid_api_key.json"),
];
const LIGHTRAG_STREAMS: &[&str] = &[
    include_str!("../fixtures/lightrag/query_stream_answer.ndjson"),
    include_str!("../fixtures/lightrag/query_stream_cut.ndjson"),
    include_str!("../fixtures/lightrag/query_stream_llm_down.ndjson"),
    include_str!("../fixtures/lightrag/query_stream_cache_hit.ndjson"),
];
const PERPLEXITY_STREAM: &str = include_str!("../fixtures/perplexity/stream_no_done.sse");

fn fixture_values(texts: &'static [&'static str]) -> BoxedStrategy<Value> {
    let docs: Vec<Value> = texts
        .iter()
        .flat_map(|t| t.lines())
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    prop::sample::select(docs).boxed()
}

fn text() -> BoxedStrategy<Value> {
    prop_oneof![4 => "[A-Za-z .\\[\\]0-9#\n]{0,40}".prop_map(Value::String), 2 => hostile_string().prop_map(Value::String), 1 => scalar()].boxed()
}

fn path() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => "[a-z_]{1,12}\\.(txt|pdf)".prop_map(Value::String),
        2 => "https?://[a-z.]{1,12}/[a-z]{0,6}".prop_map(Value::String),
        1 => prop::sample::select(vec!["", " ", "http://", " https://x.example "]).prop_map(|s| json!(s)),
        1 => scalar(),
    ]
    .boxed()
}

fn references() -> BoxedStrategy<Value> {
    let reference = object(vec![
        (
            "reference_id",
            prop_oneof![(1u32..9).prop_map(|n| json!(n.to_string())), scalar()].boxed(),
        ),
        ("file_path", path()),
        ("content", prop_oneof![Just(Value::Null), text()].boxed()),
    ]);
    prop_oneof![
        8 => prop::collection::vec(prop_oneof![8 => reference, 1 => any_json()], 0..4).prop_map(Value::Array),
        1 => scalar(),
    ]
    .boxed()
}

fn lightrag_reply() -> BoxedStrategy<Value> {
    prop_oneof![
        2 => fixture_values(LIGHTRAG_REPLIES),
        6 => object(vec![
            ("response", text()),
            ("references", references()),
            ("response_time", scalar()),
            ("llm_generated", any::<bool>().prop_map(Value::Bool).boxed()),
            ("error", prop_oneof![Just(Value::Null), text()].boxed()),
            ("detail", any_json()),
        ]),
        1 => any_json(),
    ]
    .boxed()
}

fn check_answer(a: &UpstreamAnswer) -> Result<(), TestCaseError> {
    for (i, c) in a.citations.iter().enumerate() {
        prop_assert!(c.url.is_some() || c.title.is_some(), "empty citation");
        prop_assert!(!a.citations[..i].contains(c), "duplicate citation {:?}", c);
    }
    // The no-context check always decides a complete answer.
    let d = NoContextDetector::new(["not enough information"]);
    let j = d.judge(&AnswerHead {
        text: &a.content,
        llm_generated: a.llm_generated,
        complete: true,
    });
    prop_assert_ne!(j, Judgement::Undecided);
    // /query's confidence scores: finite, and no annotation left in the text.
    let s = perplexity_query::extract_confidence(&a.content);
    prop_assert!(s.confidence_scores.values().all(|x| x.is_finite()));
    prop_assert!(s
        .confidence_scores
        .keys()
        .all(|k| k.chars().all(|c| c.is_ascii_digit())));
    let lower = s.content.to_lowercase();
    prop_assert!(
        !lower.contains("(confidence score:") || {
            // Only a malformed one (no number, or no closing paren) may remain.
            lower.match_indices("(confidence score:").all(|(i, _)| {
                !lower[i + 18..]
                    .trim_start()
                    .starts_with(|c: char| c.is_ascii_digit() || c == '.')
                    || !lower[i..].contains(')')
            })
        },
        "annotation left in {:?}",
        s.content
    );
    Ok(())
}

pub fn lightrag_reply_json() {
    crate::harness::run("lightrag_reply", body(lightrag_reply()), |bytes| {
        let text = String::from_utf8_lossy(&bytes);
        match lightrag::parse_query_response(&text) {
            Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
            Ok(a) => {
                check_answer(&a)?;
                for c in &a.citations {
                    prop_assert!(c
                        .title
                        .as_deref()
                        .is_some_and(|t| !t.is_empty() && t.trim() == t));
                }
                let refs: Vec<Value> = a
                    .citations
                    .iter()
                    .map(|c| json!({"reference_id": "1", "file_path": c.title}))
                    .collect();
                let again = lightrag::parse_query_response(
                    &json!({"response": a.content, "references": refs, "llm_generated": a.llm_generated})
                        .to_string(),
                )
                .map_err(|e| TestCaseError::fail(format!("re-encoded reply refused: {e}")))?;
                prop_assert_eq!(again, a);
            }
        }
        Ok(())
    });
}

fn accumulate(
    items: impl IntoIterator<Item = StreamItem>,
) -> Result<StreamAccumulator, TestCaseError> {
    let mut acc = StreamAccumulator::new();
    for it in items {
        match &it {
            StreamItem::Delta(t) => prop_assert!(!t.is_empty(), "empty delta"),
            StreamItem::Error(e) => prop_assert!(!e.trim().is_empty(), "error without a message"),
            StreamItem::Citations(c) => {
                for x in c {
                    prop_assert!(x.url.is_some() || x.title.is_some(), "empty citation");
                }
            }
            StreamItem::Done | StreamItem::NotGenerated => {}
        }
        acc.apply(&it);
    }
    Ok(acc)
}

fn lightrag_line() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => fixture_values(LIGHTRAG_STREAMS),
        2 => object(vec![("references", references())]),
        4 => object(vec![("response", text())]),
        1 => object(vec![("error", text())]),
        1 => object(vec![("progress", any_json()), ("response_time", scalar())]),
        1 => any_json(),
    ]
    .boxed()
}

/// One stream line: serialised, maybe damaged, with an LF or CRLF terminator (or blank lines).
fn lines_body(line: BoxedStrategy<Value>) -> BoxedStrategy<Vec<u8>> {
    prop::collection::vec(
        (
            line,
            prop::bool::weighted(0.2),
            prop::collection::vec(edit(), 1..3),
            0u8..8,
        ),
        0..10,
    )
    .prop_map(|lines| {
        let mut out = Vec::new();
        for (v, damaged, edits, term) in lines {
            let mut b = serde_json::to_vec(&v).unwrap_or_default();
            if damaged {
                b = apply(b, &edits);
            }
            out.extend(b);
            out.extend_from_slice(match term {
                0 => b"\r\n",
                1 => b"\n\n",
                2 => b"",
                _ => b"\n",
            });
        }
        out
    })
    .boxed()
}

fn ndjson_lines(bytes: &[u8], cuts: &[Index]) -> Result<Vec<String>, TestCaseError> {
    let mut d = NdjsonDecoder::new();
    let mut out = Vec::new();
    for chunk in split(bytes, cuts) {
        out.extend(
            d.push(chunk)
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
        );
    }
    out.extend(d.finish().map_err(|e| TestCaseError::fail(e.to_string()))?);
    Ok(out)
}

pub fn lightrag_stream() {
    crate::harness::run(
        "lightrag_stream",
        (lines_body(lightrag_line()), cuts(12)),
        |(bytes, cuts)| {
            let whole = ndjson_lines(&bytes, &[])?;
            let chunked = ndjson_lines(&bytes, &cuts)?;
            prop_assert_eq!(&whole, &chunked, "lines depend on the chunking");
            let acc = accumulate(chunked.iter().flat_map(|l| lightrag::parse_stream_line(l)))?;
            check_answer(&UpstreamAnswer {
                content: acc.content.clone(),
                citations: acc.citations.clone(),
                llm_generated: acc.llm_generated,
            })?;
            prop_assert!(!acc.done, "LightRAG has no end marker");
            Ok(())
        },
    );
}

fn choice(with_delta: bool) -> BoxedStrategy<Value> {
    let msg = object(vec![
        (
            "role",
            prop_oneof![Just(json!("assistant")), scalar()].boxed(),
        ),
        ("content", text()),
    ]);
    let finish = prop_oneof![
        4 => Just(Value::Null),
        2 => prop::sample::select(vec!["stop", "length", ""]).prop_map(|s| json!(s)),
        1 => scalar(),
    ]
    .boxed();
    let mut fields = vec![
        ("index", prop_oneof![Just(json!(0)), scalar()].boxed()),
        ("finish_reason", finish),
        (
            "message",
            prop_oneof![6 => msg.clone(), 1 => any_json()].boxed(),
        ),
    ];
    if with_delta {
        fields.push(("delta", prop_oneof![6 => msg, 1 => any_json()].boxed()));
    }
    object(fields)
}

fn sources() -> Vec<(&'static str, BoxedStrategy<Value>)> {
    let url = prop_oneof![
        4 => "https://[a-z]{1,8}\\.example/[a-z]{0,4}".prop_map(Value::String),
        1 => prop::sample::select(vec!["", " ", "https://a.example/"]).prop_map(|s| json!(s)),
        1 => scalar(),
    ]
    .boxed();
    let result = object(vec![
        ("title", text()),
        ("url", url.clone()),
        (
            "date",
            prop_oneof![Just(json!("2025-03-01")), scalar()].boxed(),
        ),
    ]);
    vec![
        (
            "citations",
            prop_oneof![
                6 => prop::collection::vec(prop_oneof![6 => url, 1 => result.clone(), 1 => scalar()], 0..4).prop_map(Value::Array),
                1 => scalar(),
            ]
            .boxed(),
        ),
        (
            "search_results",
            prop_oneof![
                6 => prop::collection::vec(prop_oneof![6 => result, 1 => scalar()], 0..4).prop_map(Value::Array),
                1 => scalar(),
            ]
            .boxed(),
        ),
    ]
}

fn perplexity_reply(with_delta: bool) -> BoxedStrategy<Value> {
    let error = prop_oneof![
        Just(Value::Null),
        object(vec![
            ("message", text()),
            ("type", text()),
            ("code", scalar())
        ]),
        text(),
    ]
    .boxed();
    let mut fields = vec![
        ("id", text()),
        ("model", prop_oneof![Just(json!("sonar")), text()].boxed()),
        (
            "object",
            prop::sample::select(vec!["chat.completion", "chat.completion.chunk"])
                .prop_map(|s| json!(s))
                .boxed(),
        ),
        (
            "choices",
            prop_oneof![
                8 => prop::collection::vec(choice(with_delta), 0..3).prop_map(Value::Array),
                1 => scalar(),
            ]
            .boxed(),
        ),
        ("usage", any_json()),
    ];
    fields.extend(sources());
    let plain = object(fields);
    prop_oneof![
        8 => plain,
        1 => object(vec![("error", error)]),
        1 => any_json(),
    ]
    .boxed()
}

pub fn perplexity_reply_json() {
    crate::harness::run("perplexity_reply", body(perplexity_reply(false)), |bytes| {
        let text = String::from_utf8_lossy(&bytes);
        match perplexity::parse_chat_response(&text) {
            Err(e) => prop_assert!(!e.to_string().trim().is_empty()),
            Ok(a) => {
                check_answer(&a)?;
                let results: Vec<Value> = a
                    .citations
                    .iter()
                    .map(|c| json!({"url": c.url, "title": c.title}))
                    .collect();
                let again = perplexity::parse_chat_response(
                    &json!({
                        "object": "chat.completion",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": a.content}}],
                        "search_results": results,
                    })
                    .to_string(),
                )
                .map_err(|e| TestCaseError::fail(format!("re-encoded reply refused: {e}")))?;
                prop_assert_eq!(again, a);
            }
        }
        Ok(())
    });
}

/// One SSE event as Perplexity (or a proxy in front of it) might frame it.
#[derive(Debug, Clone)]
enum Frame {
    Data(Value, Option<Vec<Edit>>),
    Fixture(usize),
    Done,
    Comment,
}

fn frames() -> BoxedStrategy<Vec<(Frame, bool)>> {
    let n_fixture = PERPLEXITY_STREAM
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .count();
    let frame = prop_oneof![
        6 => (perplexity_reply(true), prop::option::weighted(0.2, prop::collection::vec(edit(), 1..3)))
            .prop_map(|(v, e)| Frame::Data(v, e)),
        3 => (0..n_fixture.max(1)).prop_map(Frame::Fixture),
        1 => Just(Frame::Done),
        1 => Just(Frame::Comment),
    ];
    prop::collection::vec((frame, any::<bool>()), 0..8).boxed()
}

fn sse_bytes(frames: &[(Frame, bool)]) -> Vec<u8> {
    let fixtures: Vec<&str> = PERPLEXITY_STREAM
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .collect();
    let mut out = Vec::new();
    for (f, crlf) in frames {
        let mut ev = match f {
            Frame::Data(v, edits) => {
                let mut b = serde_json::to_vec(v).unwrap_or_default();
                if let Some(e) = edits {
                    b = apply(b, e);
                }
                let mut ev = b"data: ".to_vec();
                ev.extend(b);
                ev.extend_from_slice(b"\n\n");
                ev
            }
            Frame::Fixture(i) => format!("{}\n\n", fixtures.get(*i).unwrap_or(&"")).into_bytes(),
            Frame::Done => b"data: [DONE]\n\n".to_vec(),
            Frame::Comment => b": keep-alive\n\n".to_vec(),
        };
        if *crlf {
            ev = String::from_utf8_lossy(&ev)
                .replace('\n', "\r\n")
                .into_bytes();
        }
        out.extend(ev);
    }
    out
}

fn sse_items(bytes: &[u8], cuts: &[Index]) -> Result<Vec<StreamItem>, TestCaseError> {
    let mut d = SseDecoder::new();
    let mut events = Vec::new();
    for chunk in split(bytes, cuts) {
        events.extend(
            d.push(chunk)
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
        );
    }
    events.extend(d.finish().map_err(|e| TestCaseError::fail(e.to_string()))?);
    Ok(events
        .iter()
        .flat_map(|e| perplexity::parse_stream_event(&e.data))
        .collect())
}

pub fn perplexity_stream() {
    crate::harness::run(
        "perplexity_stream",
        (frames(), cuts(12)),
        |(frames, cuts)| {
            let bytes = sse_bytes(&frames);
            let whole = sse_items(&bytes, &[])?;
            let chunked = sse_items(&bytes, &cuts)?;
            prop_assert_eq!(&whole, &chunked, "items depend on the chunking");
            let acc = accumulate(chunked)?;
            check_answer(&UpstreamAnswer {
                content: acc.content.clone(),
                citations: acc.citations.clone(),
                llm_generated: acc.llm_generated,
            })?;
            // An undamaged stream is complete exactly when it carried [DONE] or a finish_reason.
            if frames
                .iter()
                .all(|(f, _)| !matches!(f, Frame::Data(_, Some(_))))
            {
                let marker = frames.iter().any(|(f, _)| match f {
                    Frame::Done => true,
                    Frame::Fixture(_) => false,
                    Frame::Data(v, _) => {
                        v.get("error").is_none_or(Value::is_null)
                            && v["choices"][0]["finish_reason"]
                                .as_str()
                                .is_some_and(|r| !r.is_empty())
                            && perplexity::parse_citations(
                                v.as_object().unwrap_or(&Default::default()),
                            )
                            .is_ok()
                    }
                    Frame::Comment => false,
                });
                let fixture_end = frames.iter().any(|(f, _)| matches!(f, Frame::Fixture(i) if PERPLEXITY_STREAM
                .split("\n\n").filter(|e| !e.trim().is_empty()).nth(*i).is_some_and(|e| e.contains("\"finish_reason\": \"stop\""))));
                prop_assert_eq!(acc.done, marker || fixture_end, "completion marker misread");
            }
            Ok(())
        },
    );
}
