//! The byte budget of a request body, checked while it is read.
//!
//! Why: a body sent with chunked transfer encoding has no `Content-Length`, so checking the size
//! after buffering it lets a client make the router hold any amount of memory first. The edge
//! feeds each chunk's length to [`BodyLimit::take`] as it arrives and answers 413 at the first
//! chunk that crosses the limit; a declared length over the limit is refused before reading.

use std::fmt;

/// A body crossed its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    pub limit: u64,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "request body exceeds the limit of {} bytes (LIGHTRAG_MAX_BODY_BYTES)",
            self.limit
        )
    }
}

/// Bytes read so far against a limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit {
    limit: u64,
    read: u64,
}

impl BodyLimit {
    pub fn new(limit: u64) -> BodyLimit {
        BodyLimit { limit, read: 0 }
    }

    /// Checks a `Content-Length` header before reading: a declared length over the limit is
    /// refused at once. An absent or unparsable header proves nothing (the reading checks).
    pub fn declared(&self, content_length: Option<&str>) -> Result<(), TooLarge> {
        match content_length.and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(n) if n > self.limit => Err(self.too_large()),
            _ => Ok(()),
        }
    }

    /// Counts a chunk of `n` bytes; an error once the total is over the limit.
    pub fn take(&mut self, n: usize) -> Result<(), TooLarge> {
        self.read = self.read.saturating_add(n as u64);
        if self.read > self.limit {
            Err(self.too_large())
        } else {
            Ok(())
        }
    }

    /// Bytes counted so far.
    pub fn read(&self) -> u64 {
        self.read
    }

    fn too_large(&self) -> TooLarge {
        TooLarge { limit: self.limit }
    }
}
