//! Server-sent events (the `text/event-stream` format of the WHATWG HTML standard): an
//! incremental decoder for Perplexity's streamed answers and an encoder for the router's own
//! OpenAI-compatible stream.
//!
//! Why incremental and byte-based: the network hands the Worker arbitrary chunks. An event, a
//! CRLF pair or a multi-byte UTF-8 character may be split between two chunks. The decoder
//! buffers raw bytes and only decodes complete lines (line terminators are ASCII, so a complete
//! line never ends inside a UTF-8 sequence), which makes the output independent of how the
//! stream was split. Two guards bound memory against a misbehaving upstream: one line may not
//! exceed the limit, and neither may one event's data (its `data:` lines joined), which would
//! otherwise grow without bound over an endless run of short `data:` lines with no blank line.

use super::answer::WireError;

/// Default cap on one SSE line, and on one event's data (1 MiB): far above any real chunk, far
/// below isolate memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// The terminal line of an OpenAI/Perplexity stream.
pub const DONE: &str = "data: [DONE]\n\n";

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, when the event set one (the default type is "message").
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` field, when this event set one.
    pub id: Option<String>,
    /// The `retry:` field, when this event set a valid one (milliseconds).
    pub retry: Option<u64>,
}

/// Incremental SSE decoder. Feed it chunks with [`SseDecoder::push`]; call
/// [`SseDecoder::finish`] at the end of the body.
#[derive(Debug, Clone)]
pub struct SseDecoder {
    max_line: usize,
    line: Vec<u8>,
    /// The previous byte was CR: a following LF belongs to the same terminator (CRLF), even if
    /// it arrives in the next chunk.
    after_cr: bool,
    /// No line has been completed yet (a UTF-8 BOM is stripped from the first line only).
    first_line: bool,
    data: String,
    has_data: bool,
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    failed: Option<WireError>,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::with_max_line(DEFAULT_MAX_LINE_BYTES)
    }

    /// A decoder that fails once a single line, or the data of a single event, exceeds
    /// `max_line` bytes.
    pub fn with_max_line(max_line: usize) -> Self {
        SseDecoder {
            max_line,
            line: Vec::new(),
            after_cr: false,
            first_line: true,
            data: String::new(),
            has_data: false,
            event: None,
            id: None,
            retry: None,
            failed: None,
        }
    }

    /// Bytes held between chunks: the unfinished line and the event being assembled (its data,
    /// `event` and `id`). What a caller or a test checks to know memory stays bounded.
    pub fn buffered_bytes(&self) -> usize {
        self.line.len()
            + self.data.len()
            + self.event.as_ref().map_or(0, String::len)
            + self.id.as_ref().map_or(0, String::len)
    }

    /// Decodes a chunk, returning the events it completed (possibly none). After an error
    /// (a line over the limit) every later call returns the same error.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, WireError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.lines(bytes) {
            Ok(out) => Ok(out),
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// [`SseDecoder::push`]'s work: a line at a time, found by one search for its end (a loop
    /// pushing each byte into `line` was ~5 µs of a ~1 KB event in workerd,
    /// docs/performance.md); a line whole in the chunk is read where it lies, and only a line
    /// split across chunks is gathered in `line`.
    fn lines(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, WireError> {
        let mut out = Vec::new();
        let mut rest = bytes;
        // A CR ended the last chunk: a LF opening this one ends the same line.
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while !rest.is_empty() {
            let Some(end) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
                self.gather(rest)?;
                break;
            };
            let run = &rest[..end];
            let cr = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let got = if self.line.is_empty() {
                self.fits(run.len())?;
                self.process_line(run)?
            } else {
                self.gather(run)?;
                // Taken and put back: the buffer keeps its capacity for the next split line.
                let mut line = std::mem::take(&mut self.line);
                let got = self.process_line(&line);
                line.clear();
                self.line = line;
                got?
            };
            out.extend(got);
        }
        Ok(out)
    }

    /// Adds the bytes of an unfinished line.
    fn gather(&mut self, run: &[u8]) -> Result<(), WireError> {
        self.fits(self.line.len() + run.len())?;
        self.line.extend_from_slice(run);
        Ok(())
    }

    /// Whether a line of `len` bytes is within the limit.
    fn fits(&self, len: usize) -> Result<(), WireError> {
        if len > self.max_line {
            return Err(WireError::TooLarge {
                what: "SSE line".to_string(),
                limit: self.max_line,
            });
        }
        Ok(())
    }

    /// Ends the stream. An unterminated last line is processed, and an event whose blank-line
    /// terminator never came is still dispatched: servers that close right after their last
    /// `data:` line are common, and a payload cut mid-way then fails to parse downstream and
    /// is reported as a truncated stream rather than silently dropped.
    pub fn finish(mut self) -> Result<Vec<SseEvent>, WireError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut out = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            if let Some(ev) = self.process_line(&line)? {
                out.push(ev);
            }
        }
        if let Some(ev) = self.dispatch() {
            out.push(ev);
        }
        Ok(out)
    }

    fn process_line(&mut self, raw: &[u8]) -> Result<Option<SseEvent>, WireError> {
        let mut raw = raw;
        if self.first_line {
            self.first_line = false;
            if let Some(rest) = raw.strip_prefix(b"\xEF\xBB\xBF".as_slice()) {
                raw = rest;
            }
        }
        if raw.is_empty() {
            return Ok(self.dispatch());
        }
        let line = String::from_utf8_lossy(raw);
        if line.starts_with(':') {
            return Ok(None); // comment / keep-alive
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "data" => {
                let grown = self.data.len() + usize::from(self.has_data) + value.len();
                if grown > self.max_line {
                    return Err(WireError::TooLarge {
                        what: "SSE event data".to_string(),
                        limit: self.max_line,
                    });
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            "retry" if !value.is_empty() && value.bytes().all(|c| c.is_ascii_digit()) => {
                self.retry = value.parse().ok();
            }
            // Unknown fields, an `id` containing NUL and a non-numeric `retry` are ignored,
            // per the standard.
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        let id = self.id.take();
        let retry = self.retry.take();
        if !self.has_data {
            self.data.clear();
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
            id,
            retry,
        })
    }
}

/// Decodes a whole body at once (tests, small bodies).
pub fn decode_all(bytes: &[u8]) -> Result<Vec<SseEvent>, WireError> {
    let mut d = SseDecoder::new();
    let mut out = d.push(bytes)?;
    out.extend(d.finish()?);
    Ok(out)
}

/// Frames a payload as one SSE `data` event. A payload containing line breaks is split over
/// several `data:` lines so the decoder reassembles it exactly.
pub fn sse_data(json: &str) -> String {
    sse_event(None, json)
}

/// Frames a payload as one SSE event with an optional `event:` type.
pub fn sse_event(event: Option<&str>, data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 16);
    if let Some(ev) = event {
        out.push_str("event: ");
        out.push_str(&ev.replace(['\r', '\n'], " "));
        out.push('\n');
    }
    let normalised = data.replace("\r\n", "\n").replace('\r', "\n");
    for line in normalised.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

/// An SSE comment line, useful as a keep-alive that clients ignore.
pub fn sse_comment(text: &str) -> String {
    format!(": {}\n\n", text.replace(['\r', '\n'], " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 8 item 11: every `data:` line was within the line limit, so an upstream that sent
    /// short `data:` lines and never a blank line grew the event buffer without bound.
    #[test]
    fn many_short_data_lines_cannot_grow_the_event_past_the_limit() {
        let mut d = SseDecoder::with_max_line(64);
        let mut failed = None;
        for _ in 0..10_000 {
            match d.push(b"data: 0123456789\n") {
                Ok(events) => assert!(events.is_empty()),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
            assert!(
                d.buffered_bytes() <= 2 * 64,
                "{} bytes held",
                d.buffered_bytes()
            );
        }
        assert_eq!(
            failed,
            Some(WireError::TooLarge {
                what: "SSE event data".into(),
                limit: 64
            })
        );
        assert!(d.push(b"\n\n").is_err(), "the error sticks");
    }

    #[test]
    fn event_data_up_to_the_limit_is_delivered() {
        // Six lines of 10 bytes joined by five newlines: 65 bytes.
        let one = "data: 0123456789\n".repeat(6) + "\n";
        assert!(SseDecoder::with_max_line(64).push(one.as_bytes()).is_err());
        let mut d = SseDecoder::with_max_line(65);
        let events = d.push(one.as_bytes()).unwrap_or_default();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.len(), 65);
        // The limit is per event: the next one starts from empty.
        assert_eq!(d.push(one.as_bytes()).map(|e| e.len()), Ok(1));
    }
}
