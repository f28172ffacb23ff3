//! The Cloudflare Worker adapter: the only module that knows `worker`, KV, the clock and the
//! network. It stays thin on purpose — every decision worth testing lives in `core`, where it
//! runs natively under `cargo test`; this layer turns HTTP into core inputs and core outputs
//! back into HTTP.

use worker::{event, Context, Env, Request, Response, Result, RouteContext, Router};

mod http;

/// The KV namespace binding (see wrangler.toml).
pub const KV_BINDING: &str = "ROUTER_STATE";

#[event(start)]
fn start() {
    // A panic must at least leave a readable trace in `wrangler tail`.
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let router = Router::new();
    let resp = router
        .get_async("/healthz", handle_healthz)
        .or_else_any_method_async("/*path", |req, _| async move {
            http::error(404, "not_found", &format!("no route for {} {}", req.method(), req.path()))
        })
        .run(req, env)
        .await;
    match resp {
        Ok(r) => Ok(r),
        Err(e) => http::error(500, "internal", &format!("router error: {e}")),
    }
}

/// `GET /healthz`: the build version and whether the KV binding answered a real read.
async fn handle_healthz(_req: Request, ctx: RouteContext<()>) -> Result<Response> {
    let kv = match ctx.env.kv(KV_BINDING) {
        Ok(store) => match store.get("healthz/probe").text().await {
            Ok(_) => serde_json::json!({"ok": true, "binding": KV_BINDING}),
            Err(e) => serde_json::json!({"ok": false, "binding": KV_BINDING, "error": e.to_string()}),
        },
        Err(e) => serde_json::json!({"ok": false, "binding": KV_BINDING, "error": e.to_string()}),
    };
    let ok = kv.get("ok").and_then(|v| v.as_bool()).unwrap_or(false);
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "kv": kv,
    });
    http::json(if ok { 200 } else { 503 }, &body)
}
