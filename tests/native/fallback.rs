//! Outcome classification and the fallback policy: which outcomes fall back, only before the
//! first byte, and one deadline across primary and fallback (a request never takes twice the
//! timeout).

use cmo_edge_router::core::fallback::{
    Attempt, Deadline, FallbackCase, FallbackDecision, FallbackPolicy, FallbackSettings,
    NoFallbackReason,
};
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::outcome::{classify_response, classify_status, Outcome, OutcomeKind};

const T0: u64 = 1_700_000_000_000;

#[test]
fn status_classification() {
    assert_eq!(classify_status(200), OutcomeKind::Success);
    assert_eq!(classify_status(304), OutcomeKind::Success);
    assert_eq!(classify_status(400), OutcomeKind::ClientError(400));
    assert_eq!(classify_status(404), OutcomeKind::ClientError(404));
    assert_eq!(classify_status(408), OutcomeKind::RequestTimeout);
    assert_eq!(classify_status(429), OutcomeKind::RateLimited);
    assert_eq!(classify_status(500), OutcomeKind::HttpServerError(500));
    assert_eq!(classify_status(503), OutcomeKind::HttpServerError(503));
    assert_eq!(classify_status(0), OutcomeKind::HttpServerError(0));
    assert_eq!(classify_status(700), OutcomeKind::HttpServerError(700));
    assert!(!classify_status(404).is_failure());
    // The request's fault: 400/404/413/422 and the other malformed-request codes. Anything else
    // in 4xx blames the router's key or URL and is a failure.
    for s in [400, 404, 411, 413, 414, 415, 422, 431] {
        assert!(classify_status(s).is_request_caused(), "{s}");
        assert!(!classify_status(s).is_failure(), "{s}");
    }
    for s in [401, 403, 405, 409, 410, 418] {
        assert_eq!(classify_status(s), OutcomeKind::Refused(s));
        assert!(classify_status(s).is_failure(), "{s}");
    }
    for k in [OutcomeKind::ContextLength, OutcomeKind::NotSent] {
        assert!(k.is_request_caused() && !k.is_failure());
    }
    assert!(!OutcomeKind::NoAnswer.is_failure() && !OutcomeKind::NoAnswer.is_request_caused());
    assert_eq!(OutcomeKind::Refused(401).to_string(), "refused:401");
    assert!(classify_status(429).is_failure() && classify_status(408).is_failure());
    // Slow successes become slow calls; slow failures keep their kind; 0 disables.
    assert_eq!(
        classify_response(200, 12_000, 10_000),
        OutcomeKind::SlowCall
    );
    assert_eq!(classify_response(200, 9_999, 10_000), OutcomeKind::Success);
    assert_eq!(
        classify_response(503, 12_000, 10_000),
        OutcomeKind::HttpServerError(503)
    );
    assert_eq!(classify_response(200, 99_000, 0), OutcomeKind::Success);
    assert!(Outcome::from_response(200, 12_000, 10_000).is_failure());
}

#[test]
fn outcome_kind_serde_and_names() {
    assert_eq!(
        serde_json::to_string(&OutcomeKind::Success).unwrap(),
        "\"success\""
    );
    assert_eq!(
        serde_json::to_string(&OutcomeKind::FirstByteTimeout).unwrap(),
        "\"first_byte_timeout\""
    );
    assert_eq!(
        serde_json::to_string(&OutcomeKind::HttpServerError(503)).unwrap(),
        r#"{"http_server_error":503}"#
    );
    assert_eq!(OutcomeKind::TruncatedStream.as_str(), "truncated_stream");
    assert_eq!(
        OutcomeKind::HttpServerError(502).to_string(),
        "http_server_error:502"
    );
    let back: OutcomeKind = serde_json::from_str("\"rate_limited\"").unwrap();
    assert_eq!(back, OutcomeKind::RateLimited);
}

/// A failed attempt: `sent` = bytes already reached the client, `healthy` = the other
/// upstream's breaker admits.
fn case(
    primary: Upstream,
    kind: OutcomeKind,
    sent: bool,
    healthy: bool,
    remaining: u64,
) -> FallbackCase {
    FallbackCase {
        primary,
        kind,
        first_byte_sent: sent,
        other_admits: healthy,
        remaining_ms: remaining,
    }
}

fn plan(
    primary: Upstream,
    kind: OutcomeKind,
    sent: bool,
    healthy: bool,
    remaining: u64,
) -> FallbackDecision {
    FallbackPolicy::default().plan(&case(primary, kind, sent, healthy, remaining))
}

fn policy(s: FallbackSettings) -> FallbackPolicy {
    FallbackPolicy::try_new(s).unwrap()
}

fn no(reason: NoFallbackReason) -> FallbackDecision {
    FallbackDecision::NoFallback { reason }
}

#[test]
fn lightrag_failures_before_first_byte_fall_back_to_perplexity() {
    for kind in [
        OutcomeKind::HttpServerError(502),
        OutcomeKind::RateLimited,
        OutcomeKind::RequestTimeout,
        OutcomeKind::NetworkError,
        OutcomeKind::FirstByteTimeout,
        OutcomeKind::TotalTimeout,
        OutcomeKind::TruncatedStream,
    ] {
        assert_eq!(
            plan(Upstream::Lightrag, kind, false, true, 20_000),
            FallbackDecision::Fallback {
                to: Upstream::Perplexity,
                budget_ms: 20_000
            },
            "{kind:?}"
        );
        // After the first byte reached the client: never.
        assert_eq!(
            plan(Upstream::Lightrag, kind, true, true, 20_000),
            no(NoFallbackReason::FirstByteSent)
        );
    }
}

