//! One client request's exchange with the upstreams, as a pure state machine: which upstream
//! to call with which deadlines, when to fall back, when a stream commits, when it is cut, and
//! what to record — decided here, performed by the edge.
//!
//! Why a machine: the attempt policy used to live twice in the Worker (once for complete
//! answers, once for streams), with a local refusal signalled by `latency_ms == 0` that slipped
//! past the fallback settings, a probe permit drawn before the fallback plan could decline, and
//! a stream's whole duration judged as its latency — so every long answer was a "slow call"
//! and three of them opened the breaker. Like quinn's connection state machine, this module
//! takes time as an argument and returns instructions ([`Step`]); the edge (`edge::chat`,
//! `edge::upstream`) only fetches, races the deadlines the steps carry, streams, and reports
//! what it saw through the `on_*` events. So the whole protocol is tested on timelines, with
//! no runtime and no sleeps (`tests/native/exchange.rs`).
//!
//! The shape of one exchange:
//!
//! ```text
//! start ─▶ Call(primary) ─┬─ on_result(Answered) ─────────────────────────▶ Respond
//!                         ├─ on_first_byte ─▶ Commit ─▶ Forward … ─┬─ on_stream_end ─▶ Finish | Cut
//!                         │                                        ├─ on_timer ──────▶ Forward | Cut
//!                         │                                        └─ on_client_gone ▶ Abort
//!                         └─ on_result(NotSent | Failed) ─▶ Acquire(other) ─▶ on_permit ─▶ Call(fallback) …
//!                                                      └─▶ Fail (no fallback, or permit refused)
//! ```
//!
//! Rules it keeps:
//! - **One budget to the first byte.** `LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS` covers every
//!   attempt up to the first byte ([`crate::core::fallback::FallbackPolicy::timeouts`]); a
//!   fallback happens only before the first byte reached the client.
//! - **Slowness is the time to the first byte** (response headers for a complete answer, the
//!   first answer text for a stream), never the answer's length. After the first byte a stream
//!   is bounded by [`StreamLimits`]: silence between chunks and a maximum duration.
//! - **Each attempt is classified once** ([`Fault::kind`]); the breaker gets upstream-judging
//!   outcomes only ([`Record::Breaker`]); a request-caused refusal, a no-answer or a client
//!   that left hands its probe permit back ([`Record::Release`]) instead; the metrics get one
//!   [`RequestRecord`] per exchange.
//! - **A permit is drawn only when a call will be made**: the primary's by the routing
//!   decision (its [`Plan::primary_admission`]), a fallback's by [`Step::Acquire`] after the
//!   fallback plan said yes.
//!
//! Extension points (answer-aware routing and shadow calls build on them):
//! - [`Inspect::HoldBack`] makes the exchange hold an answer back ([`Step::Inspect`]) before it
//!   reaches the client; the edge judges it (the no-context detector,
//!   [`crate::core::answer::detect`]) and reports [`Exchange::on_answer_head`] with a
//!   [`Verdict`]. [`Verdict::NoAnswer`] falls back like a failure (before the first byte) but
//!   blames nobody — no breaker record, the permit is released — unless the plan says the
//!   upstream's no-answers are an outage ([`NoAnswerBlame::Upstream`], from the no-context
//!   watch): then it is a breaker failure. If no fallback can be made, or the fallback fails,
//!   the held answer is served after all (kind [`OutcomeKind::NoAnswer`]): a poor answer beats
//!   an error. Every request record says which upstream gave a no-answer, if one did.
//! - [`Purpose::Shadow`] runs the same machine for a call nobody waits for: no fallback, and
//!   its [`RequestRecord`] says it is a shadow so the edge can keep a separate series.

pub mod event;
pub mod policy;
pub mod record;
pub mod step;

pub use event::{
    body_end_is_complete, mentions_context_length, AttemptResult, Fault, StreamEnd, Verdict,
};
pub use policy::{ExchangePolicy, Inspect, StreamLimits};
pub use record::{Purpose, Record, RequestRecord};
pub use step::{
    Attempted, Call, Commit, Cut, CutCause, FailCode, Failed, Fallback, FallbackCause, Served, Step,
};

use crate::core::breaker::Admission;
use crate::core::fallback::{Attempt, Deadline, FallbackCase, FallbackDecision, NoFallbackReason};
use crate::core::model::Upstream;
use crate::core::outcome::{Outcome, OutcomeKind};
use serde::Serialize;

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One complete answer (JSON).
    Complete,
    /// A stream (SSE to the client).
    Stream,
}

