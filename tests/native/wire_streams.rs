//! Stream decoders: SSE and NDJSON must decode any split of a byte stream to the same result,
//! including splits inside CRLF pairs and inside multi-byte UTF-8 characters.

use cmo_edge_router::core::wire::ndjson::{self, NdjsonDecoder};
use cmo_edge_router::core::wire::sse::{self, SseDecoder, SseEvent};
use cmo_edge_router::core::wire::WireError;
use proptest::prelude::*;

fn sse_in_chunks(bytes: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
    let mut d = SseDecoder::new();
    let mut out = Vec::new();
    let mut last = 0;
    for &c in cuts {
        out.extend(d.push(&bytes[last..c]).unwrap());
        last = c;
    }
    out.extend(d.push(&bytes[last..]).unwrap());
    out.extend(d.finish().unwrap());
    out
}

fn ndjson_in_chunks(bytes: &[u8], cuts: &[usize]) -> Vec<String> {
    let mut d = NdjsonDecoder::new();
    let mut out = Vec::new();
    let mut last = 0;
    for &c in cuts {
        out.extend(d.push(&bytes[last..c]).unwrap());
        last = c;
    }
    out.extend(d.push(&bytes[last..]).unwrap());
    out.extend(d.finish().unwrap());
    out
}

/// A realistic Perplexity stream: CRLF terminators, a keep-alive comment, non-ASCII text.
const PERPLEXITY_SSE: &str = concat!(
    ": keep-alive\r\n\r\n",
    "data: {\"id\":\"a1\",\"model\":\"sonar\",\"object\":\"chat.completion.chunk\",\"created\":1735689600,",
    "\"citations\":[\"https://hmdb.ca/metabolites/HMDB0000122\"],",
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Glucose (C₆H₁₂O₆) \"},\"finish_reason\":null}]}\r\n\r\n",
    "data: {\"id\":\"a1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"is a métabolite 🧪.\"},\"finish_reason\":null}]}\r\n\r\n",
    "data: {\"id\":\"a1\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\n",
    "data: [DONE]\r\n\r\n",
);

#[test]
fn sse_decodes_a_realistic_perplexity_stream() {
    let events = sse::decode_all(PERPLEXITY_SSE.as_bytes()).unwrap();
    assert_eq!(events.len(), 4);
    assert!(events[0].data.contains("C₆H₁₂O₆"));
    assert!(events[1].data.contains("🧪"));
    assert_eq!(events[3].data, "[DONE]");
    assert!(events.iter().all(|e| e.event.is_none()));
}

#[test]
fn sse_handles_fields_multiline_data_and_line_endings() {
    let input = "\u{feff}event: update\nid: 7\nretry: 1500\ndata: line one\ndata:line two\n\n\
                 data\n\n\
                 :comment only\n\n\
                 data: cr only\r\rdata: x\r\ndata: y\r\n\r\n\
                 unknown: field\nretry: soon\nid: a\0b\ndata: z\n\n";
    let events = sse::decode_all(input.as_bytes()).unwrap();
    assert_eq!(
        events[0],
        SseEvent {
            event: Some("update".into()),
            data: "line one\nline two".into(),
            id: Some("7".into()),
            retry: Some(1500),
        }
    );
    // `data` with no colon is a data line with an empty value: an empty event.
    assert_eq!(events[1].data, "");
    assert_eq!(events[2].data, "cr only");
    assert_eq!(events[3].data, "x\ny");
    assert_eq!(events[4].data, "z");
    assert_eq!(events[4].retry, None);
    assert_eq!(events[4].id, None);
    assert_eq!(events.len(), 5);
}

#[test]
fn sse_event_without_data_is_not_dispatched() {
    let events = sse::decode_all(b"event: ping\n\nid: 3\n\n").unwrap();
    assert!(events.is_empty());
}

#[test]
fn sse_finish_delivers_an_unterminated_last_event() {
    let events = sse::decode_all(b"data: one\n\ndata: [DONE]").unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].data, "[DONE]");
    // A stream cut mid-JSON yields the partial payload, which the upstream parser reports.
    let events = sse::decode_all(b"data: {\"choices\":[{\"del").unwrap();
    assert_eq!(events[0].data, "{\"choices\":[{\"del");
}

#[test]
fn sse_utf8_split_across_chunks() {
    let text = "data: é🧪漢\n\n".as_bytes();
    for cut in 1..text.len() {
        let events = sse_in_chunks(text, &[cut]);
        assert_eq!(events.len(), 1, "cut at {cut}");
        assert_eq!(events[0].data, "é🧪漢", "cut at {cut}");
    }
}

