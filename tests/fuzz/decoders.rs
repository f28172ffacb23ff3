//! The incremental stream decoders (SSE for Perplexity, NDJSON for LightRAG) fed arbitrary bytes
//! split at arbitrary points.
//!
//! What must hold: no panic; the events are those of a deliberately plain reference decoder
//! written from the module docs (whole input in hand, split into lines first), for any chunking,
//! including one byte at a time; a line over the limit is an error that sticks; and the bytes a
//! decoder keeps between chunks stay bounded by a multiple of its line limit however long the
//! stream runs (a decoder that buffers without bound lets one upstream exhaust the isolate).

use crate::gen::{cuts, split};
use cmo_edge_router::core::wire::ndjson::{self, NdjsonDecoder};
use cmo_edge_router::core::wire::sse::{self, SseDecoder, SseEvent};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;

/// Pieces of SSE and NDJSON streams, terminators in every style, a BOM, invalid and split UTF-8.
const PIECES: &[&[u8]] = &[
    b"data:",
    b"data: ",
    b"data",
    b"event:",
    b"event: message",
    b"id:",
    b"id: 7",
    b"id: a\0b",
    b"retry:",
    b"retry: 3000",
    b"retry: 3x",
    b":",
    b": keep-alive",
    b"\r",
    b"\n",
    b"\r\n",
    b"\n\n",
    b"\r\r",
    b"\xef\xbb\xbf",
    b"\xff",
    b"\xe4\xb8",
    b"\xad",
    b"[DONE]",
    b"{\"response\": \"a\"}",
    b"{",
    b"x",
    b"yz",
    b" ",
    b"\t",
    b"\0",
    b"field",
    b"datum:",
    b"DATA:",
];

/// A stream: pieces glued together, sometimes with a long run of `data:` lines and no blank line
/// (what makes an unbounded event buffer grow), sometimes random bytes.
fn stream() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        6 => prop::collection::vec(prop::sample::select(PIECES), 0..40).prop_map(|p| p.concat()),
        2 => ("[a-z]{0,12}", 1usize..200, prop::bool::ANY).prop_map(|(s, n, crlf)| {
            let line = format!("data: {s}{}", if crlf { "\r\n" } else { "\n" });
            line.repeat(n).into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => ("[a-z]{1,40}", 1usize..100).prop_map(|(s, n)| format!("{s}\n").repeat(n).into_bytes()),
    ]
    .boxed()
}

fn max_line() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 1usize..24, 1 => 24usize..256, 1 => Just(sse::DEFAULT_MAX_LINE_BYTES)]
}

/// Lines of `bytes` with CR, LF or CRLF terminators; the last element is the unterminated rest.
fn lines_any_terminator(bytes: &[u8]) -> (Vec<&[u8]>, &[u8]) {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&bytes[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&bytes[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    (lines, &bytes[start..])
}

/// The plain SSE decoder: the documented rules applied to a list of lines. Returns the events
/// and whether the stream failed (a line longer than `max`, or an event whose data grew past it).
fn sse_reference(bytes: &[u8], max: usize) -> (Vec<SseEvent>, bool) {
    let (mut lines, rest) = lines_any_terminator(bytes);
    if !rest.is_empty() {
        lines.push(rest);
    }
    let mut out = Vec::new();
    let mut ev = SseEvent::default();
    let mut has_data = false;
    for (n, raw) in lines.iter().enumerate() {
        if raw.len() > max {
            return (out, true);
        }
        let raw = if n == 0 {
            raw.strip_prefix(b"\xef\xbb\xbf".as_slice()).unwrap_or(raw)
        } else {
            raw
        };
        if raw.is_empty() {
            if has_data {
                out.push(std::mem::take(&mut ev));
            }
            ev = SseEvent::default();
            has_data = false;
            continue;
        }
        let line = String::from_utf8_lossy(raw);
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                if has_data {
                    ev.data.push('\n');
                }
                ev.data.push_str(value);
                has_data = true;
                if ev.data.len() > max {
                    return (out, true);
                }
            }
            "event" => ev.event = Some(value.to_string()),
            "id" if !value.contains('\0') => ev.id = Some(value.to_string()),
            "retry" if !value.is_empty() && value.bytes().all(|c| c.is_ascii_digit()) => {
                ev.retry = value.parse().ok();
            }
            _ => {}
        }
    }
    if has_data {
        out.push(ev);
    }
    (out, false)
}