/// How an exchange starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The routing decision's upstream.
    pub primary: Upstream,
    pub mode: Mode,
    pub purpose: Purpose,
    /// What the primary's breaker said when the routing decision drew its permit:
    /// [`Admission::Probe`] when this request is a half-open probe, else
    /// [`Admission::Allowed`] (also for an upstream whose breaker the decision does not ask).
    pub primary_admission: Admission,
    /// Whom a [`Verdict::NoAnswer`] blames.
    pub no_answer_blame: NoAnswerBlame,
}

/// Whom an answer judged [`Verdict::NoAnswer`] blames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoAnswerBlame {
    /// Nobody: it proves nothing about the upstream's health (its probe permit goes back).
    #[default]
    Nobody,
    /// The upstream: recorded as a breaker failure ([`OutcomeKind::NoAnswerOutage`]). The
    /// edge asks for this while the no-context watch is escalated
    /// ([`crate::core::answer::watch`]).
    Upstream,
}

/// The call in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Active {
    upstream: Upstream,
    attempt: Attempt,
    admission: Admission,
    started_ms: u64,
}

/// An answer whose first byte arrived, not yet released (or released, for a stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    active: Active,
    /// When its first byte arrived.
    first_byte_at_ms: u64,
    verdict: Verdict,
}

impl Held {
    /// The call's time to first byte.
    fn first_byte_ms(&self) -> u64 {
        self.first_byte_at_ms.saturating_sub(self.active.started_ms)
    }
}

/// A committed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Streaming {
    held: Held,
    committed_ms: u64,
    last_chunk_ms: u64,
    ends_by_ms: u64,
}

/// Where the exchange is. Each phase carries what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A call is in flight; nothing reached the client.
    Calling(Active),
    /// Waiting for the fallback upstream's permit; `held` is an answer judged
    /// [`Verdict::NoAnswer`], released if the fallback cannot be made after all.
    Acquiring {
        upstream: Upstream,
        held: Option<Held>,
    },
    /// An answer held back for the edge's verdict.
    Inspecting(Held),
    /// A stream committed to the client.
    Streaming(Streaming),
    /// Over.
    Done,
}

/// What made an attempt not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Failed(OutcomeKind),
    NotSent,
    NoAnswer,
}

/// One client request's exchange. See the module docs.
#[derive(Debug, Clone)]
pub struct Exchange {
    policy: ExchangePolicy,
    plan: Plan,
    deadline: Deadline,
    phase: Phase,
    attempts: Vec<Attempted>,
    fallback: Option<Fallback>,
    /// An answer judged [`Verdict::NoAnswer`] while its fallback is tried: served if that fails.
    no_answer_held: Option<Held>,
    records: Vec<Record>,
}

impl Exchange {
    /// Starts an exchange at `now_ms`: the first step is always the call to the primary.
    pub fn start(policy: &ExchangePolicy, plan: Plan, now_ms: u64) -> (Exchange, Step) {
        let mut ex = Exchange {
            policy: *policy,
            plan,
            deadline: Deadline::new(now_ms, policy.budget_ms),
            phase: Phase::Done,
            attempts: Vec::new(),
            fallback: None,
            no_answer_held: None,
            records: Vec::new(),
        };
        let step = ex.call(
            plan.primary,
            Attempt::Primary,
            plan.primary_admission,
            now_ms,
        );
        (ex, step)
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Whether the exchange is over (no event will change anything any more).
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The records produced since the last call, in order. Drain after every event.
    pub fn take_records(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.records)
    }

    /// What the breaker said to [`Step::Acquire`].
    pub fn on_permit(&mut self, admission: Admission, now_ms: u64) -> Step {
        let Phase::Acquiring { upstream, held } = self.phase else {
            return Step::Wait;
        };
        if admission.is_admitted() {
            return self.call(upstream, Attempt::Fallback, admission, now_ms);
        }
        match held {
            // The no-answer reply is still better than an error.
            Some(h) => {
                self.fallback = None;
                self.no_answer_held = None;
                self.serve(h, now_ms)
            }
            None => self.fail(Some(NoFallbackReason::OtherUnhealthy), now_ms),
        }
    }

