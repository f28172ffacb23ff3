//! The breaker playground's replay (core::breaker::replay) against the breaker itself.
//!
//! `tests/spec/breaker/replay.json` pins a sequence of calls and the transitions it must give.
//! The same file drives the page's breaker playground in Chromium (tests/browser); here it is
//! checked twice: through `replay`, and by driving `Breaker` by hand as the edge does (admit on
//! arrival, record on completion) in a commented timeline — so the page, the replay and the
//! breaker cannot disagree.

use cmo_edge_router::core::breaker::replay::{replay, ReplayInput};
use cmo_edge_router::core::breaker::scenario::parse_lines;
use cmo_edge_router::core::breaker::{Admission, Breaker, BreakerState};
use cmo_edge_router::core::config;
use cmo_edge_router::core::keytag::KeyTag;
use cmo_edge_router::core::outcome::{Outcome, OutcomeKind};
use serde_json::{json, Value};

const SPEC: &str = include_str!("../spec/breaker/replay.json");
const NO_JITTER: f64 = 0.5;

fn spec() -> Value {
    serde_json::from_str(SPEC).unwrap()
}

fn policy(spec: &Value) -> cmo_edge_router::core::breaker::BreakerPolicy {
    let l = config::load(spec["config"].as_object().unwrap(), None, 0);
    assert!(l.problems.is_empty(), "{:?}", l.problems);
    l.config.breaker
}

