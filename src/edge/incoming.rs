//! The incoming request as the front door reads it: method, path and the headers its checks
//! read, taken out of JS in one call.
//!
//! Why: `worker::Request::from` reads the method, the URL and the headers object (a crossing
//! each), and every header read after it is another crossing and a string copy — the guard, the
//! CORS check, the rate limiter and the routing step read `authorization` (twice), `origin`,
//! `content-type`, `content-length`, `cookie` and `x-route-override` one by one. In a workerd
//! CPU profile of the router (benches/profile_edge.mjs) those reads were ~4 % of a chat
//! request's samples. Here `incoming.js` `front` hands them over in one string; a header
//! outside that list is still read from the request itself.
//!
//! The chat routes work on an [`Incoming`]; every other route turns it into the
//! `worker::Request` it always had ([`Incoming::into_request`]).

use wasm_bindgen::prelude::wasm_bindgen;
use worker::{Method, Result};

#[wasm_bindgen(module = "/src/edge/incoming.js")]
extern "C" {
    /// `method\0url\0` then each of [`FRONT_HEADERS`] as `+value` or `-` (absent), `\0`-joined.
    #[wasm_bindgen(js_name = front)]
    fn js_front(request: &web_sys::Request) -> String;
    /// Hides the request's `cf` getter (`fetch` module docs say why).
    #[wasm_bindgen(js_name = hideCf)]
    fn js_hide_cf(request: &web_sys::Request);
}

/// The headers read from the snapshot, in `incoming.js` `FRONT_HEADERS`' order.
const FRONT_HEADERS: [&str; 7] = [
    "authorization",
    "content-type",
    "content-length",
    "origin",
    "cookie",
    "x-route-override",
    "cf-connecting-ip",
];

/// The incoming request with its front-door facts read once.
pub struct Incoming {
    raw: web_sys::Request,
    method: Method,
    path: String,
    /// What `front` gave; the front-door headers' values are ranges of it, copied out when
    /// asked for (a string each, made up front, was part of `read`'s ~15 µs in in-worker
    /// timestamps).
    text: String,
    /// [`FRONT_HEADERS`]' values as byte ranges of `text`, same order.
    known: [Option<(usize, usize)>; FRONT_HEADERS.len()],
}

impl Incoming {
    /// Reads `raw`'s method, path and front-door headers in one call.
    pub fn read(raw: web_sys::Request) -> Incoming {
        let text = js_front(&raw);
        let mut method = Method::Get;
        let mut path = String::new();
        let mut known = [None; FRONT_HEADERS.len()];
        let mut at = 0;
        for (i, part) in text.split('\0').enumerate() {
            let start = at;
            at += part.len() + 1;
            match i {
                0 => method = method_of(part),
                1 => path = path_from_url(part),
                _ => match known.get_mut(i - 2) {
                    Some(slot) => {
                        if part.starts_with('+') {
                            *slot = Some((start + 1, start + part.len()));
                        }
                    }
                    None => break,
                },
            }
        }
        Incoming {
            raw,
            method,
            path,
            text,
            known,
        }
    }

    /// The runtime's request (its body, its abort signal).
    pub fn inner(&self) -> &web_sys::Request {
        &self.raw
    }

    pub fn method(&self) -> Method {
        self.method.clone()
    }

    /// The URL's path, as `worker::Request::path` gives it.
    pub fn path(&self) -> String {
        self.path.clone()
    }

    /// The request's headers, reading the front-door ones from the snapshot.
    pub fn headers(&self) -> Heads<'_> {
        Heads(self)
    }

    /// The `worker::Request` of every route but the chat routes, its `cf` hidden first (the
    /// chat routes never read it, so theirs is left alone).
    pub fn into_request(self) -> worker::Request {
        js_hide_cf(&self.raw);
        worker::Request::from(self.raw)
    }
}

/// [`Incoming::headers`]: `get` and `entries` as `worker::Headers` has them.
pub struct Heads<'a>(&'a Incoming);

impl Heads<'_> {
    /// The value of header `name` (lowercase).
    pub fn get(&self, name: &str) -> Result<Option<String>> {
        match FRONT_HEADERS.iter().position(|h| *h == name) {
            Some(i) => {
                Ok(self.0.known[i].and_then(|(a, b)| self.0.text.get(a..b).map(str::to_string)))
            }
            None => self.0.raw.headers().get(name).map_err(worker::Error::from),
        }
    }

    /// Every header, as the runtime lists them (for the conditional routing rules).
    pub fn entries(&self) -> impl Iterator<Item = (String, String)> {
        worker::Headers(self.0.raw.headers()).entries()
    }
}

/// The method named `m`, as `worker::Method::from` reads it (worker 0.8.7, src/http.rs:
/// uppercased, anything unknown is GET) without its two allocations.
fn method_of(m: &str) -> Method {
    const NAMED: [(&str, Method); 9] = [
        ("HEAD", Method::Head),
        ("POST", Method::Post),
        ("PUT", Method::Put),
        ("PATCH", Method::Patch),
        ("DELETE", Method::Delete),
        ("OPTIONS", Method::Options),
        ("CONNECT", Method::Connect),
        ("TRACE", Method::Trace),
        ("REPORT", Method::Report),
    ];
    NAMED
        .into_iter()
        .find(|(name, _)| m.eq_ignore_ascii_case(name))
        .map_or(Method::Get, |(_, method)| method)
}

/// The path of `url` without query or fragment: `worker`'s `path_from_url` (worker 0.8.7,
/// src/request.rs), which `worker::Request::path` gives.
fn path_from_url(url: &str) -> String {
    let host_start = match url.find("://") {
        Some(i) => i + 3,
        None => {
            return if url.starts_with('/') {
                url.to_string()
            } else {
                "/".to_string() + url
            }
        }
    };
    match url[host_start..].find('/') {
        Some(i) => {
            let path = &url[host_start + i..];
            path[..path.find(['?', '#']).unwrap_or(path.len())].to_string()
        }
        None => "/".to_string(),
    }
}