    /// How the call of the last [`Step::Call`] ended before its first byte reached the client
    /// (or, for a complete answer, with the answer).
    pub fn on_result(&mut self, result: AttemptResult, now_ms: u64) -> Step {
        let Phase::Calling(a) = self.phase else {
            return Step::Wait;
        };
        match result {
            AttemptResult::NotSent => {
                self.note(a.upstream, OutcomeKind::NotSent);
                self.release(&a);
                self.after(a, Trigger::NotSent, now_ms)
            }
            AttemptResult::Failed(fault) => {
                let kind = fault.kind();
                self.note(a.upstream, kind);
                if kind.is_request_caused() {
                    self.release(&a);
                } else {
                    let latency = now_ms.saturating_sub(a.started_ms);
                    self.records.push(Record::Breaker {
                        upstream: a.upstream,
                        outcome: Outcome::new(kind, latency),
                    });
                }
                self.after(a, Trigger::Failed(kind), now_ms)
            }
            AttemptResult::Answered { head_ms } => {
                let held = Held {
                    active: a,
                    first_byte_at_ms: head_ms.clamp(a.started_ms, now_ms.max(a.started_ms)),
                    verdict: Verdict::Answer,
                };
                self.inspect_or_serve(held, now_ms, now_ms)
            }
        }
    }

    /// A stream's first answer text arrived (before the deadline of the last [`Step::Call`]).
    pub fn on_first_byte(&mut self, now_ms: u64) -> Step {
        let Phase::Calling(a) = self.phase else {
            return Step::Wait;
        };
        if self.plan.mode != Mode::Stream {
            return Step::Wait;
        }
        let held = Held {
            active: a,
            first_byte_at_ms: now_ms,
            verdict: Verdict::Answer,
        };
        let until = match self.policy.inspect {
            Inspect::Off => now_ms,
            Inspect::HoldBack { hold_back_ms } => now_ms.saturating_add(hold_back_ms),
        };
        self.inspect_or_serve(held, until, now_ms)
    }

    /// The edge's verdict on an answer held back by [`Step::Inspect`].
    pub fn on_answer_head(&mut self, verdict: Verdict, now_ms: u64) -> Step {
        let Phase::Inspecting(held) = self.phase else {
            return Step::Wait;
        };
        match verdict {
            Verdict::Answer => self.serve(held, now_ms),
            Verdict::NoAnswer => {
                let held = Held {
                    verdict: Verdict::NoAnswer,
                    ..held
                };
                self.note(held.active.upstream, OutcomeKind::NoAnswer);
                match self.plan.no_answer_blame {
                    NoAnswerBlame::Nobody => self.release(&held.active),
                    NoAnswerBlame::Upstream => self.records.push(Record::Breaker {
                        upstream: held.active.upstream,
                        outcome: Outcome::new(OutcomeKind::NoAnswerOutage, held.first_byte_ms()),
                    }),
                }
                let a = held.active;
                if self.plan.purpose == Purpose::Shadow || a.attempt == Attempt::Fallback {
                    return self.serve(held, now_ms);
                }
                match self.fallback_to(a.upstream, Trigger::NoAnswer, now_ms) {
                    Ok(to) => {
                        self.no_answer_held = Some(held);
                        self.acquire(a.upstream, to, FallbackCause::NoAnswer, Some(held))
                    }
                    Err(_) => self.serve(held, now_ms),
                }
            }
        }
    }

    /// A committed stream delivered a chunk.
    pub fn on_chunk(&mut self, now_ms: u64) -> Step {
        let Phase::Streaming(mut s) = self.phase else {
            return Step::Wait;
        };
        s.last_chunk_ms = s.last_chunk_ms.max(now_ms);
        self.phase = Phase::Streaming(s);
        Step::Forward {
            wake_at_ms: self.wake_at(&s),
        }
    }

    /// The `wake_at_ms` of the last [`Step::Commit`] / [`Step::Forward`] passed with nothing
    /// new: cut the stream if it has been silent too long or gone on too long.
    pub fn on_timer(&mut self, now_ms: u64) -> Step {
        let Phase::Streaming(s) = self.phase else {
            return Step::Wait;
        };
        if now_ms >= s.ends_by_ms {
            self.cut(s, CutCause::TooLong)
        } else if now_ms >= s.last_chunk_ms.saturating_add(self.policy.stream.idle_ms) {
            self.cut(s, CutCause::Idle)
        } else {
            Step::Forward {
                wake_at_ms: self.wake_at(&s),
            }
        }
    }

