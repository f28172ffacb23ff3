//! Replaying a sequence of calls through the real breaker: "how would the breaker have reacted
//! to last night's errors?" — the preview's breaker playground.
//!
//! Why a replay in core rather than a drawing of the rules: the breaker's behaviour is in its
//! details (the consecutive run *and* the windowed rate, the minimum calls, slow calls counted
//! as failures, 4xx not, open periods that grow per trip, probes that close or reopen it). A
//! page that re-implemented them would drift; this drives [`Breaker`] itself, the way the edge
//! does — `admit` when a request wants LightRAG, `record` when its call finishes — on the
//! calls' own clock, and reports every state change with the reason in words.
//!
//! Calls are requests that want LightRAG at `at_ms`, with what LightRAG would answer. A call
//! the breaker rejects never reaches LightRAG (the router serves it from Perplexity) and is not
//! recorded; an admitted one finishes `latency_ms` later and is recorded then, so slow calls
//! overlap later arrivals as they do in production. As in the edge's exchange
//! (`core::exchange`), an outcome the request caused (its 400/404/422, a context-length error,
//! not sent) or a no-answer judges nothing: a probe's permit is handed back
//! ([`Breaker::release`]) and the breaker records nothing. At equal times completions come before
//! arrivals. The open → half-open change is derived from time (no call causes it); it is
//! reported at the moment the open period ends. Nothing here is random: each call carries the
//! roll its half-open admission uses, and one jitter roll applies to every trip. Every call
//! counts as a different user (its own key tag), so the distinct-key rule a trip needs
//! (`LIGHTRAG_CIRCUIT_BREAKER_MIN_DISTINCT_KEYS`) is met as it is under real traffic.

use super::{Admission, Breaker, BreakerPolicy, BreakerState, TransitionCause};
use crate::core::keytag::KeyTag;
use crate::core::outcome::{Outcome, OutcomeKind};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Most calls one replay takes (the page stays responsive; a day at one call per second fits).
pub const MAX_CALLS: usize = 200_000;

/// One request that wants LightRAG.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Call {
    pub at_ms: u64,
    pub outcome: Outcome,
    /// Uniform in [0, 1): below the half-open probe share, the request may be a probe.
    pub probe_roll: f64,
}

/// What to replay and how.
#[derive(Debug, Clone, Copy)]
pub struct ReplayInput<'a> {
    pub policy: BreakerPolicy,
    /// In arrival order (sorted by `at_ms`; [`replay`] refuses them otherwise).
    pub calls: &'a [Call],
    /// The jitter roll of every trip; 0.5 means no jitter.
    pub jitter_roll: f64,
    /// Draw the timeline at least until here (e.g. the end of the generated period).
    pub until_ms: Option<u64>,
}

/// Why the state changed (snake_case in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayCause {
    ConsecutiveFailures,
    FailureRate,
    ProbeFailed,
    ProbesSucceeded,
    /// The open period ended: half-open, probes are admitted.
    RecoveryElapsed,
    ForcedOpen,
    Reset,
}

impl From<TransitionCause> for ReplayCause {
    fn from(c: TransitionCause) -> ReplayCause {
        match c {
            TransitionCause::ConsecutiveFailures => ReplayCause::ConsecutiveFailures,
            TransitionCause::FailureRate => ReplayCause::FailureRate,
            TransitionCause::ProbeFailed => ReplayCause::ProbeFailed,
            TransitionCause::ProbesSucceeded => ReplayCause::ProbesSucceeded,
            TransitionCause::ForcedOpen => ReplayCause::ForcedOpen,
            TransitionCause::Reset => ReplayCause::Reset,
        }
    }
}

/// One state change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayTransition {
    pub at_ms: u64,
    pub from: BreakerState,
    pub to: BreakerState,
    pub cause: ReplayCause,
    /// When `to` is open: when it turns half-open.
    pub open_until_ms: Option<u64>,
    /// The cause in words, with the numbers behind it.
    pub reason: String,
}

/// A stretch of time in one state, for drawing: `[from_ms, to_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Segment {
    pub state: BreakerState,
    pub from_ms: u64,
    pub to_ms: u64,
}

