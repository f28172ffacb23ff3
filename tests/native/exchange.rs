//! The exchange state machine on a virtual clock, in the style of the breaker timelines: every
//! step says what time it is, what the edge saw, and what the machine must answer and record.
//! Budget 30 s (first byte of the primary within 15 s), slow calls from 10 s, streams idle
//! 30 s / at most 300 s, unless a test says otherwise.

use cmo_edge_router::core::breaker::{
    Admission, Breaker, BreakerPolicy, BreakerSettings, BreakerState,
};
use cmo_edge_router::core::exchange::{
    mentions_context_length, AttemptResult, Attempted, Call, Commit, Cut, CutCause, Exchange,
    ExchangePolicy, FailCode, Failed, Fallback, FallbackCause, Fault, Inspect, Mode, NoAnswerBlame,
    Plan, Purpose, Record, RequestRecord, Served, Step, StreamEnd, StreamLimits, Verdict,
};
use cmo_edge_router::core::fallback::{
    Attempt, FallbackPolicy, FallbackSettings, NoFallbackReason,
};
use cmo_edge_router::core::keytag::KeyTag;
use cmo_edge_router::core::model::Upstream::{self, Lightrag, Perplexity};
use cmo_edge_router::core::outcome::{Outcome, OutcomeKind};
use proptest::prelude::*;

const T0: u64 = 1_700_000_000_000;
const SEC: u64 = 1_000;

fn policy() -> ExchangePolicy {
    ExchangePolicy {
        fallback: FallbackPolicy::default(),
        budget_ms: 30 * SEC,
        slow_call_ms: 10 * SEC,
        stream: StreamLimits::from_seconds(30.0, 300.0),
        inspect: Inspect::Off,
    }
}

fn plan(primary: Upstream, mode: Mode) -> Plan {
    Plan {
        primary,
        mode,
        purpose: Purpose::Serve,
        primary_admission: Admission::Allowed,
        no_answer_blame: NoAnswerBlame::Nobody,
    }
}

fn probe(primary: Upstream, mode: Mode) -> Plan {
    Plan {
        primary_admission: Admission::Probe,
        ..plan(primary, mode)
    }
}

fn call(upstream: Upstream, attempt: Attempt, first_byte_by_ms: u64, complete_by_ms: u64) -> Step {
    Step::Call(Call {
        upstream,
        attempt,
        first_byte_by_ms,
        complete_by_ms,
    })
}

fn served(upstream: Upstream) -> Served {
    Served {
        upstream,
        fallback: None,
    }
}

fn fell_back(upstream: Upstream, cause: FallbackCause) -> Served {
    Served {
        upstream,
        fallback: Some(Fallback {
            from: upstream.other(),
            cause,
        }),
    }
}

fn breaker(upstream: Upstream, kind: OutcomeKind, latency_ms: u64) -> Record {
    Record::Breaker {
        upstream,
        outcome: Outcome::new(kind, latency_ms),
    }
}

fn request(
    upstream: Upstream,
    kind: OutcomeKind,
    latency_ms: u64,
    first_byte_ms: Option<u64>,
) -> Record {
    Record::Request(RequestRecord {
        upstream,
        kind,
        latency_ms,
        fallback: false,
        first_byte_ms,
        purpose: Purpose::Serve,
        no_answer: None,
    })
}

fn with_fallback(r: Record) -> Record {
    match r {
        Record::Request(q) => Record::Request(RequestRecord {
            fallback: true,
            ..q
        }),
        other => other,
    }
}