    /// A committed stream ended.
    pub fn on_stream_end(&mut self, end: StreamEnd, _now_ms: u64) -> Step {
        let Phase::Streaming(s) = self.phase else {
            return Step::Wait;
        };
        match end {
            StreamEnd::Done => self.finish(s),
            StreamEnd::BodyEnded if body_end_is_complete(s.held.active.upstream) => self.finish(s),
            StreamEnd::BodyEnded => self.cut(s, CutCause::Unfinished),
            StreamEnd::Broken => self.cut(s, CutCause::Broken),
            StreamEnd::Reported => self.cut(s, CutCause::Reported),
        }
    }

    /// The client went away. A call in flight hands its permit back; nothing is judged and no
    /// request is recorded.
    pub fn on_client_gone(&mut self, _now_ms: u64) -> Step {
        match self.phase {
            Phase::Done => return Step::Done,
            Phase::Calling(a) => self.release(&a),
            Phase::Inspecting(h) => self.release(&h.active),
            Phase::Streaming(s) if s.held.verdict == Verdict::Answer => {
                self.release(&s.held.active)
            }
            // No permit held: not drawn yet, or already released with the no-answer verdict.
            Phase::Streaming(_) | Phase::Acquiring { .. } => {}
        }
        self.phase = Phase::Done;
        Step::Abort
    }

    fn call(
        &mut self,
        upstream: Upstream,
        attempt: Attempt,
        admission: Admission,
        now: u64,
    ) -> Step {
        let t = self.policy.fallback.timeouts(&self.deadline, now, attempt);
        self.phase = Phase::Calling(Active {
            upstream,
            attempt,
            admission,
            started_ms: now,
        });
        Step::Call(Call {
            upstream,
            attempt,
            first_byte_by_ms: now.saturating_add(t.ttfb_ms),
            complete_by_ms: now.saturating_add(t.total_ms),
        })
    }

    fn note(&mut self, upstream: Upstream, kind: OutcomeKind) {
        self.attempts.push(Attempted { upstream, kind });
    }

    /// Hands the call's permit back if it holds a probe.
    fn release(&mut self, a: &Active) {
        if a.admission == Admission::Probe {
            self.records.push(Record::Release {
                upstream: a.upstream,
            });
        }
    }

    /// After an attempt that did not serve: fall back, or fail.
    fn after(&mut self, a: Active, trigger: Trigger, now: u64) -> Step {
        if self.plan.purpose == Purpose::Shadow || a.attempt == Attempt::Fallback {
            // The fallback after a no-answer failed: the held answer is better than an error.
            if let Some(h) = self.no_answer_held.take() {
                self.fallback = None;
                return self.serve(h, now);
            }
            return self.fail(None, now);
        }
        let cause = match trigger {
            Trigger::Failed(kind) => FallbackCause::Failed(kind),
            Trigger::NotSent => FallbackCause::NotSent,
            Trigger::NoAnswer => FallbackCause::NoAnswer,
        };
        match self.fallback_to(a.upstream, trigger, now) {
            Ok(to) => self.acquire(a.upstream, to, cause, None),
            Err(reason) => self.fail(Some(reason), now),
        }
    }

    /// Whether to fall back from `from` (the fallback policy, with the other breaker's answer
    /// left for [`Step::Acquire`]).
    fn fallback_to(
        &self,
        from: Upstream,
        trigger: Trigger,
        now: u64,
    ) -> Result<Upstream, NoFallbackReason> {
        let remaining_ms = self.deadline.remaining(now);
        let fb = &self.policy.fallback;
        match trigger {
            Trigger::Failed(kind) => match fb.plan(&FallbackCase {
                primary: from,
                kind,
                first_byte_sent: false,
                other_admits: true,
                remaining_ms,
            }) {
                FallbackDecision::Fallback { to, .. } => Ok(to),
                FallbackDecision::NoFallback { reason } => Err(reason),
            },
            // Nothing is wrong with the upstream: the configured direction and the budget
            // still decide.
            Trigger::NotSent | Trigger::NoAnswer => {
                if !fb.allows(from) {
                    Err(NoFallbackReason::Disabled)
                } else if remaining_ms < fb.settings().min_budget_ms {
                    Err(NoFallbackReason::BudgetExhausted)
                } else {
                    Ok(from.other())
                }
            }
        }
    }

    fn acquire(
        &mut self,
        from: Upstream,
        to: Upstream,
        cause: FallbackCause,
        held: Option<Held>,
    ) -> Step {
        self.fallback = Some(Fallback { from, cause });
        self.phase = Phase::Acquiring { upstream: to, held };
        Step::Acquire { upstream: to }
    }

