//! The Cloudflare Worker adapter: the only module that knows `worker`, KV, the clock and the
//! network. It stays thin on purpose — every decision worth testing lives in `core`, where it
//! runs natively under `cargo test`; this layer turns HTTP into core inputs and core outputs
//! back into HTTP.
//!
//! - [`chat`]: the front door (`/v1/chat/completions`, `/query`).
//! - [`upstream`]: LightRAG and Perplexity calls with timeouts and stream piping.
//! - [`answer`], [`shadow`]: the no-context hold-back, the response cache, shadow calls
//!   (docs/answer-aware.md).
//! - [`isolate`]: the isolate's cached state and its background KV refresh / writes.
//! - [`kv`]: the KV namespace behind `core::store::StateStore`, with operation counters.
//! - [`hub`], [`hub_storage`]: the state hub, a Durable Object (class `StateHub`), and the
//!   Worker's client of it; [`store`]: KV or the hub, as `STATE_BACKEND` selects.
//! - [`admin`], [`ofrep`]: the operator API and OpenFeature remote evaluation.
//! - [`guard`], [`cors`], [`body`], [`ratelimit`]: the front against hostile clients
//!   ([`crate::core::guard`]): client token, `application/json` only, CORS, body limits while
//!   reading, per-key rate limits, and the headers every response leaves with.
//!
//! Order of the front door for the chat routes (docs/architecture.md#the-front-door-guard):
//! CORS preflight → client token (401/503) → media type (415) → body within its limit while
//! reading (413) → parse (400) → model allow list (400) → per-key rate limit (429) → routing
//! decision. Nothing before the decision draws a breaker permit or records a metric.

use worker::{
    event, Context, Env, Method, Request, Response, Result, ScheduleContext, ScheduledEvent,
};

mod admin;
mod answer;
mod body;
mod chat;
mod cors;
mod entry;
mod fetch;
mod guard;
mod http;
mod hub;
mod hub_storage;
mod incoming;
mod isolate;
mod kv;
mod ofrep;
mod pump;
mod ratelimit;
mod rollout;
mod settle;
mod shadow;
mod store;
mod upstream;
mod webhook;

/// The KV namespace binding (see wrangler.toml).
pub const KV_BINDING: &str = "ROUTER_STATE";
/// The static-assets binding serving `www/` at `/preview` (see wrangler.toml `[assets]`).
pub const ASSETS_BINDING: &str = "ASSETS";

#[event(start)]
fn start() {
    // A panic must at least leave a readable trace in `wrangler tail`.
    console_error_panic_hook::set_once();
}

/// The Worker's `fetch` handler, driven by [`entry::run`] (instead of `#[event(fetch)]`'s
/// `future_to_promise`; `entry` says why). A handler error is logged and answered 500, as the
/// macro did.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = fetch)]
pub fn fetch_export(
    raw: web_sys::Request,
    env: Env,
    ctx: worker::worker_sys::Context,
) -> wasm_bindgen::JsValue {
    let ctx = Context::new(ctx);
    entry::run(async move {
        match fetch(raw, env, ctx).await {
            Ok(resp) => resp.into(),
            Err(e) => {
                worker::console_error!("{e}");
                Response::error("INTERNAL SERVER ERROR", 500)
                    .map(|r| wasm_bindgen::JsValue::from(web_sys::Response::from(r)))
                    .unwrap_or(wasm_bindgen::JsValue::UNDEFINED)
            }
        }
    })
}

async fn fetch(raw: web_sys::Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
    // Method, path and the front door's headers in one call (`incoming` says why).
    let req = incoming::Incoming::read(raw);
    let path = req.path();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // Health and the static preview never wait for KV; everything else reads the config.
    // Operators wait for the first KV load (bounded); chat and OFREP wait at most
    // STATE_FIRST_LOAD_WAIT_MS, then route on `[vars]` and say so in the status.
    match segs.first() {
        Some(&"healthz") | Some(&"preview") => {}
        Some(&"admin") | Some(&"metrics") => cold(isolate::ensure_loaded(&env)).await,
        _ => isolate::ensure(&env, &ctx).await,
    }
    let exit = guard::Exit::of(&req, &env, &segs);
    let reply = match dispatch(req, &env, &ctx, exit.detail).await {
        Ok(r) => r,
        Err(e) => http::error(500, "internal", &format!("router error: {e}"))?.into(),
    };
    guard::finish_reply(reply, &exit)
}