fn failed(ex: &Step) -> &Failed {
    match ex {
        Step::Fail(f) => f,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn a_complete_answer_is_judged_on_its_response_headers() {
    // t=0: LightRAG is the decision; its first byte may take half the 30 s budget.
    let (mut ex, step) = Exchange::start(&policy(), plan(Lightrag, Mode::Complete), T0);
    assert_eq!(
        step,
        call(Lightrag, Attempt::Primary, T0 + 15 * SEC, T0 + 30 * SEC)
    );
    // t=0.8s headers, t=0.9s the body is in: answer.
    let step = ex.on_result(AttemptResult::Answered { head_ms: T0 + 800 }, T0 + 900);
    assert_eq!(step, Step::Respond(served(Lightrag)));
    assert_eq!(
        ex.take_records(),
        [
            breaker(Lightrag, OutcomeKind::Success, 800),
            request(Lightrag, OutcomeKind::Success, 900, Some(800)),
        ]
    );
    assert!(ex.is_finished());
    // Anything later changes nothing.
    assert_eq!(ex.on_chunk(T0 + SEC), Step::Wait);
    assert_eq!(ex.on_client_gone(T0 + SEC), Step::Done);
    assert!(ex.take_records().is_empty());
}

#[test]
fn late_headers_are_a_slow_call() {
    let (mut ex, _) = Exchange::start(&policy(), plan(Lightrag, Mode::Complete), T0);
    // t=12s: headers (LightRAG answers non-streamed queries once generation is done).
    let step = ex.on_result(
        AttemptResult::Answered {
            head_ms: T0 + 12 * SEC,
        },
        T0 + 12 * SEC,
    );
    assert_eq!(step, Step::Respond(served(Lightrag)));
    assert_eq!(
        ex.take_records()[0],
        breaker(Lightrag, OutcomeKind::SlowCall, 12 * SEC)
    );
}

/// Issue 8 item 2: a stream is judged on its first answer text, however long the answer.
#[test]
fn a_long_healthy_stream_is_a_success() {
    let (mut ex, _) = Exchange::start(&policy(), plan(Lightrag, Mode::Stream), T0);
    // t=0.8s: first answer text → commit; wake up 30 s later if nothing comes.
    let step = ex.on_first_byte(T0 + 800);
    assert_eq!(
        step,
        Step::Commit(Commit {
            served: served(Lightrag),
            wake_at_ms: T0 + 800 + 30 * SEC,
        })
    );
    assert!(ex.take_records().is_empty(), "recorded once, at the end");
    // t=2.8s … 58.8s: a chunk every 2 s, far past the 30 s request budget.
    let mut t = T0 + 800;
    while t < T0 + 58 * SEC {
        t += 2 * SEC;
        assert_eq!(
            ex.on_chunk(t),
            Step::Forward {
                wake_at_ms: t + 30 * SEC
            }
        );
    }
    // t=59s: the body ends (LightRAG has no end marker): complete.
    assert_eq!(
        ex.on_stream_end(StreamEnd::BodyEnded, T0 + 59 * SEC),
        Step::Finish
    );
    assert_eq!(
        ex.take_records(),
        [
            breaker(Lightrag, OutcomeKind::Success, 800),
            request(Lightrag, OutcomeKind::Success, 800, Some(800)),
        ]
    );
}

/// Three long answers in a row used to be three slow calls: the breaker opened.
#[test]
fn three_long_streams_leave_the_breaker_closed() {
    let mut b = Breaker::new(BreakerPolicy::try_new(BreakerSettings::default()).unwrap());
    for i in 0..3 {
        let start = T0 + i * 60 * SEC;
        let (mut ex, _) = Exchange::start(&policy(), plan(Lightrag, Mode::Stream), start);
        ex.on_first_byte(start + SEC);
        for k in 1..20 {
            ex.on_chunk(start + SEC + k * 2 * SEC);
        }
        ex.on_stream_end(StreamEnd::BodyEnded, start + 40 * SEC);
        for r in ex.take_records() {
            if let Record::Breaker { outcome, .. } = r {
                let key = KeyTag::from_raw(i);
                assert_eq!(b.record(&outcome, key, start + 40 * SEC, 0.5), None);
            }
        }
    }
    assert_eq!(b.state(T0 + 200 * SEC), BreakerState::Closed);
    assert_eq!(b.status(T0).consecutive_failures, 0);
}

#[test]
fn a_stream_silent_past_the_idle_timeout_is_cut() {
    let (mut ex, _) = Exchange::start(&policy(), plan(Lightrag, Mode::Stream), T0);
    ex.on_first_byte(T0 + SEC);
    // t=3s: a chunk; wake at 33 s.
    assert_eq!(
        ex.on_chunk(T0 + 3 * SEC),
        Step::Forward {
            wake_at_ms: T0 + 33 * SEC
        }
    );
    // t=20s: a spurious wake-up changes nothing.
    assert_eq!(
        ex.on_timer(T0 + 20 * SEC),
        Step::Forward {
            wake_at_ms: T0 + 33 * SEC
        }
    );
    // t=33s: silent for 30 s: cut, marked, a failure for the breaker.
    assert_eq!(
        ex.on_timer(T0 + 33 * SEC),
        Step::Cut(Cut {
            upstream: Lightrag,
            cause: CutCause::Idle
        })
    );
    assert_eq!(
        ex.take_records(),
        [
            breaker(Lightrag, OutcomeKind::TruncatedStream, SEC),
            request(Lightrag, OutcomeKind::TruncatedStream, SEC, Some(SEC)),
        ]
    );
}

#[test]
fn a_stream_longer_than_its_maximum_is_cut() {
    let p = ExchangePolicy {
        stream: StreamLimits::from_seconds(30.0, 60.0),
        ..policy()
    };
    let (mut ex, _) = Exchange::start(&p, plan(Perplexity, Mode::Stream), T0);
    ex.on_first_byte(T0 + SEC);
    // A chunk every 10 s: never idle; the wake-up is capped at the end of the 60 s.
    let mut step = Step::Wait;
    for k in 1..=6 {
        step = ex.on_chunk(T0 + SEC + k * 10 * SEC);
    }
    assert_eq!(
        step,
        Step::Forward {
            wake_at_ms: T0 + 61 * SEC
        }
    );
    assert_eq!(
        ex.on_timer(T0 + 61 * SEC),
        Step::Cut(Cut {
            upstream: Perplexity,
            cause: CutCause::TooLong
        })
    );
}

#[test]
fn how_a_stream_ends_decides_complete_or_cut() {
    for (upstream, end, want) in [
        (Lightrag, StreamEnd::BodyEnded, None),
        (Lightrag, StreamEnd::Done, None),
        (Perplexity, StreamEnd::Done, None),
        // Perplexity's last chunk carries finish_reason: a body ending without it was cut.
        (Perplexity, StreamEnd::BodyEnded, Some(CutCause::Unfinished)),
        (Perplexity, StreamEnd::Broken, Some(CutCause::Broken)),
        (Lightrag, StreamEnd::Reported, Some(CutCause::Reported)),
    ] {
        let (mut ex, _) = Exchange::start(&policy(), plan(upstream, Mode::Stream), T0);
        ex.on_first_byte(T0 + SEC);
        let step = ex.on_stream_end(end, T0 + 5 * SEC);
        match want {
            None => assert_eq!(step, Step::Finish, "{upstream:?} {end:?}"),
            Some(cause) => assert_eq!(step, Step::Cut(Cut { upstream, cause })),
        }
    }
}

#[test]
fn an_upstream_failure_falls_back_with_the_rest_of_the_budget() {
    let (mut ex, _) = Exchange::start(&policy(), plan(Lightrag, Mode::Complete), T0);
    // t=0.2s: LightRAG answers 503: a breaker failure; the fallback plan says yes, and only
    // now is Perplexity's permit asked for.
    let step = ex.on_result(AttemptResult::Failed(Fault::Status(503)), T0 + 200);
    assert_eq!(
        step,
        Step::Acquire {
            upstream: Perplexity
        }
    );
    assert_eq!(
        ex.take_records(),
        [breaker(Lightrag, OutcomeKind::HttpServerError(503), 200)]
    );
    // Perplexity's breaker admits: the fallback gets what is left of the 30 s for both.
    let step = ex.on_permit(Admission::Allowed, T0 + 200);
    assert_eq!(
        step,
        call(Perplexity, Attempt::Fallback, T0 + 30 * SEC, T0 + 30 * SEC)
    );
    let step = ex.on_result(
        AttemptResult::Answered {
            head_ms: T0 + 1_200,
        },
        T0 + 1_300,
    );
    assert_eq!(
        step,
        Step::Respond(fell_back(
            Perplexity,
            FallbackCause::Failed(OutcomeKind::HttpServerError(503))
        ))
    );
    assert_eq!(
        ex.take_records(),
        [
            breaker(Perplexity, OutcomeKind::Success, 1_000),
            with_fallback(request(
                Perplexity,
                OutcomeKind::Success,
                1_300,
                Some(1_000)
            )),
        ]
    );
}

#[test]
fn a_stream_that_fails_before_its_first_byte_falls_back_and_commits_there() {
    let (mut ex, _) = Exchange::start(&policy(), plan(Lightrag, Mode::Stream), T0);
    // t=15s: no answer text within the primary's half of the budget.
    let step = ex.on_result(AttemptResult::Failed(Fault::NoFirstByte), T0 + 15 * SEC);
    assert_eq!(
        step,
        Step::Acquire {
            upstream: Perplexity
        }
    );
    ex.on_permit(Admission::Allowed, T0 + 15 * SEC);
    let step = ex.on_first_byte(T0 + 16 * SEC);
    assert_eq!(
        step,
        Step::Commit(Commit {
            served: fell_back(
                Perplexity,
                FallbackCause::Failed(OutcomeKind::FirstByteTimeout)
            ),
            wake_at_ms: T0 + 46 * SEC,
        })
    );
    assert_eq!(
        ex.on_stream_end(StreamEnd::Done, T0 + 20 * SEC),
        Step::Finish
    );
    let recs = ex.take_records();
    assert_eq!(
        recs.last(),
        Some(&with_fallback(request(
            Perplexity,
            OutcomeKind::Success,
            16 * SEC,
            Some(SEC)
        )))
    );
}

/// Issue 8 item 11: the permit is drawn only after the plan said yes, so a declined fallback
/// never holds one; a refused permit fails the request with the primary's failure.
#[test]
fn no_permit_is_drawn_when_the_fallback_plan_declines() {
    // Fallback switched off: straight to the failure, no Acquire step.
    let p = ExchangePolicy {
        fallback: FallbackPolicy::try_new(FallbackSettings {
            lightrag_to_perplexity: false,
            ..FallbackSettings::default()
        })
        .unwrap(),
        ..policy()
    };
    let (mut ex, _) = Exchange::start(&p, plan(Lightrag, Mode::Complete), T0);
    let step = ex.on_result(AttemptResult::Failed(Fault::Connect), T0 + 100);
    let f = failed(&step);
    assert_eq!((f.status, f.code), (502, FailCode::UpstreamFailed));
    assert_eq!(f.no_fallback, Some(NoFallbackReason::Disabled));
    // Budget spent: 1.5 s left is under the 2 s minimum.
    let (mut ex, _) = Exchange::start(&policy(), plan(Lightrag, Mode::Complete), T0);
    let step = ex.on_result(AttemptResult::Failed(Fault::Status(500)), T0 + 28_500);
    assert_eq!(
        failed(&step).no_fallback,
        Some(NoFallbackReason::BudgetExhausted)
    );
    // Perplexity's breaker refuses the permit: fail with LightRAG's failure, nothing released.
    let (mut ex, _) = Exchange::start(&policy(), plan(Lightrag, Mode::Complete), T0);
    ex.on_result(AttemptResult::Failed(Fault::Status(500)), T0 + 100);
    ex.take_records();
    let step = ex.on_permit(Admission::Rejected, T0 + 100);
    let f = failed(&step);
    assert_eq!(f.no_fallback, Some(NoFallbackReason::OtherUnhealthy));
    assert_eq!(
        f.attempts,
        [Attempted {
            upstream: Lightrag,
            kind: OutcomeKind::HttpServerError(500)
        }]
    );
    assert_eq!(
        ex.take_records(),
        [request(
            Lightrag,
            OutcomeKind::HttpServerError(500),
            100,
            None
        )]
    );
}

/// The old `latency_ms == 0` sentinel: a query LightRAG would refuse is not sent, blames
/// nobody, and falls back only as the fallback settings allow.
#[test]
fn a_request_the_router_will_not_send_follows_the_fallback_settings() {
    // Half-open LightRAG: the decision drew a probe permit for this request.
    let (mut ex, _) = Exchange::start(&policy(), probe(Lightrag, Mode::Complete), T0);
    let step = ex.on_result(AttemptResult::NotSent, T0);
    assert_eq!(
        step,
        Step::Acquire {
            upstream: Perplexity
        }
    );
    assert_eq!(
        ex.take_records(),
        [Record::Release { upstream: Lightrag }],
        "no breaker record, the probe permit goes back"
    );
    ex.on_permit(Admission::Allowed, T0);
    let step = ex.on_result(AttemptResult::Answered { head_ms: T0 + 900 }, T0 + 900);
    assert_eq!(
        step,
        Step::Respond(fell_back(Perplexity, FallbackCause::NotSent))
    );
    // Fallback off: the client is told its request cannot be sent (422), counted as rejected.
    let p = ExchangePolicy {
        fallback: FallbackPolicy::try_new(FallbackSettings {
            lightrag_to_perplexity: false,
            ..FallbackSettings::default()
        })
        .unwrap(),
        ..policy()
    };
    let (mut ex, _) = Exchange::start(&p, plan(Lightrag, Mode::Stream), T0);
    let step = ex.on_result(AttemptResult::NotSent, T0);
    let f = failed(&step);
    assert_eq!((f.status, f.code), (422, FailCode::RequestRejected));
    assert_eq!(
        ex.take_records(),
        [request(Lightrag, OutcomeKind::NotSent, 0, None)]
    );
}

/// Issue 8 item 3: a refusal caused by the request is not the upstream's failure: no breaker
/// record, no fallback that blames it, the probe permit released, its own status for the client.
#[test]
fn request_caused_refusals_blame_nobody() {
    for (fault, kind, status, code) in [
        (
            Fault::Status(422),
            OutcomeKind::ClientError(422),
            422,
            FailCode::RequestRejected,
        ),
        (
            Fault::Status(400),
            OutcomeKind::ClientError(400),
            422,
            FailCode::RequestRejected,
        ),
        (
            Fault::Status(404),
            OutcomeKind::ClientError(404),
            422,
            FailCode::RequestRejected,
        ),
        (
            Fault::Status(413),
            OutcomeKind::ClientError(413),
            413,
            FailCode::RequestTooLarge,
        ),
        (
            Fault::from_error_response(500, "This model's maximum context length is 8192 tokens"),
            OutcomeKind::ContextLength,
            413,
            FailCode::RequestTooLarge,
        ),
    ] {
        let (mut ex, _) = Exchange::start(&policy(), probe(Lightrag, Mode::Complete), T0);
        let step = ex.on_result(AttemptResult::Failed(fault), T0 + 300);
        let f = failed(&step);
        assert_eq!((f.status, f.code), (status, code), "{fault:?}");
        assert_eq!(f.no_fallback, Some(NoFallbackReason::ClientError));
        assert_eq!(
            ex.take_records(),
            [
                Record::Release { upstream: Lightrag },
                request(Lightrag, kind, 300, None),
            ]
        );
    }
}

/// 401/403: the router's key is wrong. Every request fails, so it is the upstream's failure.
#[test]
fn a_refused_key_is_an_upstream_failure_and_falls_back() {
    let (mut ex, _) = Exchange::start(&policy(), plan(Lightrag, Mode::Complete), T0);
    let step = ex.on_result(AttemptResult::Failed(Fault::Status(403)), T0 + 50);
    assert_eq!(
        step,
        Step::Acquire {
            upstream: Perplexity
        }
    );
    assert_eq!(
        ex.take_records(),
        [breaker(Lightrag, OutcomeKind::Refused(403), 50)]
    );
    // And when the fallback fails too, the client gets a 502 recorded as an error.
    ex.on_permit(Admission::Allowed, T0 + 50);
    let step = ex.on_result(AttemptResult::Failed(Fault::Status(401)), T0 + 90);
    let f = failed(&step);
    assert_eq!((f.status, f.code), (502, FailCode::UpstreamFailed));
    assert_eq!(f.no_fallback, None, "the fallback was the last attempt");
    let recs = ex.take_records();
    assert_eq!(
        recs,
        [
            breaker(Perplexity, OutcomeKind::Refused(401), 40),
            request(Lightrag, OutcomeKind::Refused(401), 90, None),
        ]
    );
    assert!(OutcomeKind::Refused(401).is_failure());
}

#[test]
fn timeouts_on_both_sides_are_a_504() {
    let (mut ex, _) = Exchange::start(&policy(), plan(Lightrag, Mode::Complete), T0);
    ex.on_result(AttemptResult::Failed(Fault::NoFirstByte), T0 + 15 * SEC);
    let step = ex.on_permit(Admission::Allowed, T0 + 15 * SEC);
    assert_eq!(
        step,
        call(Perplexity, Attempt::Fallback, T0 + 30 * SEC, T0 + 30 * SEC)
    );
    let step = ex.on_result(AttemptResult::Failed(Fault::BodyTimeout), T0 + 30 * SEC);
    let f = failed(&step);
    assert_eq!((f.status, f.code), (504, FailCode::UpstreamTimeout));
    assert_eq!(f.attempts.len(), 2);
}

/// Issue 8 item 11: a client that leaves mid-stream aborts the call and hands the probe back.
#[test]
fn a_client_that_leaves_releases_the_probe_and_records_nothing_else() {
    let (mut ex, _) = Exchange::start(&policy(), probe(Lightrag, Mode::Stream), T0);
    ex.on_first_byte(T0 + SEC);
    ex.on_chunk(T0 + 2 * SEC);
    assert_eq!(ex.on_client_gone(T0 + 3 * SEC), Step::Abort);
    assert_eq!(ex.take_records(), [Record::Release { upstream: Lightrag }]);
    assert!(ex.is_finished());
    assert_eq!(
        ex.on_stream_end(StreamEnd::Broken, T0 + 4 * SEC),
        Step::Wait
    );
    assert!(ex.take_records().is_empty());
    // Before the first byte, and without a probe: nothing to release.
    let (mut ex, _) = Exchange::start(&policy(), plan(Lightrag, Mode::Stream), T0);
    assert_eq!(ex.on_client_gone(T0 + SEC), Step::Abort);
    assert!(ex.take_records().is_empty());
}

#[test]
fn events_out_of_phase_change_nothing() {
    let (mut ex, _) = Exchange::start(&policy(), plan(Lightrag, Mode::Complete), T0);
    assert_eq!(ex.on_permit(Admission::Allowed, T0), Step::Wait);
    assert_eq!(
        ex.on_first_byte(T0),
        Step::Wait,
        "complete mode has no first-byte event"
    );
    assert_eq!(ex.on_chunk(T0), Step::Wait);
    assert_eq!(ex.on_timer(T0), Step::Wait);
    assert_eq!(ex.on_answer_head(Verdict::NoAnswer, T0), Step::Wait);
    assert!(ex.take_records().is_empty());
    assert_eq!(
        ex.on_result(AttemptResult::Answered { head_ms: T0 + 10 }, T0 + 10),
        Step::Respond(served(Lightrag))
    );
}

/// The extension point answer-aware routing uses: an answer held back and judged before the
/// client sees a byte.
#[test]
fn a_held_back_answer_that_does_not_answer_falls_back_without_blame() {
    let p = ExchangePolicy {
        inspect: Inspect::HoldBack {
            hold_back_ms: 1_500,
        },
        ..policy()
    };
    let (mut ex, _) = Exchange::start(&p, probe(Lightrag, Mode::Stream), T0);
    // t=0.5s: first text: held back until at most t=2s.
    assert_eq!(
        ex.on_first_byte(T0 + 500),
        Step::Inspect {
            upstream: Lightrag,
            until_ms: T0 + 2_000
        }
    );
    // t=0.6s: the edge's check says it is LightRAG's no-context reply: fall back, release the
    // probe, no breaker record.
    let step = ex.on_answer_head(Verdict::NoAnswer, T0 + 600);
    assert_eq!(
        step,
        Step::Acquire {
            upstream: Perplexity
        }
    );
    assert_eq!(ex.take_records(), [Record::Release { upstream: Lightrag }]);
    ex.on_permit(Admission::Allowed, T0 + 600);
    assert_eq!(
        ex.on_first_byte(T0 + 1_400),
        Step::Inspect {
            upstream: Perplexity,
            until_ms: T0 + 2_900
        }
    );
    let step = ex.on_answer_head(Verdict::Answer, T0 + 1_450);
    assert_eq!(
        step,
        Step::Commit(Commit {
            served: fell_back(Perplexity, FallbackCause::NoAnswer),
            wake_at_ms: T0 + 1_450 + 30 * SEC,
        })
    );
    // When no fallback can be made, the held reply is released after all.
    let (mut ex, _) = Exchange::start(&p, plan(Lightrag, Mode::Complete), T0);
    let step = ex.on_result(AttemptResult::Answered { head_ms: T0 + 700 }, T0 + 800);
    assert_eq!(
        step,
        Step::Inspect {
            upstream: Lightrag,
            until_ms: T0 + 800
        }
    );
    ex.on_answer_head(Verdict::NoAnswer, T0 + 800);
    let step = ex.on_permit(Admission::Rejected, T0 + 800);
    assert_eq!(step, Step::Respond(served(Lightrag)));
    assert_eq!(
        ex.take_records(),
        [Record::Request(RequestRecord {
            no_answer: Some(Lightrag),
            ..match request(Lightrag, OutcomeKind::NoAnswer, 800, Some(700)) {
                Record::Request(q) => q,
                other => panic!("{other:?}"),
            }
        })]
    );
}

#[test]
fn a_shadow_call_never_falls_back() {
    let shadow = Plan {
        purpose: Purpose::Shadow,
        ..plan(Lightrag, Mode::Complete)
    };
    let (mut ex, _) = Exchange::start(&policy(), shadow, T0);
    let step = ex.on_result(AttemptResult::Failed(Fault::Status(500)), T0 + 100);
    assert_eq!(failed(&step).no_fallback, None);
    match ex.take_records().as_slice() {
        [Record::Breaker { .. }, Record::Request(r)] => assert_eq!(r.purpose, Purpose::Shadow),
        other => panic!("{other:?}"),
    }
}

#[test]
fn context_length_errors_are_recognised_in_the_usual_wordings() {
    for text in [
        r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","code":"context_length_exceeded"}}"#,
        "prompt is too long: 210000 tokens > 200000 maximum",
        "the request exceeds the available context size",
        "Input is longer than the model's context window",
    ] {
        assert!(mentions_context_length(text), "{text}");
        assert_eq!(Fault::from_reported_error(text), Fault::ContextLength);
    }
    for text in [
        "Internal server error (error_id: 3f9a0c1b2d4e)",
        "Connection error.",
        "",
    ] {
        assert!(!mentions_context_length(text), "{text}");
        assert_eq!(Fault::from_error_response(500, text), Fault::Status(500));
    }
}

/// One random event the edge might report.
#[derive(Debug, Clone)]
enum Event {
    Permit(bool),
    Result(u8),
    FirstByte,
    Head(bool),
    Chunk,
    Timer,
    End(u8),
    Gone,
}

fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        any::<bool>().prop_map(Event::Permit),
        (0u8..8).prop_map(Event::Result),
        Just(Event::FirstByte),
        any::<bool>().prop_map(Event::Head),
        Just(Event::Chunk),
        Just(Event::Timer),
        (0u8..4).prop_map(Event::End),
        Just(Event::Gone),
    ]
}

