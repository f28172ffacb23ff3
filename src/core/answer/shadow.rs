//! Shadow comparison (dark launch): which requests also ask LightRAG, from `wait_until`,
//! with the answer measured and discarded.
//!
//! Why: before any user is moved to LightRAG an operator wants to see how it behaves on the
//! real questions — how often it succeeds, how fast its first byte and its whole answer come,
//! how often it has no context, how its answers score. A shadow call gives that without
//! touching the user's answer: it starts after the user's response is on its way, nobody
//! waits for it, it never falls back, and its results form their own series (`shadow` in
//! the status document, the metrics flush and the experiment report), never the arms'.
//!
//! Who gets one ([`ShadowGate::admit`]): a request that Perplexity served as the routing
//! decision's upstream (no fallback), while `LIGHTRAG_SHADOW_PERCENTAGE` > 0, when its roll
//! falls below that share, while LightRAG's breaker is closed and no rollback is active, and
//! while this isolate has started fewer than `LIGHTRAG_SHADOW_MAX_PER_MINUTE` shadows this
//! minute. Each refusal is counted by reason. A shadow call is aborted at
//! [`SHADOW_MAX_MS`] after it starts, inside the platform's `wait_until` limit (30 s after the
//! response: developers.cloudflare.com/workers/runtime-apis/context/#waituntil).

use crate::core::cohort::Percent;
use crate::core::model::Upstream;
use crate::core::policy::Bounds;
use serde::Serialize;

/// A shadow call's whole life, start to abort: inside the 30 s `wait_until` grants after the
/// response, with room for recording its result.
pub const SHADOW_MAX_MS: u64 = 25_000;

/// `LIGHTRAG_SHADOW_MAX_PER_MINUTE`.
pub const MAX_PER_MINUTE: Bounds = Bounds::whole(1, 100_000);
/// Default shadow calls one isolate may start per minute.
pub const DEFAULT_MAX_PER_MINUTE: u64 = 60;

/// What the gate runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ShadowSettings {
    /// `LIGHTRAG_SHADOW_PERCENTAGE`.
    pub share: Percent,
    /// `LIGHTRAG_SHADOW_MAX_PER_MINUTE`.
    pub max_per_minute: u64,
}

/// One served request, as the gate sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ShadowAsk {
    /// The routing decision's upstream.
    pub decided: Upstream,
    /// Who served it, and whether a fallback did.
    pub served: Upstream,
    pub fallback: bool,
    pub lightrag_breaker_closed: bool,
    pub rollback_active: bool,
    /// A roll in [0, 1).
    pub roll: f64,
}

/// Why no shadow call was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ShadowSkip {
    /// `LIGHTRAG_SHADOW_PERCENTAGE` is 0.
    Off,
    /// Not a request Perplexity served as decided (LightRAG answered it, or a fallback did).
    NotPerplexity,
    /// Its roll fell outside the share.
    NotDrawn,
    /// LightRAG's breaker is open or half-open.
    BreakerNotClosed,
    /// A rollback is active.
    Rollback,
    /// This isolate's per-minute cap is reached.
    CapReached,
}

/// Counts of what the gate did, for the status page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ShadowCounts {
    pub started: u64,
    pub skipped_breaker: u64,
    pub skipped_rollback: u64,
    pub skipped_cap: u64,
    /// Started this minute (the cap's count).
    pub this_minute: u64,
}

/// The per-isolate gate: the share, the breaker, and the per-minute cap.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShadowGate {
    minute: u64,
    counts: ShadowCounts,
}

impl ShadowGate {
    pub fn new() -> ShadowGate {
        ShadowGate::default()
    }

    /// Whether to start a shadow call for this request now; counts the start (against this
    /// minute's cap) or the reason it was skipped.
    pub fn admit(
        &mut self,
        s: &ShadowSettings,
        ask: &ShadowAsk,
        now_ms: u64,
    ) -> Result<(), ShadowSkip> {
        if s.share == Percent::ZERO {
            return Err(ShadowSkip::Off);
        }
        if ask.decided != Upstream::Perplexity || ask.served != Upstream::Perplexity || ask.fallback
        {
            return Err(ShadowSkip::NotPerplexity);
        }
        let roll = if ask.roll.is_finite() { ask.roll } else { 1.0 };
        if roll * 100.0 >= s.share.percent() {
            return Err(ShadowSkip::NotDrawn);
        }
        if !ask.lightrag_breaker_closed {
            self.counts.skipped_breaker = self.counts.skipped_breaker.saturating_add(1);
            return Err(ShadowSkip::BreakerNotClosed);
        }
        if ask.rollback_active {
            self.counts.skipped_rollback = self.counts.skipped_rollback.saturating_add(1);
            return Err(ShadowSkip::Rollback);
        }
        let minute = now_ms / 60_000;
        if minute != self.minute {
            self.minute = minute;
            self.counts.this_minute = 0;
        }
        if self.counts.this_minute >= s.max_per_minute {
            self.counts.skipped_cap = self.counts.skipped_cap.saturating_add(1);
            return Err(ShadowSkip::CapReached);
        }
        self.counts.this_minute += 1;
        self.counts.started = self.counts.started.saturating_add(1);
        Ok(())
    }

    /// What the gate did so far (`this_minute` as of `now_ms`).
    pub fn counts(&self, now_ms: u64) -> ShadowCounts {
        let mut c = self.counts;
        if now_ms / 60_000 != self.minute {
            c.this_minute = 0;
        }
        c
    }
}
