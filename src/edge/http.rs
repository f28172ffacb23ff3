//! JSON response helpers, so every answer the router gives (including errors) has the same
//! shape and content type, and building a response can never panic.

use crate::core::wire::error::error_body;
use worker::{Headers, Response, ResponseBody, Result};

/// A response with a body, status and content type.
pub fn text(status: u16, body: String, content_type: &str) -> Result<Response> {
    // Not `Response::ok`: it sets `text/plain` first, one more crossing into JS per answer.
    let resp = Response::from_body(ResponseBody::Body(body.into_bytes()))?.with_status(status);
    resp.headers().set("content-type", content_type)?;
    Ok(resp)
}

/// A JSON response with the given status.
pub fn json(status: u16, body: &serde_json::Value) -> Result<Response> {
    let text = serde_json::to_string(body).unwrap_or_else(|_| "{}".to_string());
    raw_json(status, text)
}

/// A JSON response from already-serialised text.
pub fn raw_json(status: u16, body: String) -> Result<Response> {
    text(status, body, "application/json; charset=utf-8")
}

/// A JSON error: `{"error": {"code", "message", "status"}}`.
pub fn error(status: u16, code: &str, message: &str) -> Result<Response> {
    raw_json(status, error_body(status, code, message))
}

/// 405 with `Allow`.
pub fn method_not_allowed(method: &str, path: &str, allow: &str) -> Result<Response> {
    let resp = error(
        405,
        "method_not_allowed",
        &format!("{method} is not allowed on {path}; use {allow}"),
    )?;
    resp.headers().set("allow", allow)?;
    Ok(resp)
}

/// A response of the router's own whose headers stay in Rust until it leaves: the whole
/// response, headers included, goes to the runtime in one call (`fetch::respond_own`). Why:
/// written on a `worker::Response`, every header was its own crossing into JS (a new `Headers`,
/// then content type, routing headers, request id, `nosniff` and `Vary` one by one, plus a
/// read of `Vary`): ~4 % of a request's samples in a workerd profile
/// (benches/profile_edge.mjs). The chat route's served answer is built this way.
pub struct Own {
    pub status: u16,
    pub body: String,
    /// Lowercase names, each once (as `Headers` keeps them).
    headers: Vec<(&'static str, String)>,
    /// A streamed body, sent instead of `body` ([`Own::stream`]).
    pub stream: Option<web_sys::ReadableStream>,
}

impl Own {
    /// A JSON response from already-serialised text (the content type [`raw_json`] gives).
    pub fn json(status: u16, body: String) -> Own {
        Own {
            status,
            body,
            headers: vec![(
                "content-type",
                "application/json; charset=utf-8".to_string(),
            )],
            stream: None,
        }
    }

    /// A 200 streamed as server-sent events (a committed chat stream): like a `worker::Response`
    /// with a stream body, its headers one crossing each and converted again on the way out,
    /// the streamed answer's headers cost more than its first text (benches/profile_edge.mjs
    /// --stream: ~4 % of a streamed request's samples); kept here, they go in one call too.
    pub fn event_stream(body: web_sys::ReadableStream) -> Own {
        Own {
            status: 200,
            body: String::new(),
            headers: vec![
                (
                    "content-type",
                    "text/event-stream; charset=utf-8".to_string(),
                ),
                ("cache-control", "no-cache".to_string()),
            ],
            stream: Some(body),
        }
    }

    /// The headers as one string, `name\0value\0name\0value…` (a NUL is in no valid header
    /// name or value), for the one call that builds the response.
    pub fn header_text(&self) -> String {
        let mut s = String::with_capacity(
            self.headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 2)
                .sum(),
        );
        for (k, v) in &self.headers {
            s.push_str(k);
            s.push('\0');
            s.push_str(v);
            s.push('\0');
        }
        s
    }
}

/// What a handler answers: a `worker::Response` (streams, bindings' responses, everything but
/// the hot path), or one of the router's own kept in Rust ([`Own`]).
pub enum Reply {
    Js(Response),
    Own(Own),
}

impl From<Response> for Reply {
    fn from(r: Response) -> Reply {
        Reply::Js(r)
    }
}

impl Reply {
    /// Whether the body is a stream (a streamed answer, recorded when it ends).
    pub fn is_stream(&self) -> bool {
        match self {
            Reply::Js(r) => matches!(r.body(), ResponseBody::Stream(_)),
            Reply::Own(o) => o.stream.is_some(),
        }
    }

    /// Sets a header on either kind.
    pub fn set(&mut self, name: &'static str, value: &str) -> Result<()> {
        match self {
            Reply::Js(r) => r.headers().set(name, value),
            Reply::Own(o) => o.set(name, value),
        }
    }
}

/// Header writes as `Headers` does them, on a `worker::Response`'s headers or on an [`Own`]
/// response's list: the code that writes routing headers or dresses a response on its way out
/// is one function for both.
pub trait HeaderWrite {
    /// Sets `name` (lowercase) to `value`, replacing what it had.
    fn set(&mut self, name: &'static str, value: &str) -> Result<()>;
    /// Adds `value` to `name` (lowercase): `a, b` for a list header.
    fn append(&mut self, name: &'static str, value: &str) -> Result<()>;
    /// The value of `name` (lowercase).
    fn get(&self, name: &str) -> Result<Option<String>>;
    /// Removes `name` (lowercase).
    fn delete(&mut self, name: &str) -> Result<()>;
}

impl HeaderWrite for &Headers {
    fn set(&mut self, name: &'static str, value: &str) -> Result<()> {
        Headers::set(self, name, value)
    }
    fn append(&mut self, name: &'static str, value: &str) -> Result<()> {
        Headers::append(self, name, value)
    }
    fn get(&self, name: &str) -> Result<Option<String>> {
        Headers::get(self, name)
    }
    fn delete(&mut self, name: &str) -> Result<()> {
        Headers::delete(self, name)
    }
}

impl HeaderWrite for Own {
    fn set(&mut self, name: &'static str, value: &str) -> Result<()> {
        match self.headers.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => {
                v.clear();
                v.push_str(value);
            }
            None => self.headers.push((name, value.to_string())),
        }
        Ok(())
    }
    fn append(&mut self, name: &'static str, value: &str) -> Result<()> {
        match self.headers.iter_mut().find(|(k, _)| *k == name) {
            Some((_, v)) => {
                v.push_str(", ");
                v.push_str(value);
            }
            None => self.headers.push((name, value.to_string())),
        }
        Ok(())
    }
    fn get(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone()))
    }
    fn delete(&mut self, name: &str) -> Result<()> {
        self.headers.retain(|(k, _)| *k != name);
        Ok(())
    }
}