#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, ctx: ScheduleContext) {
    let Some(rep) = admin::run_tick(&env).await else {
        return;
    };
    if let Some(url) = webhook::target() {
        if !rep.transitions.is_empty() {
            ctx.wait_until(webhook::send_all(url, rep.transitions));
        }
    }
}

/// `fut` behind a pointer: its poll is its own wasm function, called through the table, instead
/// of being inlined into the handler's. Why: V8 compiles a wasm function on its first call, all
/// of it, so every new isolate's first chat request compiled the admin, metrics, OFREP and
/// preview routes too, inlined as they were into one 97 KB `fetch` state machine
/// (benches/cold_start.mjs: "router's own first request"). For the routes off the chat path,
/// where one allocation per request costs nothing that matters.
fn cold<'a, T>(
    fut: impl std::future::Future<Output = T> + 'a,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>> {
    Box::pin(fut)
}

fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Head => "HEAD",
        Method::Options => "OPTIONS",
        Method::Patch => "PATCH",
        _ => "OTHER",
    }
}

/// The handler for a request: the chat routes' (whose served answer may be an [`http::Own`]
/// response), else [`dispatch_other`]'s.
async fn dispatch(
    req: incoming::Incoming,
    env: &Env,
    ctx: &Context,
    detail: crate::core::guard::exposure::RoutingDetail,
) -> Result<http::Reply> {
    let started_ms = isolate::now_ms();
    let path = req.path();
    let method = method_name(&req.method());
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let chat_route = matches!(segs.as_slice(), ["v1", "chat", "completions"] | ["query"]);
    if method != "POST" || !chat_route {
        return cold(dispatch_other(
            req.into_request(),
            env,
            ctx,
            detail,
            started_ms,
        ))
        .await
        .map(http::Reply::from);
    }
    if let Some(refused) = guard::refuse_client(&req, env)
        .or_else(|| guard::require_json_incoming(&req, method, &path))
    {
        return refused.map(http::Reply::from);
    }
    let r = if segs[0] == "query" {
        chat::seed_query(req, env, ctx, detail)
            .await
            .map(http::Reply::from)
    } else {
        chat::chat_completions(req, env, ctx, detail).await
    };
    // A streamed answer is recorded later, in its own task: no deferred flush for it
    // (`isolate::background` says why); its background work runs once its first frames have
    // gone out (`chat::Pipe::after_first`).
    let streamed = r.as_ref().is_ok_and(http::Reply::is_stream);
    if !streamed {
        isolate::background(env, ctx, Some(started_ms));
    }
    r
}

/// Every route but a POST to the chat routes.
async fn dispatch_other(
    req: Request,
    env: &Env,
    ctx: &Context,
    detail: crate::core::guard::exposure::RoutingDetail,
    started_ms: u64,
) -> Result<Response> {
    let path = req.path();
    let method = method_name(&req.method());
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segs.as_slice()) {
        ("GET", ["healthz"]) => handle_healthz(env).await,
        (_, ["healthz"]) => http::method_not_allowed(method, &path, "GET"),

        ("OPTIONS", s) if cors::is_cors_route(s) => cors::preflight(&req),

        (_, ["v1", "chat", "completions"]) | (_, ["query"]) => {
            http::method_not_allowed(method, &path, "POST, OPTIONS")
        }

        ("POST", ["ofrep", "v1", "evaluate", "flags", ..]) if segs.len() <= 5 => {
            if let Some(refused) = guard::require_json(&req, method, &path) {
                return refused;
            }
            let r = match segs.get(4) {
                Some(key) => ofrep::single(req, key, detail).await,
                None => ofrep::bulk(req, detail).await,
            };
            isolate::background(env, ctx, Some(started_ms));
            r
        }
        (_, ["ofrep", ..]) => http::method_not_allowed(method, &path, "POST, OPTIONS"),

        (_, ["metrics"]) | (_, ["admin", ..]) => {
            if let Some(denied) = admin::authorize(&req, env) {
                return denied;
            }
            // JSON only for every admin body: PUT and POST /admin/rollout always carry one;
            // the other POSTs may come bare (`curl -X POST`), but a body they carry is JSON.
            let carries_body = req.headers().has("content-type").unwrap_or(false)
                || req
                    .headers()
                    .get("content-length")
                    .ok()
                    .flatten()
                    .is_some_and(|l| l.trim() != "0");
            let always = method == "PUT" || (method == "POST" && segs == ["admin", "rollout"]);
            if always || (method == "POST" && carries_body) {
                if let Some(refused) = guard::require_json(&req, method, &path) {
                    return refused;
                }
            }
            admin_route(method, &segs, req, env, ctx).await
        }

        ("GET", ["preview"]) => {
            let r = Response::empty()?.with_status(301);
            r.headers().set("location", "/preview/")?;
            Ok(r)
        }
        ("GET", ["preview", ..]) => preview(req, env).await,

        _ => http::error(404, "not_found", &format!("no route for {method} {path}")),
    }
}