/// What happened to one call (same order as the input).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CallResult {
    pub at_ms: u64,
    pub admission: Admission,
    pub kind: OutcomeKind,
    /// Whether the breaker counts it as a failure (only meaningful when admitted).
    pub failure: bool,
    /// Whether the breaker judged it (false when rejected, and for request-caused outcomes and
    /// no-answers, which only hand a probe permit back).
    pub judged: bool,
    /// When it finished and was recorded; `None` when rejected.
    pub finished_ms: Option<u64>,
}

/// The whole replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replay {
    pub transitions: Vec<ReplayTransition>,
    pub segments: Vec<Segment>,
    pub calls: Vec<CallResult>,
    pub admitted: u64,
    pub rejected: u64,
    pub probes: u64,
    pub failures: u64,
    pub trips: u64,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// A replay input that cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayError {
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ReplayError {}

struct Run {
    b: Breaker,
    policy: BreakerPolicy,
    out: Replay,
    /// Open until this time, to be reported as half-open once reached.
    pending_half_open: Option<(u64, u64)>,
    state: BreakerState,
}

impl Run {
    fn transition(&mut self, t: ReplayTransition) {
        self.state = t.to;
        if t.to == BreakerState::Open {
            self.out.trips += 1;
            self.pending_half_open = t.open_until_ms.map(|u| (t.at_ms, u));
        }
        self.out.transitions.push(t);
    }

    /// Reports the open → half-open change if the open period ended by `now`.
    fn catch_up(&mut self, now: u64) {
        if let Some((opened, until)) = self.pending_half_open {
            if until <= now && self.state == BreakerState::Open {
                self.pending_half_open = None;
                self.transition(ReplayTransition {
                    at_ms: until,
                    from: BreakerState::Open,
                    to: BreakerState::HalfOpen,
                    cause: ReplayCause::RecoveryElapsed,
                    open_until_ms: None,
                    reason: format!(
                        "the open period of {} ended; probes are admitted",
                        seconds(until.saturating_sub(opened))
                    ),
                });
            }
        }
    }

    fn record(&mut self, outcome: &Outcome, caller: KeyTag, now: u64, jitter_roll: f64) {
        self.catch_up(now);
        let Some(t) = self.b.record(outcome, caller, now, jitter_roll) else {
            return;
        };
        let after = self.b.status(now);
        let s = self.policy.settings();
        let opened_for = t.open_until_ms.map(|u| u.saturating_sub(now));
        let open_note = opened_for.map_or(String::new(), |d| {
            format!("; open for {} (trip {})", seconds(d), after.trips)
        });
        let reason = match t.cause {
            TransitionCause::ConsecutiveFailures => format!(
                "{} consecutive failures reached the threshold of {}{open_note}",
                after.consecutive_failures, s.failure_threshold
            ),
            TransitionCause::FailureRate => format!(
                "failure rate {} over the last calls reached {} (window {} calls, at least {} seen){open_note}",
                percent(after.failure_rate),
                percent(s.failure_rate_threshold),
                s.window_size,
                s.minimum_calls
            ),
            TransitionCause::ProbeFailed => {
                format!("a half-open probe failed ({}){open_note}", outcome.kind)
            }
            TransitionCause::ProbesSucceeded => format!(
                "{} half-open probes succeeded: closed",
                s.half_open_successes_to_close
            ),
            TransitionCause::ForcedOpen => format!("forced open{open_note}"),
            TransitionCause::Reset => "reset".to_string(),
        };
        self.transition(ReplayTransition {
            at_ms: t.at_ms,
            from: t.from,
            to: t.to,
            cause: t.cause.into(),
            open_until_ms: t.open_until_ms,
            reason,
        });
    }
}

fn seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn percent(rate: f64) -> String {
    format!("{:.0} %", rate * 100.0)
}

