//! CORS on the chat and OFREP routes: the preflight answer and the headers of actual responses
//! for origins on `ROUTER_ALLOWED_ORIGINS` ([`crate::core::guard::cors`]). Other origins get
//! no CORS header, so the browser keeps the response from the calling page.

use super::isolate::with;
use crate::core::guard::cors::{self, AllowedOrigins};
use worker::{Request, Response, Result};

/// The routes a page may call cross-origin: the two front doors and OFREP.
pub fn is_cors_route(segs: &[&str]) -> bool {
    matches!(
        segs,
        ["v1", "chat", "completions"] | ["query"] | ["ofrep", "v1", "evaluate", "flags", ..]
    )
}

fn origins() -> AllowedOrigins {
    with(|i| i.config().allowed_origins.clone()).unwrap_or_default()
}

fn origin(req: &Request) -> Option<String> {
    req.headers().get("origin").ok().flatten()
}

/// Headers for an actual response to a listed origin (`origin`: the request's header).
pub fn response_headers(origin: Option<String>) -> Option<[(&'static str, String); 2]> {
    let o = origin?;
    cors::response_headers(&origins(), Some(&o))
}

/// `OPTIONS` on a CORS route: 204 with `Allow`, plus the preflight headers for a listed origin.
pub fn preflight(req: &Request) -> Result<Response> {
    let r = Response::empty()?.with_status(204);
    let h = r.headers();
    h.set("allow", cors::ALLOW_METHODS)?;
    let o = origin(req);
    if let Some(headers) = cors::preflight_headers(&origins(), o.as_deref()) {
        for (k, v) in headers {
            h.set(k, &v)?;
        }
    }
    Ok(r)
}
