//! A direct JSON writer for the router's hot answers.
//!
//! Why: the complete chat answer was built as a `serde_json::Value` (a `BTreeMap` per object,
//! every string copied in) and then serialised: building, sorting, writing and dropping that
//! tree was ~5 % of a request's CPU in a workerd profile of the router
//! (benches/profile_edge.mjs). Written straight into one buffer, the same document costs a
//! fraction of that. Strings and floats still go through serde_json's own serializer, so
//! escapes and number formatting are exactly what `serde_json::to_string` writes; callers write
//! keys in sorted order (what the `Value` path gave, serde_json's `Map` being a `BTreeMap`),
//! and `tests/native/wire_front_door.rs` checks the bytes against that path.

use serde::Serializer as _;

/// A JSON document being written: punctuation and keys as raw text, values escaped.
pub(crate) struct JsonOut {
    buf: Vec<u8>,
}

impl JsonOut {
    /// An empty document with room for `capacity` bytes.
    pub(crate) fn with_capacity(capacity: usize) -> JsonOut {
        JsonOut {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// Raw JSON text (punctuation, literal keys): the caller's text must be valid JSON there.
    pub(crate) fn raw(&mut self, text: &str) -> &mut Self {
        self.buf.extend_from_slice(text.as_bytes());
        self
    }

    /// A string value, escaped as serde_json escapes it.
    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        // Writing into a Vec cannot fail.
        let _ = serde_json::Serializer::new(&mut self.buf).serialize_str(s);
        self
    }

    /// A string value or `null`.
    pub(crate) fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => self.raw("null"),
        }
    }

    /// An unsigned integer.
    pub(crate) fn u64(&mut self, n: u64) -> &mut Self {
        let _ = serde_json::Serializer::new(&mut self.buf).serialize_u64(n);
        self
    }

    /// A float as serde_json writes it (`null` when not finite), or `null` for `None`.
    pub(crate) fn opt_f64(&mut self, x: Option<f64>) -> &mut Self {
        match x {
            Some(x) => {
                let _ = serde_json::Serializer::new(&mut self.buf).serialize_f64(x);
                self
            }
            None => self.raw("null"),
        }
    }

    /// A boolean.
    pub(crate) fn bool(&mut self, b: bool) -> &mut Self {
        self.raw(if b { "true" } else { "false" })
    }

    /// The document as text.
    pub(crate) fn finish(self) -> String {
        // Only UTF-8 text was written (raw `&str`s and serde_json's output).
        String::from_utf8(self.buf).unwrap_or_default()
    }
}
