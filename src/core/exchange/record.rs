//! What an exchange asks the edge to record. Each attempt's outcome is classified once, by the
//! exchange, and every record below is derived from that one kind, so the breaker, the metric
//! windows and the quality scorer see the same thing.

use crate::core::model::Upstream;
use crate::core::outcome::{Outcome, OutcomeKind};
use serde::Serialize;

/// One thing to record, in the order the exchange produced them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    /// Feed `upstream`'s breaker one finished call. Only upstream-judging outcomes come here:
    /// successes, slow calls and failures — never a request-caused refusal or a no-answer.
    Breaker {
        upstream: Upstream,
        outcome: Outcome,
    },
    /// Hand an unused half-open probe permit back to `upstream`'s breaker
    /// ([`crate::core::breaker::Breaker::release`]): the call it was drawn for will report
    /// nothing the breaker should judge.
    Release { upstream: Upstream },
    /// The request's one sample for the metric windows, when the exchange ends (none when the
    /// client left first: there is nothing to judge the upstream by).
    Request(RequestRecord),
}

/// What one client request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RequestRecord {
    /// The upstream the metric key names: the one that served, or the decision's upstream
    /// when none did.
    pub upstream: Upstream,
    /// How it ended: the served call's kind, or the last attempt's.
    pub kind: OutcomeKind,
    /// From the request's start to the first byte the client got (the whole answer for a
    /// complete response; the commit for a stream; the error for a failure).
    pub latency_ms: u64,
    /// A fallback served it.
    pub fallback: bool,
    /// The serving call's own time to first byte: the measure slowness is judged on, and the
    /// one the quality scorer's latency part uses. `None` when nothing was served.
    pub first_byte_ms: Option<u64>,
    pub purpose: Purpose,
    /// The upstream whose answer was judged [`super::Verdict::NoAnswer`] (a no-context reply),
    /// if one was — whether a fallback then served or the held answer was served after all.
    pub no_answer: Option<Upstream>,
}

/// Whom the exchange serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// A client waits for the answer.
    #[default]
    Serve,
    /// A measurement nobody waits for (a shadow call from `wait_until`): never falls back; its
    /// records go to a separate series.
    Shadow,
}
