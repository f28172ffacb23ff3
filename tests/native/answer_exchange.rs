//! The exchange's no-answer paths on a virtual clock (answer-aware routing): whom a no-context
//! reply blames, the held reply served when the fallback cannot be made or fails, the request
//! record naming the upstream that had no answer, and a shadow call that never falls back.

use cmo_edge_router::core::breaker::Admission;
use cmo_edge_router::core::config;
use cmo_edge_router::core::exchange::{
    AttemptResult, Exchange, ExchangePolicy, Fallback, FallbackCause, Fault, Inspect, Mode,
    NoAnswerBlame, Plan, Purpose, Record, Served, Step, Verdict,
};
use cmo_edge_router::core::model::Upstream::{self, Lightrag, Perplexity};
use cmo_edge_router::core::outcome::{Outcome, OutcomeKind};
use serde_json::{json, Map};

const T0: u64 = 1_700_000_000_000;

fn policy() -> ExchangePolicy {
    ExchangePolicy {
        inspect: Inspect::HoldBack {
            hold_back_ms: 1_500,
        },
        ..ExchangePolicy::default()
    }
}

fn plan(mode: Mode, blame: NoAnswerBlame) -> Plan {
    Plan {
        primary: Lightrag,
        mode,
        purpose: Purpose::Serve,
        primary_admission: Admission::Allowed,
        no_answer_blame: blame,
    }
}

fn requests(records: &[Record]) -> Vec<(Upstream, OutcomeKind, bool, Option<Upstream>)> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Request(q) => Some((q.upstream, q.kind, q.fallback, q.no_answer)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_config_turns_the_hold_back_on_by_default() {
    assert_eq!(
        ExchangePolicy::default().inspect,
        Inspect::HoldBack {
            hold_back_ms: 1_500
        }
    );
    let mut vars = Map::new();
    vars.insert("LIGHTRAG_NO_CONTEXT_FALLBACK".into(), json!("off"));
    let c = config::load(&vars, None, 0).config;
    assert_eq!(ExchangePolicy::from_config(&c).inspect, Inspect::Off);
    vars.insert("LIGHTRAG_NO_CONTEXT_FALLBACK".into(), json!("on"));
    vars.insert("LIGHTRAG_NO_CONTEXT_HOLD_BACK_MS".into(), json!("250"));
    let c = config::load(&vars, None, 0).config;
    assert_eq!(
        ExchangePolicy::from_config(&c).inspect,
        Inspect::HoldBack { hold_back_ms: 250 }
    );
}

#[test]
fn a_no_context_reply_falls_back_and_the_record_names_it() {
    // t=0.3 s: LightRAG's JSON arrives; t=0.4 s: judged no-context; Perplexity answers at 1.2 s.
    let (mut ex, _) = Exchange::start(&policy(), plan(Mode::Complete, NoAnswerBlame::Nobody), T0);
    ex.on_result(AttemptResult::Answered { head_ms: T0 + 300 }, T0 + 300);
    assert_eq!(
        ex.on_answer_head(Verdict::NoAnswer, T0 + 400),
        Step::Acquire {
            upstream: Perplexity
        }
    );
    assert!(
        ex.take_records().is_empty(),
        "no breaker record, no probe to release"
    );
    ex.on_permit(Admission::Allowed, T0 + 400);
    ex.on_result(
        AttemptResult::Answered {
            head_ms: T0 + 1_100,
        },
        T0 + 1_200,
    );
    let step = ex.on_answer_head(Verdict::Answer, T0 + 1_200);
    assert_eq!(
        step,
        Step::Respond(Served {
            upstream: Perplexity,
            fallback: Some(Fallback {
                from: Lightrag,
                cause: FallbackCause::NoAnswer
            }),
        })
    );
    let records = ex.take_records();
    assert_eq!(
        records[0],
        Record::Breaker {
            upstream: Perplexity,
            outcome: Outcome::new(OutcomeKind::Success, 700)
        }
    );
    assert_eq!(
        requests(&records),
        [(Perplexity, OutcomeKind::Success, true, Some(Lightrag))]
    );
}

#[test]
fn while_the_watch_is_escalated_a_no_context_reply_is_a_breaker_failure() {
    let (mut ex, _) = Exchange::start(&policy(), plan(Mode::Complete, NoAnswerBlame::Upstream), T0);
    ex.on_result(
        AttemptResult::Answered {
            head_ms: T0 + 8_100,
        },
        T0 + 8_100,
    );
    ex.on_answer_head(Verdict::NoAnswer, T0 + 8_100);
    assert_eq!(
        ex.take_records(),
        [Record::Breaker {
            upstream: Lightrag,
            outcome: Outcome::new(OutcomeKind::NoAnswerOutage, 8_100),
        }]
    );
    assert!(OutcomeKind::NoAnswerOutage.is_failure());
    assert!(!OutcomeKind::NoAnswer.is_failure());
}

#[test]
fn when_the_fallback_fails_the_held_reply_is_served_not_an_error() {
    for mode in [Mode::Complete, Mode::Stream] {
        let (mut ex, _) = Exchange::start(&policy(), plan(mode, NoAnswerBlame::Nobody), T0);
        match mode {
            Mode::Complete => {
                ex.on_result(AttemptResult::Answered { head_ms: T0 + 100 }, T0 + 100);
            }
            Mode::Stream => {
                ex.on_first_byte(T0 + 100);
            }
        }
        ex.on_answer_head(Verdict::NoAnswer, T0 + 120);
        ex.on_permit(Admission::Allowed, T0 + 120);
        let step = ex.on_result(AttemptResult::Failed(Fault::Status(503)), T0 + 400);
        match (mode, &step) {
            (Mode::Complete, Step::Respond(s))
            | (
                Mode::Stream,
                Step::Commit(cmo_edge_router::core::exchange::Commit { served: s, .. }),
            ) => {
                assert_eq!(
                    *s,
                    Served {
                        upstream: Lightrag,
                        fallback: None
                    },
                    "{mode:?}"
                )
            }
            other => panic!("{other:?}"),
        }
        let records = ex.take_records();
        // Perplexity's failure is its own; the request is LightRAG's no-answer.
        assert!(records.contains(&Record::Breaker {
            upstream: Perplexity,
            outcome: Outcome::new(OutcomeKind::HttpServerError(503), 280),
        }));
        if mode == Mode::Complete {
            assert_eq!(
                requests(&records),
                [(Lightrag, OutcomeKind::NoAnswer, false, Some(Lightrag))]
            );
        }
    }
}

#[test]
fn a_shadow_no_context_reply_is_served_to_nobody_and_recorded_as_such() {
    let shadow = Plan {
        purpose: Purpose::Shadow,
        ..plan(Mode::Stream, NoAnswerBlame::Nobody)
    };
    let (mut ex, _) = Exchange::start(&policy(), shadow, T0);
    ex.on_first_byte(T0 + 90);
    let step = ex.on_answer_head(Verdict::NoAnswer, T0 + 95);
    assert!(matches!(step, Step::Commit(_)), "{step:?}");
    ex.on_stream_end(
        cmo_edge_router::core::exchange::StreamEnd::BodyEnded,
        T0 + 100,
    );
    let records = ex.take_records();
    match records.as_slice() {
        [Record::Request(q)] => {
            assert_eq!(
                (q.purpose, q.kind, q.no_answer),
                (Purpose::Shadow, OutcomeKind::NoAnswer, Some(Lightrag))
            );
            assert_eq!(q.first_byte_ms, Some(90));
        }
        other => panic!("{other:?}"),
    }
}
