//! The no-context watch: when do LightRAG's no-context replies mean an outage?
//!
//! Why: a no-context reply is normally an *answer* — the knowledge graph does not cover the
//! question — and blaming LightRAG's breaker for it would open the breaker on a run of
//! off-topic questions. But a LightRAG whose own LLM is down answers nothing else: every query
//! gets `200` "No relevant context found for the query." after ~8 s of retries
//! (tests/fixtures/lightrag/README.md). With the no-context fallback every such user is served
//! by Perplexity 8 s late, and the breaker, seeing no failures, never trips. So the watch keeps
//! the last LightRAG replies (a count window the size of the breaker's,
//! `LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE`) and says **escalated** when
//! - at least `LIGHTRAG_CIRCUIT_BREAKER_MINIMUM_CALLS` replies are in the window,
//! - their no-context share is at least `LIGHTRAG_NO_CONTEXT_BREAKER_RATE` (unset: never), and
//! - the no-context replies came from at least `LIGHTRAG_NO_CONTEXT_BREAKER_MIN_KEYS` distinct
//!   callers (keyed tags of stickiness keys, never the keys themselves), so one client asking
//!   off-topic questions in a loop cannot trip the breaker for everybody.
//!
//! While escalated, the exchange records each further no-context reply as a breaker failure
//! ([`crate::core::outcome::OutcomeKind::NoAnswerOutage`], through
//! [`crate::core::exchange::NoAnswerBlame`]); otherwise it blames nobody. The breaker's own
//! rules then decide (consecutive failures, failure rate — and, with the distinct-key breaker,
//! its own distinct-key minimum, fed the same caller tag).
//!
//! The key type is generic so the edge can pass whatever keyed tag it has (a `u64` today, the
//! breaker's `KeyTag` once that lands); equality is all the watch needs.

use serde::Serialize;
use std::collections::VecDeque;

/// What the watch runs on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WatchSettings {
    /// `LIGHTRAG_NO_CONTEXT_BREAKER_RATE`: the no-context share that escalates; `None`: never.
    pub rate: Option<f64>,
    /// `LIGHTRAG_NO_CONTEXT_BREAKER_MIN_KEYS`: distinct callers among the no-context replies.
    pub min_keys: u32,
    /// Replies kept (the breaker's window size), ≥ 1.
    pub window: u32,
    /// Replies needed before a rate means anything (the breaker's minimum calls).
    pub minimum: u32,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            rate: None,
            min_keys: 3,
            window: 20,
            minimum: 10,
        }
    }
}

/// What the status page shows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WatchStatus {
    pub replies: u32,
    pub no_context: u32,
    /// `no_context / replies`; `None` without replies.
    pub rate: Option<f64>,
    /// Distinct callers among the no-context replies.
    pub distinct_keys: u32,
    pub threshold: Option<f64>,
    pub escalated: bool,
}

/// The last LightRAG replies: no-context or not, and whose.
#[derive(Debug, Clone, PartialEq)]
pub struct NoContextWatch<K> {
    settings: WatchSettings,
    replies: VecDeque<(bool, K)>,
}

impl<K: Copy + Eq> NoContextWatch<K> {
    pub fn new(settings: WatchSettings) -> Self {
        NoContextWatch {
            settings,
            replies: VecDeque::new(),
        }
    }

    /// New settings (a config change); the window keeps its newest replies.
    pub fn set_settings(&mut self, settings: WatchSettings) {
        self.settings = settings;
        self.trim();
    }

    pub fn settings(&self) -> &WatchSettings {
        &self.settings
    }

    fn trim(&mut self) {
        let keep = self.settings.window.max(1) as usize;
        while self.replies.len() > keep {
            self.replies.pop_front();
        }
    }

    /// One LightRAG reply that reached a verdict: `no_context` or an answer, from `key`.
    pub fn observe(&mut self, no_context: bool, key: K) {
        self.replies.push_back((no_context, key));
        self.trim();
    }

    fn distinct_no_context_keys(&self) -> u32 {
        let mut seen: Vec<K> = Vec::new();
        for (nc, k) in &self.replies {
            if *nc && !seen.contains(k) {
                seen.push(*k);
            }
        }
        seen.len() as u32
    }

    pub fn status(&self) -> WatchStatus {
        let replies = self.replies.len() as u32;
        let no_context = self.replies.iter().filter(|(nc, _)| *nc).count() as u32;
        let rate = (replies > 0).then(|| f64::from(no_context) / f64::from(replies));
        let distinct_keys = self.distinct_no_context_keys();
        let escalated = match (self.settings.rate, rate) {
            (Some(threshold), Some(r)) => {
                replies >= self.settings.minimum.max(1)
                    && r >= threshold
                    && distinct_keys >= self.settings.min_keys.max(1)
            }
            _ => false,
        };
        WatchStatus {
            replies,
            no_context,
            rate,
            distinct_keys,
            threshold: self.settings.rate,
            escalated,
        }
    }

    /// Whether a no-context reply now counts as a breaker failure.
    pub fn escalated(&self) -> bool {
        self.status().escalated
    }
}