#[test]
fn sse_crlf_split_between_chunks_is_one_terminator() {
    let events = sse_in_chunks(b"data: a\r\n\r\ndata: b\r\n\r\n", &[8, 10]);
    assert_eq!(
        events.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
}

#[test]
fn sse_line_limit_is_an_error_and_sticks() {
    let mut d = SseDecoder::with_max_line(16);
    assert!(d.push(b"data: short\n\n").is_ok());
    let err = d.push(&[b'x'; 32]).unwrap_err();
    assert!(matches!(err, WireError::TooLarge { limit: 16, .. }));
    assert!(err.to_string().contains("SSE line"));
    assert!(d.push(b"\n").is_err());
    assert!(d.finish().is_err());
}

#[test]
fn sse_line_limit_is_exact_whole_or_split() {
    // 16 bytes is within a 16-byte limit, 17 is over, however the line arrives.
    let line = |n: usize| [b"data:".as_slice(), &vec![b'x'; n - 5], b"\r\n\r\n"].concat();
    for cut in 0..=20 {
        let mut d = SseDecoder::with_max_line(16);
        let at = cut.min(line(16).len());
        let mut got = d.push(&line(16)[..at]).unwrap();
        got.extend(d.push(&line(16)[at..]).unwrap());
        assert_eq!(got.len(), 1, "cut at {cut}");
        assert_eq!(got[0].data.len(), 11, "cut at {cut}");
        let mut d = SseDecoder::with_max_line(16);
        let at = cut.min(line(17).len());
        let first = d.push(&line(17)[..at]);
        let second = d.push(&line(17)[at..]);
        assert!(first.is_err() || second.is_err(), "cut at {cut}");
        assert!(d.push(b"data: a\n\n").is_err(), "cut at {cut}");
    }
}

#[test]
fn sse_encoder_round_trips() {
    let payloads = ["{\"a\":1}", "two\nlines", "crlf\r\ninside", "", "[DONE]"];
    let mut stream = String::new();
    for p in payloads {
        stream.push_str(&sse::sse_data(p));
    }
    stream.push_str(&sse::sse_comment("keep\nalive"));
    stream.push_str(&sse::sse_event(Some("error"), "{}"));
    let events = sse::decode_all(stream.as_bytes()).unwrap();
    let datas: Vec<_> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(
        datas,
        [
            "{\"a\":1}",
            "two\nlines",
            "crlf\ninside",
            "",
            "[DONE]",
            "{}"
        ]
    );
    assert_eq!(events[5].event.as_deref(), Some("error"));
    assert_eq!(sse::sse_data("{}"), "data: {}\n\n");
    assert_eq!(sse::DONE, "data: [DONE]\n\n");
}

/// A realistic LightRAG `/query/stream` body.
const LIGHTRAG_NDJSON: &str = concat!(
    "{\"references\": [{\"reference_id\": \"1\", \"file_path\": \"papers/metabolomics_review_2024.pdf\"}]}\n",
    "{\"response\": \"Glycolysis converts glucose \"}\n",
    "{\"response\": \"to pyruvate — 2 ATP net; 代谢.\"}\r\n",
    "\n",
    "{\"response\": \"\"}\n",
);

#[test]
fn ndjson_decodes_lightrag_stream() {
    let lines = ndjson::decode_all(LIGHTRAG_NDJSON.as_bytes()).unwrap();
    assert_eq!(lines.len(), 4);
    assert!(lines[0].starts_with("{\"references\""));
    assert!(lines[2].ends_with("代谢.\"}"));
    assert!(!lines[2].ends_with('\r'));
}

#[test]
fn ndjson_last_line_without_newline_and_blank_lines() {
    let lines = ndjson::decode_all(b"\n\n{\"a\":1}\n   \n{\"b\":2}").unwrap();
    assert_eq!(lines, ["{\"a\":1}", "{\"b\":2}"]);
    assert!(ndjson::decode_all(b"").unwrap().is_empty());
}

#[test]
fn ndjson_utf8_split_across_chunks() {
    let text = "{\"response\":\"é🧪漢\"}\n".as_bytes();
    for cut in 1..text.len() {
        let lines = ndjson_in_chunks(text, &[cut]);
        assert_eq!(lines, ["{\"response\":\"é🧪漢\"}"], "cut at {cut}");
    }
}

#[test]
fn ndjson_line_limit() {
    let mut d = NdjsonDecoder::with_max_line(8);
    assert_eq!(d.push(b"12345678\n").unwrap(), ["12345678"]);
    assert!(d.push(b"1234").unwrap().is_empty());
    let err = d.push(b"56789").unwrap_err();
    assert_eq!(err.status(), 413);
    assert!(err
        .to_string()
        .contains("NDJSON line exceeds the limit of 8 bytes"));
    assert!(d.push(b"\n").is_err());
    assert!(d.finish().is_err());
}

#[test]
fn ndjson_invalid_utf8_is_replaced_not_fatal() {
    let lines = ndjson::decode_all(b"{\"a\":\"\xff\"}\n").unwrap();
    assert_eq!(lines, ["{\"a\":\"\u{fffd}\"}"]);
}

#[test]
fn ndjson_encoder() {
    let line = ndjson::ndjson_line(&serde_json::json!({"response": "a\nb"}));
    assert_eq!(line, "{\"response\":\"a\\nb\"}\n");
    assert_eq!(ndjson::decode_all(line.as_bytes()).unwrap().len(), 1);
}

fn cuts_strategy(len: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..=len, 0..12).prop_map(|mut v| {
        v.sort_unstable();
        v
    })
}