async fn admin_route(
    method: &str,
    segs: &[&str],
    req: Request,
    env: &Env,
    ctx: &Context,
) -> Result<Response> {
    let path = req.path();
    match (method, segs) {
        ("GET", ["metrics"]) => admin::metrics(env).await,
        (_, ["metrics"]) => http::method_not_allowed(method, &path, "GET"),
        ("GET", ["admin", "status"]) => admin::status(env).await,
        (_, ["admin", "status"]) => http::method_not_allowed(method, &path, "GET"),
        ("GET", ["admin", "config"]) => admin::get_config(),
        ("PUT", ["admin", "config"]) => admin::put_config(req, env).await,
        (_, ["admin", "config"]) => http::method_not_allowed(method, &path, "GET, PUT"),
        ("POST", ["admin", "breaker", upstream, action]) => {
            admin::breaker_action(upstream, action, env, ctx).await
        }
        (_, ["admin", "breaker", _, _]) => http::method_not_allowed(method, &path, "POST"),
        ("POST", ["admin", "metrics", "flush"]) => admin::flush(env).await,
        ("POST", ["admin", "controller", "tick"]) => admin::tick(env, ctx).await,
        ("GET", ["admin", "rollout"]) => rollout::get(env).await,
        ("POST", ["admin", "rollout"]) => rollout::start(req, env).await,
        (_, ["admin", "rollout"]) => http::method_not_allowed(method, &path, "GET, POST"),
        ("POST", ["admin", "rollout", op]) => rollout::operate(op, req, env).await,
        (_, ["admin", "rollout", _]) => http::method_not_allowed(method, &path, "POST"),
        ("GET", ["admin", "experiment"]) => rollout::experiment(env).await,
        (_, ["admin", "experiment"]) => http::method_not_allowed(method, &path, "GET"),
        _ => http::error(404, "not_found", &format!("no route for {method} {path}")),
    }
}

/// `GET /preview/...`: the static preview page (`www/`), served from the assets binding.
async fn preview(req: Request, env: &Env) -> Result<Response> {
    let Ok(assets) = env.assets(ASSETS_BINDING) else {
        return http::error(
            404,
            "preview_unavailable",
            "the preview page is not bound (wrangler.toml [assets] binding ASSETS)",
        );
    };
    // Plain string work (no `Url` parse, which would link the `url`/IDNA tables).
    let path = req.path();
    let rest = path.trim_start_matches("/preview");
    let rest = if rest.is_empty() || rest == "/" {
        "/index.html"
    } else {
        rest
    };
    // A plain GET built by web_sys: `Fetcher::fetch(url, init)` links `worker::RequestInit`'s
    // conversion with its `cf` serialisation (~13 KB of wasm).
    let get = web_sys::Request::new_with_str(&format!("https://assets.invalid{rest}"))
        .map(Request::from)
        .map_err(worker::Error::from)?;
    assets.fetch_request(get).await
}

/// `GET /healthz`: the build version and whether the state store answered a real read (the
/// KV binding, or the state hub with `STATE_BACKEND=durable_object`). A failure says only
/// "unavailable" (its text can name internals); the detail goes to the log.
async fn handle_healthz(env: &Env) -> Result<Response> {
    use crate::core::store::StateStore;
    let choice = store::choice(env);
    let binding = match choice.selected {
        crate::core::backend::StateBackend::Kv => KV_BINDING,
        crate::core::backend::StateBackend::DurableObject => crate::core::backend::HUB_BINDING,
    };
    let unavailable = |e: String| {
        worker::console_error!("healthz: state binding {binding} unavailable: {e}");
        serde_json::json!({"ok": false, "binding": binding, "error": "unavailable"})
    };
    let kv = match store::Store::open(env) {
        Some(s) => match s.get("healthz/probe").await {
            Ok(_) => serde_json::json!({"ok": true, "binding": binding}),
            Err(e) => unavailable(e.to_string()),
        },
        None => unavailable("binding missing".to_string()),
    };
    let ok = kv.get("ok").and_then(|v| v.as_bool()).unwrap_or(false);
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "kv": kv,
    });
    http::json(if ok { 200 } else { 503 }, &body)
}