    /// Holds `held` back for a verdict, or releases it.
    fn inspect_or_serve(&mut self, held: Held, until_ms: u64, now: u64) -> Step {
        match self.policy.inspect {
            Inspect::Off => self.serve(held, now),
            Inspect::HoldBack { .. } => {
                self.phase = Phase::Inspecting(held);
                Step::Inspect {
                    upstream: held.active.upstream,
                    until_ms,
                }
            }
        }
    }

    /// Releases an answer to the client: a complete answer is sent, a stream commits.
    fn serve(&mut self, held: Held, now: u64) -> Step {
        match self.plan.mode {
            Mode::Complete => {
                self.judge(&held);
                self.request(
                    held.active.upstream,
                    self.kind_of(&held),
                    now,
                    Some(held.first_byte_ms()),
                );
                self.phase = Phase::Done;
                Step::Respond(self.served(held.active.upstream))
            }
            Mode::Stream => {
                let s = Streaming {
                    held,
                    committed_ms: now,
                    last_chunk_ms: now,
                    ends_by_ms: now.saturating_add(self.policy.stream.max_ms),
                };
                self.phase = Phase::Streaming(s);
                Step::Commit(Commit {
                    served: self.served(held.active.upstream),
                    wake_at_ms: self.wake_at(&s),
                })
            }
        }
    }

    /// The kind an answer is recorded as: judged on its time to first byte.
    fn kind_of(&self, held: &Held) -> OutcomeKind {
        match held.verdict {
            Verdict::Answer => {
                Outcome::answered(held.first_byte_ms(), self.policy.slow_call_ms).kind
            }
            Verdict::NoAnswer => OutcomeKind::NoAnswer,
        }
    }

    /// The breaker record of an answer (none for a no-answer: its permit went back already).
    fn judge(&mut self, held: &Held) {
        if held.verdict == Verdict::Answer {
            self.records.push(Record::Breaker {
                upstream: held.active.upstream,
                outcome: Outcome::new(self.kind_of(held), held.first_byte_ms()),
            });
        }
    }

    fn served(&self, upstream: Upstream) -> Served {
        Served {
            upstream,
            fallback: self.fallback,
        }
    }

    fn wake_at(&self, s: &Streaming) -> u64 {
        s.last_chunk_ms
            .saturating_add(self.policy.stream.idle_ms)
            .min(s.ends_by_ms)
    }

    fn request(&mut self, upstream: Upstream, kind: OutcomeKind, at: u64, first_byte: Option<u64>) {
        self.records.push(Record::Request(RequestRecord {
            upstream,
            kind,
            latency_ms: at.saturating_sub(self.deadline.start_ms),
            fallback: self.fallback.is_some(),
            first_byte_ms: first_byte,
            purpose: self.plan.purpose,
            no_answer: self
                .attempts
                .iter()
                .find(|a| a.kind == OutcomeKind::NoAnswer)
                .map(|a| a.upstream),
        }));
    }

    fn finish(&mut self, s: Streaming) -> Step {
        self.judge(&s.held);
        self.request(
            s.held.active.upstream,
            self.kind_of(&s.held),
            s.committed_ms,
            Some(s.held.first_byte_ms()),
        );
        self.phase = Phase::Done;
        Step::Finish
    }

    fn cut(&mut self, s: Streaming, cause: CutCause) -> Step {
        let u = s.held.active.upstream;
        if s.held.verdict == Verdict::Answer {
            self.records.push(Record::Breaker {
                upstream: u,
                outcome: Outcome::new(OutcomeKind::TruncatedStream, s.held.first_byte_ms()),
            });
        }
        self.request(
            u,
            OutcomeKind::TruncatedStream,
            s.committed_ms,
            Some(s.held.first_byte_ms()),
        );
        self.phase = Phase::Done;
        Step::Cut(Cut { upstream: u, cause })
    }

    fn fail(&mut self, no_fallback: Option<NoFallbackReason>, now: u64) -> Step {
        let kind = self
            .attempts
            .last()
            .map_or(OutcomeKind::NetworkError, |a| a.kind);
        self.fallback = None;
        self.request(self.plan.primary, kind, now, None);
        self.phase = Phase::Done;
        let code = FailCode::for_kind(kind);
        Step::Fail(Failed {
            status: code.status(),
            code,
            attempts: self.attempts.clone(),
            no_fallback,
        })
    }
}