fn arbitrary_sse() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        "data: [a-zé🧪漢 {}\":,]{0,12}".prop_map(|s| s.into_bytes()),
        "data:[a-z]{0,5}".prop_map(|s| s.into_bytes()),
        "event: [a-z]{1,6}".prop_map(|s| s.into_bytes()),
        "id: [0-9]{1,3}".prop_map(|s| s.into_bytes()),
        "retry: [0-9]{1,4}".prop_map(|s| s.into_bytes()),
        ": [a-z ]{0,8}".prop_map(|s| s.into_bytes()),
        Just(Vec::new()),
    ];
    let eol = prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"\r"[..])];
    proptest::collection::vec((line, eol), 0..20).prop_map(|parts| {
        let mut out = Vec::new();
        for (l, e) in parts {
            out.extend_from_slice(&l);
            out.extend_from_slice(e);
        }
        out
    })
}

proptest! {
    #[test]
    fn sse_any_split_decodes_the_same(
        (bytes, cuts) in arbitrary_sse().prop_flat_map(|b| { let n = b.len(); (Just(b), cuts_strategy(n)) })
    ) {
        let whole = sse::decode_all(&bytes).unwrap();
        prop_assert_eq!(sse_in_chunks(&bytes, &cuts), whole);
    }

    #[test]
    fn sse_byte_by_byte_equals_whole(bytes in arbitrary_sse()) {
        let whole = sse::decode_all(&bytes).unwrap();
        let cuts: Vec<usize> = (1..bytes.len()).collect();
        prop_assert_eq!(sse_in_chunks(&bytes, &cuts), whole);
    }

    #[test]
    fn sse_round_trips_any_payloads(payloads in proptest::collection::vec("[^\r\n]{0,20}(\n[^\r\n]{0,10})?", 0..8)) {
        let stream: String = payloads.iter().map(|p| sse::sse_data(p)).collect();
        let events = sse::decode_all(stream.as_bytes()).unwrap();
        let datas: Vec<String> = events.into_iter().map(|e| e.data).collect();
        prop_assert_eq!(datas, payloads);
    }

    #[test]
    fn ndjson_any_split_decodes_the_same(
        (bytes, cuts) in proptest::collection::vec(("[a-zé🧪漢 {}\":]{0,16}", prop_oneof![Just("\n"), Just("\r\n")]), 0..12)
            .prop_map(|parts| parts.into_iter().map(|(l, e)| l + e).collect::<String>().into_bytes())
            .prop_flat_map(|b| { let n = b.len(); (Just(b), cuts_strategy(n)) })
    ) {
        let whole = ndjson::decode_all(&bytes).unwrap();
        prop_assert_eq!(ndjson_in_chunks(&bytes, &cuts), whole);
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..256), cut in 0usize..256) {
        let cut = cut.min(bytes.len());
        let mut s = SseDecoder::new();
        let _ = s.push(&bytes[..cut]);
        let _ = s.push(&bytes[cut..]);
        let _ = s.finish();
        let mut n = NdjsonDecoder::new();
        let _ = n.push(&bytes[..cut]);
        let _ = n.push(&bytes[cut..]);
        let _ = n.finish();
    }
}