/// Replays `input.calls` through a fresh breaker with `input.policy`.
pub fn replay(input: &ReplayInput<'_>) -> Result<Replay, ReplayError> {
    let calls = input.calls;
    if calls.len() > MAX_CALLS {
        return Err(ReplayError {
            field: "calls".into(),
            message: format!("at most {MAX_CALLS} calls, got {}", calls.len()),
        });
    }
    if let Some(i) = calls.windows(2).position(|w| w[1].at_ms < w[0].at_ms) {
        return Err(ReplayError {
            field: format!("calls[{}].at_ms", i + 1),
            message: format!(
                "calls must be in time order: {} comes after {}",
                calls[i + 1].at_ms,
                calls[i].at_ms
            ),
        });
    }
    let start_ms = calls.first().map_or(0, |c| c.at_ms);
    let mut run = Run {
        b: Breaker::new(input.policy),
        policy: input.policy,
        out: Replay {
            transitions: Vec::new(),
            segments: Vec::new(),
            calls: Vec::with_capacity(calls.len()),
            admitted: 0,
            rejected: 0,
            probes: 0,
            failures: 0,
            trips: 0,
            start_ms,
            end_ms: start_ms,
        },
        pending_half_open: None,
        state: BreakerState::Closed,
    };
    // Calls in flight: (finish time, input index).
    let mut in_flight: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut last_ms = start_ms;
    let finish_until = |run: &mut Run, heap: &mut BinaryHeap<Reverse<(u64, usize)>>, t: u64| {
        while let Some(&Reverse((f, i))) = heap.peek() {
            if f > t {
                break;
            }
            heap.pop();
            if let Some(c) = calls.get(i) {
                if judged(&c.outcome) {
                    // Each call is a different user: the replay is about the breaker's
                    // arithmetic, so the distinct-key rule is always met.
                    run.record(&c.outcome, KeyTag::from_raw(i as u64), f, input.jitter_roll);
                } else if run.out.calls.get(i).map(|r| r.admission) == Some(Admission::Probe) {
                    run.catch_up(f);
                    run.b.release(f);
                }
            }
        }
    };
    for (i, c) in calls.iter().enumerate() {
        finish_until(&mut run, &mut in_flight, c.at_ms);
        run.catch_up(c.at_ms);
        let admission = run.b.admit(c.at_ms, c.probe_roll);
        let failure = c.outcome.is_failure();
        let finished_ms = admission
            .is_admitted()
            .then(|| c.at_ms.saturating_add(c.outcome.latency_ms));
        match admission {
            Admission::Rejected => run.out.rejected += 1,
            Admission::Probe => {
                run.out.probes += 1;
                run.out.admitted += 1;
            }
            Admission::Allowed => run.out.admitted += 1,
        }
        if let Some(f) = finished_ms {
            run.out.failures += u64::from(failure);
            in_flight.push(Reverse((f, i)));
            last_ms = last_ms.max(f);
        }
        last_ms = last_ms.max(c.at_ms);
        run.out.calls.push(CallResult {
            at_ms: c.at_ms,
            admission,
            kind: c.outcome.kind,
            failure,
            judged: finished_ms.is_some() && judged(&c.outcome),
            finished_ms,
        });
    }
    finish_until(&mut run, &mut in_flight, u64::MAX);
    let end_ms = input.until_ms.unwrap_or(last_ms).max(last_ms);
    run.catch_up(end_ms);
    run.out.end_ms = end_ms;
    run.out.segments = segments(start_ms, end_ms, &run.out.transitions);
    Ok(run.out)
}

/// Whether the breaker records this outcome (as the edge's exchange does): not for what the
/// request caused, not for a no-answer.
fn judged(o: &Outcome) -> bool {
    !(o.kind.is_request_caused() || o.kind == OutcomeKind::NoAnswer)
}

fn segments(start_ms: u64, end_ms: u64, transitions: &[ReplayTransition]) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut state = BreakerState::Closed;
    let mut from = start_ms;
    for t in transitions {
        if t.at_ms > from {
            out.push(Segment {
                state,
                from_ms: from,
                to_ms: t.at_ms,
            });
        }
        state = t.to;
        from = t.at_ms.max(from);
    }
    if end_ms > from || out.is_empty() {
        out.push(Segment {
            state,
            from_ms: from,
            to_ms: end_ms.max(from),
        });
    }
    out
}