fn result_of(i: u8, now: u64) -> AttemptResult {
    match i {
        0 => AttemptResult::NotSent,
        1 => AttemptResult::Answered { head_ms: now },
        2 => AttemptResult::Failed(Fault::Status(500)),
        3 => AttemptResult::Failed(Fault::Status(422)),
        4 => AttemptResult::Failed(Fault::NoFirstByte),
        5 => AttemptResult::Failed(Fault::ContextLength),
        6 => AttemptResult::Failed(Fault::Status(401)),
        _ => AttemptResult::Failed(Fault::Unusable),
    }
}

proptest! {
    /// Whatever the edge reports, in whatever order: no panic; at most one request record;
    /// each call ends in at most one of a breaker record or a release (so a probe permit is
    /// never counted twice); at most two calls; nothing is recorded once the exchange is over.
    #[test]
    fn any_event_sequence_keeps_the_books(
        stream in any::<bool>(),
        probe_first in any::<bool>(),
        hold in any::<bool>(),
        events in prop::collection::vec((arb_event(), 0u64..20_000), 0..40),
    ) {
        let p = ExchangePolicy {
            inspect: if hold { Inspect::HoldBack { hold_back_ms: 500 } } else { Inspect::Off },
            ..policy()
        };
        let mode = if stream { Mode::Stream } else { Mode::Complete };
        let admission = if probe_first { Admission::Probe } else { Admission::Allowed };
        let (mut ex, first) = Exchange::start(&p, Plan { primary_admission: admission, ..plan(Lightrag, mode) }, T0);
        let mut calls = usize::from(matches!(first, Step::Call(_)));
        let mut now = T0;
        let mut records = Vec::new();
        for (e, dt) in events {
            now += dt;
            let was_finished = ex.is_finished();
            let step = match e {
                Event::Permit(ok) => ex.on_permit(if ok { Admission::Allowed } else { Admission::Rejected }, now),
                Event::Result(i) => ex.on_result(result_of(i, now), now),
                Event::FirstByte => ex.on_first_byte(now),
                Event::Head(ok) => ex.on_answer_head(if ok { Verdict::Answer } else { Verdict::NoAnswer }, now),
                Event::Chunk => ex.on_chunk(now),
                Event::Timer => ex.on_timer(now),
                Event::End(i) => ex.on_stream_end([StreamEnd::Done, StreamEnd::BodyEnded, StreamEnd::Broken, StreamEnd::Reported][usize::from(i)], now),
                Event::Gone => ex.on_client_gone(now),
            };
            calls += usize::from(matches!(step, Step::Call(_)));
            let new = ex.take_records();
            if was_finished {
                prop_assert!(new.is_empty());
                prop_assert!(matches!(step, Step::Wait | Step::Done));
            }
            records.extend(new);
        }
        prop_assert!(calls <= 2);
        let requests = records.iter().filter(|r| matches!(r, Record::Request(_))).count();
        prop_assert!(requests <= 1);
        let judged = records.iter().filter(|r| matches!(r, Record::Breaker { .. } | Record::Release { .. })).count();
        prop_assert!(judged <= calls, "{:?}", records);
        if let Some(i) = records.iter().position(|r| matches!(r, Record::Request(_))) {
            prop_assert_eq!(i, records.len() - 1, "the request record comes last");
        }
    }
}
