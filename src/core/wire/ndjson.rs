//! Newline-delimited JSON (one JSON document per line), the format of LightRAG's
//! `POST /query/stream`: an incremental line decoder.
//!
//! Why: like SSE, the body arrives in arbitrary chunks, so a line (or a multi-byte UTF-8
//! character inside it) may be split across chunks. The decoder buffers raw bytes and only
//! decodes complete lines, so the result does not depend on the split; a length guard bounds
//! memory when an upstream never sends a newline. Lines are returned as text; interpreting them
//! is the upstream module's job ([`super::lightrag::parse_stream_line`]).

use super::answer::WireError;

/// Default cap on one NDJSON line (1 MiB). A non-streamed LightRAG answer arrives as one line,
/// so this must hold a whole answer with its references.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// Incremental NDJSON line splitter. Accepts LF and CRLF terminators, skips blank lines.
#[derive(Debug, Clone)]
pub struct NdjsonDecoder {
    max_line: usize,
    line: Vec<u8>,
    failed: Option<WireError>,
}

impl Default for NdjsonDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl NdjsonDecoder {
    pub fn new() -> Self {
        Self::with_max_line(DEFAULT_MAX_LINE_BYTES)
    }

    /// A decoder that fails once a single line exceeds `max_line` bytes.
    pub fn with_max_line(max_line: usize) -> Self {
        NdjsonDecoder {
            max_line,
            line: Vec::new(),
            failed: None,
        }
    }

    /// Bytes held between chunks: the unfinished line (never more than the line limit).
    pub fn buffered_bytes(&self) -> usize {
        self.line.len()
    }

    /// Decodes a chunk, returning the non-blank lines it completed (terminators removed).
    /// After an error every later call returns the same error.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, WireError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let mut out = Vec::new();
        let mut rest = bytes;
        loop {
            let newline = rest.iter().position(|&b| b == b'\n');
            let (head, tail) = match newline {
                Some(pos) => (
                    rest.get(..pos).unwrap_or_default(),
                    rest.get(pos + 1..).unwrap_or_default(),
                ),
                None => (rest, &[][..]),
            };
            if self.line.len() + head.len() > self.max_line {
                let e = WireError::TooLarge {
                    what: "NDJSON line".to_string(),
                    limit: self.max_line,
                };
                self.failed = Some(e.clone());
                return Err(e);
            }
            self.line.extend_from_slice(head);
            if newline.is_none() {
                break;
            }
            if let Some(l) = self.take_line() {
                out.push(l);
            }
            rest = tail;
        }
        Ok(out)
    }

    /// Ends the stream, returning a final line that had no terminator.
    pub fn finish(mut self) -> Result<Option<String>, WireError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        Ok(self.take_line())
    }

    fn take_line(&mut self) -> Option<String> {
        let mut raw = std::mem::take(&mut self.line);
        if raw.last() == Some(&b'\r') {
            raw.pop();
        }
        let text = match String::from_utf8(raw) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        if text.trim().is_empty() {
            None
        } else {
            Some(text)
        }
    }
}

/// Splits a whole body at once (tests, small bodies).
pub fn decode_all(bytes: &[u8]) -> Result<Vec<String>, WireError> {
    let mut d = NdjsonDecoder::new();
    let mut out = d.push(bytes)?;
    out.extend(d.finish()?);
    Ok(out)
}

/// Encodes one JSON document as an NDJSON line (`serde_json` never emits raw newlines).
pub fn ndjson_line(json: &serde_json::Value) -> String {
    let mut s = json.to_string();
    s.push('\n');
    s
}
