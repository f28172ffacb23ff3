//! Reading a request body within its limit, on every route that reads one.
//!
//! Why one helper: the limit used to be checked after `req.bytes()` had buffered the whole body,
//! so a chunked body without `Content-Length` could make the router hold any amount of memory
//! first, and OFREP had no limit at all. Here the body is read as a stream and each chunk is
//! counted against [`crate::core::guard::body::BodyLimit`] as it arrives; the first chunk that
//! crosses the limit ends the read with 413 (the rest is never read).

use super::http;
use super::isolate::with;
use crate::core::guard::body::{BodyLimit, TooLarge};
use futures_util::StreamExt;
use worker::{Request, Response, Result};

/// The limit when the isolate state is not loaded (`LIGHTRAG_MAX_BODY_BYTES`'s default).
const FALLBACK_LIMIT: u64 = 65_536;

/// The configured body limit.
pub fn limit() -> u64 {
    with(|i| i.config().max_body_bytes).unwrap_or(FALLBACK_LIMIT)
}

fn unreadable(e: worker::Error) -> Result<Response> {
    http::error(
        400,
        "unreadable_body",
        &format!("could not read the request body: {e}"),
    )
}

fn too_large(e: TooLarge) -> Result<Response> {
    http::error(413, "too_large", &e.to_string())
}

/// Reads the body, refusing it with 413 as soon as it crosses the configured limit (or at once
/// when its declared `Content-Length` does); 400 when it cannot be read.
pub async fn read(req: &mut Request) -> std::result::Result<Vec<u8>, Result<Response>> {
    let mut budget = BodyLimit::new(limit());
    let declared = req.headers().get("content-length").ok().flatten();
    budget.declared(declared.as_deref()).map_err(too_large)?;
    // A declared length within the limit frames the body (the HTTP layer reads exactly that
    // many bytes), so it is read in one call: streaming it chunk by chunk cost a reader, a
    // read per chunk and a lock release per request (a tenth of the router's CPU time in a
    // workerd profile, benches/profile_edge.mjs). The count is still checked.
    if declared.is_some_and(|d| d.trim().parse::<u64>().is_ok()) {
        let body = req.bytes().await.map_err(unreadable)?;
        budget.take(body.len()).map_err(too_large)?;
        return Ok(body);
    }
    let mut stream = match req.stream() {
        Ok(s) => s,
        // No body at all: what a parser will call empty.
        Err(_) => return Ok(Vec::new()),
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(unreadable)?;
        budget.take(chunk.len()).map_err(too_large)?;
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
