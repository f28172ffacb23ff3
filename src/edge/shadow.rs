//! Shadow calls (dark launch, docs/answer-aware.md#shadow-comparison): LightRAG answers a
//! question Perplexity already answered, from `wait_until`, and the answer is measured and
//! discarded.
//!
//! The same exchange as a user's stream ([`crate::core::exchange::Purpose::Shadow`]: never
//! falls back), asked with the same conversation, judged by the same no-context check; its one
//! record goes to the shadow series (success, time to first text, whole time, no-context,
//! quality score), never to a breaker, the watch or the arms ([`super::chat`]'s `Driver::book`).
//! Who gets one is the core's shadow gate ([`crate::core::answer::shadow`]). The whole call is
//! bounded by [`SHADOW_MAX_MS`], inside the platform's `wait_until` limit: at that point it is
//! aborted (the fetch with it) and recorded as a timeout.

use super::chat::{open, Answered, Driver, Params, Routed, Shared};
use super::isolate::{now_ms, with};
use super::upstream::{Ask, Next, Targets};
use crate::core::answer::shadow::SHADOW_MAX_MS;
use crate::core::breaker::Admission;
use crate::core::exchange::{Exchange, Mode, NoAnswerBlame, Plan, Purpose, Step, StreamEnd};
use crate::core::model::Upstream;
use crate::core::outcome::OutcomeKind;
use crate::core::window::Sample;
use crate::core::wire::openai::ChatMessage;
use crate::core::wire::{StreamAccumulator, StreamItem};
use futures_util::future::{select, Either};
use std::cell::RefCell;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;
use worker::{console_log, Delay};

/// Everything a shadow call needs, owned (it outlives the request).
pub struct ShadowJob {
    params: Params,
    decision: crate::core::decide::Decision,
    query: String,
    messages: Vec<ChatMessage>,
    rid: String,
}

impl ShadowJob {
    /// The shadow of a routed request: LightRAG, asked as the request would have asked it,
    /// not tied to the client's connection, within [`SHADOW_MAX_MS`].
    pub fn new(r: &Routed, ask: &Ask<'_>, rid: &str) -> ShadowJob {
        let p = &r.params;
        let mut policy = p.policy;
        policy.budget_ms = policy.budget_ms.min(SHADOW_MAX_MS);
        policy.stream.max_ms = policy.stream.max_ms.min(SHADOW_MAX_MS);
        ShadowJob {
            params: Params {
                primary: Upstream::Lightrag,
                policy,
                targets: Targets {
                    client: None,
                    perplexity_query: None,
                    ..p.targets.clone()
                },
                // A shadow's answer is always scored: that is what it is for.
                score: true,
                detector: p.detector.clone(),
                blame: NoAnswerBlame::Nobody,
                key_tag: p.key_tag,
                query_type: p.query_type,
                cache_ttl: 0,
            },
            decision: r.decision.clone(),
            query: ask.query.to_string(),
            messages: ask.messages.to_vec(),
            rid: format!("{rid}-shadow"),
        }
    }
}

/// Runs a shadow call to its end or to [`SHADOW_MAX_MS`], whichever comes first.
pub async fn run(job: ShadowJob) {
    let start = now_ms();
    let plan = Plan {
        primary: Upstream::Lightrag,
        mode: Mode::Stream,
        purpose: Purpose::Shadow,
        primary_admission: Admission::Allowed,
        no_answer_blame: NoAnswerBlame::Nobody,
    };
    let (ex, first) = Exchange::start(&job.params.policy, plan, start);
    let drv: Shared = Rc::new(RefCell::new(Driver::new(
        ex,
        job.decision.clone(),
        &job.params,
        &job.rid,
    )));
    let delay = Delay::from(Duration::from_millis(SHADOW_MAX_MS));
    let done = {
        let work = drive(&drv, first, &job);
        matches!(select(pin!(work), pin!(delay)).await, Either::Left(_))
    };
    if !done {
        console_log!(
            "request {}: shadow call aborted after {SHADOW_MAX_MS} ms",
            job.rid
        );
        let now = now_ms();
        let mut sample = Sample::new(OutcomeKind::TotalTimeout, SHADOW_MAX_MS);
        sample.total_ms = Some(now.saturating_sub(start));
        sample.query_type = Some(job.params.query_type);
        with(|i| i.record_shadow(&sample, now));
    }
}

/// Folds stream items into the answer; how the stream ended, if they say so.
fn fold(acc: &mut StreamAccumulator, items: Vec<StreamItem>) -> Option<StreamEnd> {
    for it in items {
        acc.apply(&it);
        match it {
            StreamItem::Error(_) => return Some(StreamEnd::Reported),
            StreamItem::Done => return Some(StreamEnd::Done),
            _ => {}
        }
    }
    None
}

async fn drive(drv: &Shared, first: Step, job: &ShadowJob) {
    let ask = Ask {
        query: &job.query,
        messages: &job.messages,
    };
    let mut not_sent = None;
    let (commit, mut s) = match open(drv, first, &job.params, &ask, &mut not_sent).await {
        Ok(x) => x,
        Err(_) => {
            drv.borrow_mut().book(None);
            return;
        }
    };
    let mut acc = StreamAccumulator::new();
    let mut wake = commit.wake_at_ms;
    let mut step = match fold(&mut acc, std::mem::take(&mut s.initial)) {
        Some(end) => drv.borrow_mut().ex.on_stream_end(end, now_ms()),
        None => Step::Forward { wake_at_ms: wake },
    };
    loop {
        match step {
            Step::Forward { wake_at_ms } => wake = wake_at_ms,
            Step::Finish => {
                let answer = std::mem::take(&mut acc).into_answer();
                drv.borrow_mut().book(Some(&Answered {
                    query: &job.query,
                    answer: &answer,
                }));
                return;
            }
            _ => {
                drv.borrow_mut().book(None);
                return;
            }
        }
        let next = s.next(wake).await;
        let now = now_ms();
        step = match next {
            Next::Items(v) => match fold(&mut acc, v) {
                Some(end) => drv.borrow_mut().ex.on_stream_end(end, now),
                None => drv.borrow_mut().ex.on_chunk(now),
            },
            Next::End(v) => {
                let end = fold(&mut acc, v).unwrap_or(StreamEnd::BodyEnded);
                drv.borrow_mut().ex.on_stream_end(end, now)
            }
            Next::Broken(_) => drv.borrow_mut().ex.on_stream_end(StreamEnd::Broken, now),
            Next::Timer => drv.borrow_mut().ex.on_timer(now),
        };
    }
}
