//! The front door's checks at the edge: who is calling (client / admin token), what they send
//! (`application/json` only), and what every response carries on its way out (`nosniff`,
//! the preview's CSP, CORS for listed origins, operator-only routing detail). The rules are
//! [`crate::core::guard`]; this module reads headers and secrets and writes headers.

use super::cors;
use super::fetch;
use super::http::{self, HeaderWrite, Reply};
use super::incoming::Incoming;
use super::isolate::{secret, with};
use crate::core::guard::client::{check_client, ClientAuth, ClientCheck};
use crate::core::guard::deployment::{
    Deployment, SetupFacts, UrlPolicy, CLIENT_TOKEN, RATE_LIMIT_BINDING,
};
use crate::core::guard::exposure::{RoutingDetail, OPERATOR_HEADERS};
use crate::core::guard::media;
use crate::core::identity::{check_admin, AdminAuth};
use worker::{Env, Headers, Request, Response, Result};

/// The preview page's Content-Security-Policy: its own scripts and wasm only, no inline
/// scripts, nothing framed, nothing posted elsewhere.
pub const PREVIEW_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn deployment() -> Deployment {
    with(|i| i.config().deployment).unwrap_or(Deployment::Production)
}

/// Whether `authorization` (the request's header) bears the admin token.
fn admin_bearer(auth: Option<&str>, env: &Env) -> bool {
    check_admin(secret(env, "ADMIN_TOKEN").as_deref(), auth) == AdminAuth::Ok
}

/// The client-token verdict for a chat request whose `Authorization` is `auth`.
pub fn client_auth(auth: Option<&str>, env: &Env) -> ClientAuth {
    let client_token = secret(env, CLIENT_TOKEN);
    let admin_token = secret(env, "ADMIN_TOKEN");
    check_client(&ClientCheck {
        deployment: deployment(),
        client_token: client_token.as_deref(),
        admin_token: admin_token.as_deref(),
        authorization: auth,
    })
}

/// `None` when the chat request may go on, else its 401 / 503.
pub fn refuse_client(req: &Incoming, env: &Env) -> Option<Result<Response>> {
    let auth = req.headers().get("authorization").ok().flatten();
    let (status, code, message) = client_auth(auth.as_deref(), env).refusal()?;
    Some(http::error(status, code, message).and_then(|r| {
        if status == 401 {
            r.headers().set("www-authenticate", "Bearer")?;
        }
        Ok(r)
    }))
}

/// `None` when the body is declared JSON, else a 415 naming what was sent.
pub fn require_json(req: &Request, method: &str, path: &str) -> Option<Result<Response>> {
    let ct = req.headers().get("content-type").ok().flatten();
    json_or_415(ct, method, path)
}

/// [`require_json`] for the chat routes' [`Incoming`].
pub fn require_json_incoming(req: &Incoming, method: &str, path: &str) -> Option<Result<Response>> {
    json_or_415(
        req.headers().get("content-type").ok().flatten(),
        method,
        path,
    )
}

fn json_or_415(ct: Option<String>, method: &str, path: &str) -> Option<Result<Response>> {
    if media::is_json(ct.as_deref()) {
        return None;
    }
    let what = format!("{method} {path}");
    Some(http::error(
        415,
        "unsupported_media_type",
        &media::refusal(&what, ct.as_deref()),
    ))
}

/// Whether a request whose `Authorization` is `auth` may see the operator-only routing detail.
pub fn routing_detail(auth: Option<&str>, env: &Env) -> RoutingDetail {
    let expose = with(|i| i.config().expose_routing_detail).unwrap_or(false);
    RoutingDetail::for_request(admin_bearer(auth, env), expose)
}

/// Which upstream URLs may receive a key here.
pub fn url_policy() -> UrlPolicy {
    deployment().url_policy()
}

/// What the status document needs to know about secrets and bindings.
pub fn setup_facts(env: &Env) -> SetupFacts {
    SetupFacts {
        client_token: secret(env, CLIENT_TOKEN).is_some_and(|t| !t.trim().is_empty()),
        rate_limiter: env.rate_limiter(RATE_LIMIT_BINDING).is_ok(),
    }
}

/// What a request leaves for its response's way out.
pub struct Exit {
    pub detail: RoutingDetail,
    /// CORS headers for a listed origin on a CORS route.
    pub cors: Option<[(&'static str, String); 2]>,
    /// Whether the request was for a CORS route (its answers vary by `Origin`).
    pub cors_route: bool,
    /// The preview page: send [`PREVIEW_CSP`].
    pub preview: bool,
    /// The chat routes write the operator-only headers only for a caller who may see them
    /// (`chat::set_route_headers`, with this [`Exit::detail`]): no deletes on the way out.
    pub withheld_at_source: bool,
}

impl Exit {
    /// Reads what the way out needs from the request, before the handler consumes it.
    pub fn of(req: &Incoming, env: &Env, segs: &[&str]) -> Exit {
        let cors_route = cors::is_cors_route(segs);
        let h = req.headers();
        let auth = h.get("authorization").ok().flatten();
        Exit {
            detail: routing_detail(auth.as_deref(), env),
            cors: if cors_route {
                cors::response_headers(h.get("origin").ok().flatten())
            } else {
                None
            },
            cors_route,
            preview: segs.first() == Some(&"preview"),
            withheld_at_source: matches!(segs, ["v1", "chat", "completions"] | ["query"]),
        }
    }
}

/// Every response's way out, with `X-Content-Type-Options: nosniff`, the preview's CSP, CORS
/// for a listed origin, and without the operator-only headers unless this caller may see them.
pub fn finish(resp: Response, exit: &Exit) -> Result<Response> {
    // The router's own responses have mutable headers: dressed in place (four deletes at most,
    // instead of copying every header into a new object). A response passed through from a
    // binding (the preview's assets) has immutable ones: the first change throws, nothing has
    // changed yet, and its headers are copied into a new object first.
    if dress(&mut resp.headers(), exit).is_ok() {
        return Ok(resp);
    }
    let h = Headers::new();
    for (k, v) in resp.headers().entries() {
        h.append(&k, &v)?;
    }
    dress(&mut &h, exit)?;
    Ok(resp.with_headers(h))
}

/// [`finish`] for either kind of [`Reply`], as the runtime's Response: an [`http::Own`] response is
/// dressed in Rust and goes to the runtime with its headers in one call.
pub fn finish_reply(reply: Reply, exit: &Exit) -> Result<web_sys::Response> {
    match reply {
        Reply::Js(resp) => finish(resp, exit).map(fetch::into_raw),
        Reply::Own(mut own) => {
            dress(&mut own, exit)?;
            Ok(fetch::respond_own(&own))
        }
    }
}

/// What every response leaves with: operator-only headers removed unless shown, `nosniff`,
/// the preview's CSP, `Vary: Origin` and the CORS headers on CORS routes.
fn dress(h: &mut impl HeaderWrite, exit: &Exit) -> Result<()> {
    if !exit.detail.shown() && !exit.withheld_at_source {
        for k in OPERATOR_HEADERS {
            h.delete(k)?;
        }
    }
    h.set("x-content-type-options", "nosniff")?;
    if exit.preview {
        h.set("content-security-policy", PREVIEW_CSP)?;
    }
    let varies = h.get("vary")?.is_some_and(|v| v.contains("Origin"));
    if exit.cors_route && !varies {
        h.append("vary", "Origin")?;
    }
    if let Some(cors) = &exit.cors {
        for (k, v) in cors {
            h.set(k, v)?;
        }
    }
    Ok(())
}
