//! OpenFeature Remote Evaluation Protocol for flag `lightrag-routing`: the same decision the
//! router makes for a request from that user (without drawing a breaker probe permit). The
//! user's position is operator detail ([`crate::core::guard::exposure`]): it is in the
//! metadata only for admin-token requests (or with `ROUTER_EXPOSE_ROUTING_DETAIL`).

use super::isolate::{now_ms, with};
use super::{body, http};
use crate::core::decide::{decide, RouteRequest};
use crate::core::guard::exposure::RoutingDetail;
use crate::core::wire::ofrep::{
    self, BulkEntry, FlagEvaluation, OfrepContext, OfrepError, FLAG_KEY,
};
use serde_json::{Map, Value};
use worker::{Request, Response, Result};

fn evaluate(
    ctx: &OfrepContext,
    detail: RoutingDetail,
) -> std::result::Result<FlagEvaluation, OfrepError> {
    let Some(key) = ctx.targeting_key.clone() else {
        return Err(OfrepError::targeting_key_missing());
    };
    let query = ctx
        .attributes
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let rr = RouteRequest::new(Some(&key), query);
    let now = now_ms();
    let d = with(|i| decide(i.config(), &i.route_state(now), &rr)).ok_or_else(|| {
        OfrepError::new(ofrep::OfrepErrorCode::General, "router state unavailable")
    })?;
    let mut metadata = Map::new();
    if let Some(p) = d.position_percent.filter(|_| detail.shown()) {
        metadata.insert("position".into(), Value::from(p));
    }
    metadata.insert("in_experiment".into(), Value::from(d.in_experiment));
    metadata.insert("config_version".into(), Value::from(d.config_version));
    metadata.insert("routing_reason".into(), Value::from(d.reason.to_string()));
    Ok(FlagEvaluation {
        key: FLAG_KEY.to_string(),
        upstream: d.upstream,
        routing_reason: d.reason.to_string(),
        metadata,
    })
}

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub async fn single(mut req: Request, key: &str, detail: RoutingDetail) -> Result<Response> {
    let body = match body::read(&mut req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if key != FLAG_KEY {
        let e = OfrepError::flag_not_found(key);
        return http::raw_json(e.status(), ofrep::error_body(key, &e));
    }
    let result = ofrep::parse_eval_request(&body).and_then(|c| evaluate(&c, detail));
    match result {
        Ok(ev) => http::raw_json(200, ofrep::success_body(&ev)),
        Err(e) => http::raw_json(e.status(), ofrep::error_body(key, &e)),
    }
}

/// `POST /ofrep/v1/evaluate/flags` (bulk), with `ETag` / `If-None-Match` → 304.
pub async fn bulk(mut req: Request, detail: RoutingDetail) -> Result<Response> {
    let body = match body::read(&mut req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let ctx = match ofrep::parse_eval_request(&body) {
        Ok(c) => c,
        Err(e) => return http::raw_json(e.status(), ofrep::bulk_error_body(&e)),
    };
    let entry = match evaluate(&ctx, detail) {
        Ok(ev) => BulkEntry::Ok(ev),
        Err(e) if e.code == ofrep::OfrepErrorCode::TargetingKeyMissing => {
            return http::raw_json(400, ofrep::bulk_error_body(&e))
        }
        Err(error) => BulkEntry::Err {
            key: FLAG_KEY.to_string(),
            error,
        },
    };
    let text = ofrep::bulk_body(&[entry]);
    let tag = ofrep::etag(&text);
    let inm = req.headers().get("if-none-match").ok().flatten();
    if inm.is_some_and(|h| ofrep::if_none_match(&h, &tag)) {
        let r = Response::empty()?.with_status(304);
        r.headers().set("etag", &tag)?;
        return Ok(r);
    }
    let r = http::raw_json(200, text)?;
    r.headers().set("etag", &tag)?;
    Ok(r)
}