#[test]
fn non_failures_and_client_errors_do_not_fall_back() {
    assert_eq!(
        plan(
            Upstream::Lightrag,
            OutcomeKind::Success,
            false,
            true,
            20_000
        ),
        no(NoFallbackReason::NotAFailure)
    );
    assert_eq!(
        plan(
            Upstream::Lightrag,
            OutcomeKind::SlowCall,
            false,
            true,
            20_000
        ),
        no(NoFallbackReason::NotAFailure)
    );
    assert_eq!(
        plan(
            Upstream::Lightrag,
            OutcomeKind::ClientError(400),
            false,
            true,
            20_000
        ),
        no(NoFallbackReason::ClientError)
    );
    // A context-length error is the request's too; a refused key is the upstream's.
    assert_eq!(
        plan(
            Upstream::Lightrag,
            OutcomeKind::ContextLength,
            false,
            true,
            20_000
        ),
        no(NoFallbackReason::ClientError)
    );
    assert!(matches!(
        plan(
            Upstream::Lightrag,
            OutcomeKind::Refused(403),
            false,
            true,
            20_000
        ),
        FallbackDecision::Fallback { .. }
    ));
}

#[test]
fn perplexity_to_lightrag_only_when_configured_and_healthy() {
    let kind = OutcomeKind::HttpServerError(503);
    // Default: not configured.
    assert_eq!(
        plan(Upstream::Perplexity, kind, false, true, 20_000),
        no(NoFallbackReason::Disabled)
    );
    let on = policy(FallbackSettings {
        perplexity_to_lightrag: true,
        ..FallbackSettings::default()
    });
    // Configured, but LightRAG's breaker is open: no.
    assert_eq!(
        on.plan(&case(Upstream::Perplexity, kind, false, false, 20_000)),
        no(NoFallbackReason::OtherUnhealthy)
    );
    assert_eq!(
        on.plan(&case(Upstream::Perplexity, kind, false, true, 20_000)),
        FallbackDecision::Fallback {
            to: Upstream::Lightrag,
            budget_ms: 20_000
        }
    );
    // LIGHTRAG_FALLBACK_TO_PERPLEXITY=false.
    let off = policy(FallbackSettings {
        lightrag_to_perplexity: false,
        ..FallbackSettings::default()
    });
    assert_eq!(
        off.plan(&case(Upstream::Lightrag, kind, false, true, 20_000)),
        no(NoFallbackReason::Disabled)
    );
}

#[test]
fn one_deadline_across_primary_and_fallback() {
    // LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS = 30, request starts at t=0.
    let d = Deadline::from_timeout_seconds(T0, 30.0);
    let s = FallbackSettings::default();
    let fb = FallbackPolicy::default();
    // Primary: first byte within 15 s (half), whole body within 30 s.
    let p = fb.timeouts(&d, T0, Attempt::Primary);
    assert_eq!((p.ttfb_ms, p.total_ms), (15_000, 30_000));
    // t=15s: LightRAG's first byte never came. The fallback gets what is left: 15 s, not 30.
    let now = T0 + 15_000;
    let decision = plan(
        Upstream::Lightrag,
        OutcomeKind::FirstByteTimeout,
        false,
        true,
        d.remaining(now),
    );
    assert_eq!(
        decision,
        FallbackDecision::Fallback {
            to: Upstream::Perplexity,
            budget_ms: 15_000
        }
    );
    let f = fb.timeouts(&d, now, Attempt::Fallback);
    assert_eq!((f.ttfb_ms, f.total_ms), (15_000, 15_000));
    assert_eq!(
        now + f.total_ms,
        d.deadline_ms(),
        "never past the single deadline"
    );
    // t=28.5s: a 503 after a slow start leaves 1.5 s < 2 s minimum: no fallback.
    let late = T0 + 28_500;
    assert_eq!(
        plan(
            Upstream::Lightrag,
            OutcomeKind::HttpServerError(503),
            false,
            true,
            d.remaining(late)
        ),
        no(NoFallbackReason::BudgetExhausted)
    );
    // Late primary start: ttfb never exceeds what remains.
    let p = fb.timeouts(&d, T0 + 25_000, Attempt::Primary);
    assert_eq!((p.ttfb_ms, p.total_ms), (5_000, 5_000));
    assert_eq!(d.remaining(T0 + 30_000), 0);
    // Bad timeout values fall back to 30 s.
    assert_eq!(
        Deadline::from_timeout_seconds(T0, f64::NAN).total_ms,
        30_000
    );
    assert_eq!(Deadline::from_timeout_seconds(T0, -1.0).total_ms, 30_000);
    assert!(FallbackPolicy::try_new(FallbackSettings {
        ttfb_share: 0.0,
        ..s
    })
    .is_err());
    assert!(FallbackPolicy::try_new(FallbackSettings {
        min_budget_ms: 0,
        ..s
    })
    .is_err());
}

#[test]
fn fallback_decision_serde_shape() {
    let d = FallbackDecision::Fallback {
        to: Upstream::Perplexity,
        budget_ms: 14_000,
    };
    assert_eq!(
        serde_json::to_string(&d).unwrap(),
        r#"{"fallback":{"to":"perplexity","budget_ms":14000}}"#
    );
    assert_eq!(
        serde_json::to_string(&no(NoFallbackReason::FirstByteSent)).unwrap(),
        r#"{"no_fallback":{"reason":"first_byte_sent"}}"#
    );
}