fn lines(spec: &Value) -> String {
    spec["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_pinned_sequence_replays_to_the_pinned_transitions() {
    let spec = spec();
    let policy = policy(&spec);
    let calls = parse_lines(&lines(&spec), policy.settings().slow_call_ms).unwrap();
    let r = replay(&ReplayInput {
        policy,
        calls: &calls,
        jitter_roll: NO_JITTER,
        until_ms: None,
    })
    .unwrap();
    let got: Vec<Value> = r
        .transitions
        .iter()
        .map(|t| {
            json!({"at_ms": t.at_ms, "from": t.from, "to": t.to, "cause": t.cause,
                   "open_until_ms": t.open_until_ms})
        })
        .collect();
    assert_eq!(Value::Array(got), spec["expect"]["transitions"]);
    let e = &spec["expect"];
    assert_eq!(json!(r.admitted), e["admitted"]);
    assert_eq!(json!(r.rejected), e["rejected"]);
    assert_eq!(json!(r.probes), e["probes"]);
    assert_eq!(json!(r.trips), e["trips"]);
    // Every transition says why, with its numbers.
    assert!(r.transitions[0].reason.contains("3 consecutive failures"));
    assert!(
        r.transitions[3].reason.contains("failure rate 67 %"),
        "{}",
        r.transitions[3].reason
    );
    assert!(r.transitions[5].reason.contains("slow_call"));
    // The segments tile the replay without gaps.
    assert_eq!(r.segments.first().unwrap().from_ms, 0);
    assert_eq!(r.segments.last().unwrap().to_ms, r.end_ms);
    for w in r.segments.windows(2) {
        assert_eq!(w[0].to_ms, w[1].from_ms);
        assert_ne!(w[0].state, w[1].state);
    }
}

thread_local! {
    static NEXT_USER: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Each call from a different user, as in the replay.
fn rec(b: &mut Breaker, seen: &mut Vec<Value>, o: &Outcome, at: u64) {
    let who = NEXT_USER.with(|n| {
        let v = n.get();
        n.set(v + 1);
        KeyTag::from_raw(v)
    });
    if let Some(t) = b.record(o, who, at, NO_JITTER) {
        seen.push(
            json!({"at_ms": t.at_ms, "from": t.from, "to": t.to, "cause": t.cause,
                         "open_until_ms": t.open_until_ms}),
        );
    }
}

/// The same sequence, driven by hand through the breaker: what the replay must reproduce.
#[test]
fn the_breaker_driven_by_hand_gives_the_same_transitions() {
    let spec = spec();
    let mut b = Breaker::new(policy(&spec));
    let s = 1000u64;
    let ok = |ms| Outcome::success(ms);
    let e503 = Outcome::new(OutcomeKind::HttpServerError(503), 0);
    let mut seen = Vec::new();
    let half_open = |at: u64| {
        json!({"at_ms": at, "from": "open", "to": "half_open", "cause": "recovery_elapsed",
               "open_until_ms": null})
    };
    // 0–8 s: S S S F F S F F F — the third failure in a row trips it for 30 s (5 of 9 is
    // under the 60 % rate).
    for (t, o) in [
        (0, ok(100)),
        (1, ok(0)),
        (2, ok(0)),
        (3, e503),
        (4, e503),
        (5, ok(0)),
        (6, e503),
        (7, e503),
        (8, e503),
    ] {
        assert_eq!(b.admit(t * s, 0.0), Admission::Allowed);
        rec(&mut b, &mut seen, &o, t * s + o.latency_ms);
    }
    // 10 s: rejected.
    assert_eq!(b.admit(10 * s, 0.0), Admission::Rejected);
    // 38 s: half-open (time-derived); two probes of 80 ms close it at 39.08 s.
    assert_eq!(b.state(38 * s - 1), BreakerState::Open);
    assert_eq!(b.state(38 * s), BreakerState::HalfOpen);
    seen.push(half_open(38 * s));
    assert_eq!(b.admit(38_500, 0.0), Admission::Probe);
    rec(&mut b, &mut seen, &ok(80), 38_580);
    assert_eq!(b.admit(39 * s, 0.0), Admission::Probe);
    rec(&mut b, &mut seen, &ok(80), 39_080);
    // 40–45 s: F S F F S F — 4 of 6 = 67 % trips on the rate; second trip: 60 s.
    for (t, o) in [
        (40, e503),
        (41, ok(0)),
        (42, e503),
        (43, e503),
        (44, ok(0)),
        (45, e503),
    ] {
        assert_eq!(b.admit(t * s, 0.0), Admission::Allowed);
        rec(&mut b, &mut seen, &o, t * s);
    }
    assert_eq!(b.admit(50 * s, 0.0), Admission::Rejected);
    // 105 s: half-open; the probe at 106 s answers after 12 s: a slow call, reopened for 120 s.
    assert_eq!(b.state(105 * s), BreakerState::HalfOpen);
    seen.push(half_open(105 * s));
    assert_eq!(b.admit(106 * s, 0.0), Admission::Probe);
    let slow = Outcome::from_response(200, 12 * s, 10 * s);
    rec(&mut b, &mut seen, &slow, 118 * s);
    // 238 s: half-open. A 404 probe is the request's doing: as core::exchange does, its permit
    // goes back and nothing is recorded. A roll of 0.9 is no probe; 242 s and 243 s close it.
    assert_eq!(b.state(238 * s), BreakerState::HalfOpen);
    seen.push(half_open(238 * s));
    assert_eq!(b.admit(240 * s, 0.0), Admission::Probe);
    assert!(Outcome::from_response(404, 0, 10 * s)
        .kind
        .is_request_caused());
    b.release(240 * s);
    assert_eq!(b.admit(241 * s, 0.9), Admission::Rejected);
    assert_eq!(b.admit(242 * s, 0.0), Admission::Probe);
    rec(&mut b, &mut seen, &ok(0), 242 * s);
    assert_eq!(
        b.state(242 * s),
        BreakerState::HalfOpen,
        "one success of two"
    );
    assert_eq!(b.admit(243 * s, 0.0), Admission::Probe);
    rec(&mut b, &mut seen, &ok(0), 243 * s);
    assert_eq!(b.state(243 * s), BreakerState::Closed);
    // The breaker's own transitions, with the time-derived half-opens in place.
    seen.sort_by_key(|t| t["at_ms"].as_u64());
    assert_eq!(Value::Array(seen), spec["expect"]["transitions"]);
    assert_eq!(b.status(243 * s).trips, 3);
}