/// Feeds `bytes` in chunks: the events of every successful push (and of `finish`), and whether
/// any call failed. Checks the retained-bytes bound after every push.
fn sse_chunked(chunks: &[&[u8]], max: usize) -> Result<(Vec<SseEvent>, bool), TestCaseError> {
    let mut d = SseDecoder::with_max_line(max);
    let mut out = Vec::new();
    // One line, one event's data and its `event` / `id` fields (lossy UTF-8 can triple a line).
    let bound = max.saturating_mul(8).saturating_add(64);
    for c in chunks {
        match d.push(c) {
            Ok(evs) => out.extend(evs),
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                prop_assert!(d.push(b"\n\n").is_err(), "the error does not stick");
                return Ok((out, true));
            }
        }
        prop_assert!(
            d.buffered_bytes() <= bound,
            "SSE decoder keeps {} bytes between chunks (line limit {max})",
            d.buffered_bytes()
        );
    }
    match d.finish() {
        Ok(evs) => out.extend(evs),
        Err(_) => return Ok((out, true)),
    }
    Ok((out, false))
}

pub fn sse_decoder() {
    crate::harness::run(
        "sse_decoder",
        (stream(), max_line(), cuts(16)),
        |(bytes, max, cuts)| {
            let (want, want_err) = sse_reference(&bytes, max);
            let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
            let (got, err) = sse_chunked(&bytewise, max)?;
            prop_assert_eq!(
                (&got, err),
                (&want, want_err),
                "byte by byte differs from the reference"
            );
            let (got, err) = sse_chunked(&split(&bytes, &cuts), max)?;
            prop_assert_eq!(err, want_err);
            if want_err {
                prop_assert!(want.starts_with(&got), "events before the error differ");
            } else {
                prop_assert_eq!(&got, &want, "chunked differs from the reference");
                // And the encoder's framing of each decoded payload decodes to the same payload.
                for ev in &got {
                    let framed = sse::sse_event(ev.event.as_deref(), &ev.data);
                    if let Ok(back) = sse::decode_all(framed.as_bytes()) {
                        prop_assert_eq!(back.len(), 1);
                        prop_assert_eq!(
                            &back[0].data,
                            &ev.data.replace("\r\n", "\n").replace('\r', "\n")
                        );
                    }
                }
            }
            Ok(())
        },
    );
}

/// The plain NDJSON splitter: LF-terminated lines, one trailing CR removed, blank lines skipped,
/// a line (CR included) longer than `max` fails the stream.
fn ndjson_reference(bytes: &[u8], max: usize) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    for seg in bytes.split(|&b| b == b'\n') {
        if seg.len() > max {
            return (out, true);
        }
        let seg = seg.strip_suffix(b"\r").unwrap_or(seg);
        let s = String::from_utf8_lossy(seg).into_owned();
        if !s.trim().is_empty() {
            out.push(s);
        }
    }
    (out, false)
}

fn ndjson_chunked(chunks: &[&[u8]], max: usize) -> Result<(Vec<String>, bool), TestCaseError> {
    let mut d = NdjsonDecoder::with_max_line(max);
    let mut out = Vec::new();
    for c in chunks {
        match d.push(c) {
            Ok(l) => out.extend(l),
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                prop_assert!(d.push(b"\n").is_err(), "the error does not stick");
                return Ok((out, true));
            }
        }
        prop_assert!(
            d.buffered_bytes() <= max,
            "NDJSON decoder keeps {} bytes (limit {max})",
            d.buffered_bytes()
        );
    }
    match d.finish() {
        Ok(l) => out.extend(l),
        Err(_) => return Ok((out, true)),
    }
    Ok((out, false))
}

pub fn ndjson_decoder() {
    crate::harness::run(
        "ndjson_decoder",
        (stream(), max_line(), cuts(16)),
        |(bytes, max, cuts): (Vec<u8>, usize, Vec<Index>)| {
            let (want, want_err) = ndjson_reference(&bytes, max);
            let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
            prop_assert_eq!(
                ndjson_chunked(&bytewise, max)?,
                (want.clone(), want_err),
                "byte by byte differs from the reference"
            );
            let (got, err) = ndjson_chunked(&split(&bytes, &cuts), max)?;
            prop_assert_eq!(err, want_err);
            if want_err {
                prop_assert!(want.starts_with(&got));
            } else {
                prop_assert_eq!(&got, &want);
                if max == ndjson::DEFAULT_MAX_LINE_BYTES {
                    prop_assert_eq!(ndjson::decode_all(&bytes).ok(), Some(want));
                }
            }
            Ok(())
        },
    );
}
