//! Circuit breaker, one per upstream per isolate, mirrored through KV by its transitions.
//!
//! Why this shape: the seed had two breakers, a leaky counter that never forgot and a lock
//! that serialised every request. This one is a pure state machine over `(event, now_ms)`,
//! like linkerd2-proxy's failure accrual, with the semantics Resilience4j's `CircuitBreaker`
//! documents and Envoy's outlier detection shares:
//!
//! - **Closed** trips on `failure_threshold` *consecutive* failures (Envoy `consecutive_5xx`)
//!   **or** when the failure rate over the last `window_size` calls (a count-based sliding
//!   window, Resilience4j `COUNT_BASED`) reaches `failure_rate_threshold`, but only once
//!   `minimum_calls` have been seen, so two failures out of two calls at 3 a.m. do not trip it.
//!   Slow successes count as failures (Resilience4j `slowCallDurationThreshold`); client 4xx
//!   never do (see [`crate::core::outcome`]).
//! - **Open** rejects until `open_until_ms`. The open time is `recovery_timeout_ms` on the
//!   first trip and grows by `backoff_multiplier` on each re-trip (Envoy's ejection time grows
//!   with the ejection count), capped at `max_recovery_timeout_ms`, with ±`jitter` so isolates
//!   that tripped together do not probe together. The growth resets after the breaker has
//!   stayed closed for `backoff_reset_ms`.
//! - **Half-open** admits probes. Resilience4j hands out a fixed number of permits; isolates
//!   share no memory, so we admit each request as a probe with probability
//!   `half_open_probe_share` (the roll is passed in) and bound the probes in flight in this
//!   isolate. `half_open_successes_to_close` successes close it, one failure reopens it with a
//!   longer open time. It cannot get stuck: if no probe has been admitted or completed for
//!   `half_open_max_wait_ms` (probes lost to cancelled requests, or unlucky rolls), the
//!   in-flight count is cleared and the next request is admitted as a probe regardless of the
//!   roll (Resilience4j's `maxWaitDurationInHalfOpenState` exists for the same reason).
//!
//! Isolates share state only through KV (DESIGN §4, §5): [`Breaker::snapshot`] is written on
//! transitions, and [`Breaker::merge_remote`] adopts any snapshot with a higher `generation`.
//! The generation is a Lamport-style counter: every local transition bumps it, adoption
//! copies the remote one, so an admin reset (a transition like any other) closes every isolate
//! that sees it, and an old open state re-read from an eventually consistent KV can never
//! reopen a breaker that has since moved on.
//!
//! In half-open, every recorded outcome is treated as a probe's result (the caller does not
//! have to thread the admission through); results arriving while open are counted in the
//! totals but cannot change the state, since they describe calls started before the trip.

use crate::core::outcome::{check_f64, check_min, check_share, Outcome, PolicyError};
use serde::{Deserialize, Serialize};

/// Largest supported `window_size`: the window is a 128-bit shift register, so recording is a
/// shift and a popcount, with no allocation.
pub const MAX_WINDOW_SIZE: u32 = 128;

/// The breaker's settings as configured (plain data, `Default` = the documented defaults).
/// Turn them into a [`BreakerPolicy`] with [`BreakerPolicy::try_new`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakerSettings {
    /// `LIGHTRAG_ENABLE_CIRCUIT_BREAKER`. Disabled: always `Allowed`, never trips.
    pub enabled: bool,
    /// Consecutive failures that trip it (`LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD`), ≥ 1.
    pub failure_threshold: u32,
    /// Failure rate over the window that trips it, in (0, 1].
    pub failure_rate_threshold: f64,
    /// Calls in the sliding count window, 1..=128.
    pub window_size: u32,
    /// Calls in the window before the rate can trip it, 1..=window_size.
    pub minimum_calls: u32,
    /// A success at least this slow counts as a failure; 0 disables.
    pub slow_call_ms: u64,
    /// First open time (`LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT`, in ms), ≥ 1.
    pub recovery_timeout_ms: u64,
    /// Cap on the grown open time, ≥ recovery_timeout_ms.
    pub max_recovery_timeout_ms: u64,
    /// Growth per consecutive trip, in [1, 16].
    pub backoff_multiplier: f64,
    /// Closed this long resets the growth, ≥ 1.
    pub backoff_reset_ms: u64,
    /// Probability that a half-open request is admitted as a probe, in (0, 1].
    pub half_open_probe_share: f64,
    /// Probes in flight at once in one isolate, ≥ 1.
    pub half_open_max_probes: u32,
    /// Probe successes that close it, ≥ 1.
    pub half_open_successes_to_close: u32,
    /// No probe admitted or completed for this long → re-admit, ≥ 1.
    pub half_open_max_wait_ms: u64,
    /// ± fraction applied to every open time, in [0, 0.5].
    pub jitter: f64,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        BreakerSettings {
            enabled: true,
            failure_threshold: 3,
            failure_rate_threshold: 0.5,
            window_size: 20,
            minimum_calls: 10,
            slow_call_ms: 10_000,
            recovery_timeout_ms: 300_000,
            max_recovery_timeout_ms: 2_400_000,
            backoff_multiplier: 2.0,
            backoff_reset_ms: 2_400_000,
            half_open_probe_share: 0.1,
            half_open_max_probes: 3,
            half_open_successes_to_close: 3,
            half_open_max_wait_ms: 60_000,
            jitter: 0.1,
        }
    }
}

/// Validated breaker settings. Only [`BreakerPolicy::try_new`] (or `Default`) builds one, so
/// a breaker can never run on an out-of-range policy.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BreakerPolicy {
    s: BreakerSettings,
}

impl BreakerPolicy {
    pub fn try_new(s: BreakerSettings) -> Result<BreakerPolicy, PolicyError> {
        check_min("failure_threshold", u64::from(s.failure_threshold), 1)?;
        check_share("failure_rate_threshold", s.failure_rate_threshold)?;
        if s.window_size == 0 || s.window_size > MAX_WINDOW_SIZE {
            return Err(PolicyError::new(
                "window_size",
                format!("must be in 1..={MAX_WINDOW_SIZE}, got {}", s.window_size),
            ));
        }
        if s.minimum_calls == 0 || s.minimum_calls > s.window_size {
            return Err(PolicyError::new(
                "minimum_calls",
                format!(
                    "must be in 1..=window_size ({}), got {}",
                    s.window_size, s.minimum_calls
                ),
            ));
        }
        check_min("recovery_timeout_ms", s.recovery_timeout_ms, 1)?;
        if s.max_recovery_timeout_ms < s.recovery_timeout_ms {
            return Err(PolicyError::new(
                "max_recovery_timeout_ms",
                format!(
                    "must be at least recovery_timeout_ms ({}), got {}",
                    s.recovery_timeout_ms, s.max_recovery_timeout_ms
                ),
            ));
        }
        check_f64("backoff_multiplier", s.backoff_multiplier, 1.0, 16.0)?;
        check_min("backoff_reset_ms", s.backoff_reset_ms, 1)?;
        check_share("half_open_probe_share", s.half_open_probe_share)?;
        check_min("half_open_max_probes", u64::from(s.half_open_max_probes), 1)?;
        check_min(
            "half_open_successes_to_close",
            u64::from(s.half_open_successes_to_close),
            1,
        )?;
        check_min("half_open_max_wait_ms", s.half_open_max_wait_ms, 1)?;
        check_f64("jitter", s.jitter, 0.0, 0.5)?;
        Ok(BreakerPolicy { s })
    }

    /// A policy whose breaker is disabled (always admits, never trips).
    pub fn disabled() -> BreakerPolicy {
        BreakerPolicy {
            s: BreakerSettings {
                enabled: false,
                ..BreakerSettings::default()
            },
        }
    }

    pub fn settings(&self) -> &BreakerSettings {
        &self.s
    }

    /// The open time for the `streak`-th consecutive trip (1-based) before jitter:
    /// `recovery · multiplier^(streak-1)`, capped.
    pub fn base_open_ms(&self, streak: u32) -> u64 {
        let exp = streak.saturating_sub(1).min(64) as i32;
        let grown = self.s.recovery_timeout_ms as f64 * self.s.backoff_multiplier.powi(exp);
        let cap = self.s.max_recovery_timeout_ms as f64;
        if grown.is_finite() && grown < cap {
            grown as u64
        } else {
            self.s.max_recovery_timeout_ms
        }
    }

    /// The open time for a trip with jitter roll `roll` in [0, 1): the base scaled by
    /// `1 + jitter·(2·roll − 1)`, never above the cap and never below 1 ms.
    pub fn open_ms(&self, streak: u32, roll: f64) -> u64 {
        let base = self.base_open_ms(streak) as f64;
        let roll = if roll.is_finite() {
            roll.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let jittered = base * (1.0 + self.s.jitter * (2.0 * roll - 1.0));
        (jittered as u64).clamp(1, self.s.max_recovery_timeout_ms)
    }
}

/// The three breaker states (serde: `"closed"`, `"open"`, `"half_open"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// What [`Breaker::admit`] says about one request. Maps onto the routing core's breaker view:
/// `Allowed` → closed, `Probe` → half-open probe, `Rejected` → open or half-open reject
/// (ask [`Breaker::state`] which, or use [`Breaker::view`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Admission {
    Allowed,
    Probe,
    Rejected,
}

impl Admission {
    /// Whether the request may go to this upstream.
    pub fn is_admitted(self) -> bool {
        !matches!(self, Admission::Rejected)
    }
}

/// The breaker as routing sees it for one request: state and admission together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerView {
    Closed,
    Open,
    HalfOpenProbe,
    HalfOpenReject,
}

/// Why a transition happened (for logs and the status API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionCause {
    ConsecutiveFailures,
    FailureRate,
    ProbeFailed,
    ProbesSucceeded,
    ForcedOpen,
    Reset,
    Disabled,
    Remote,
}

/// A state change worth writing to KV.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
    pub cause: TransitionCause,
    pub at_ms: u64,
    /// Set when `to` is open.
    pub open_until_ms: Option<u64>,
    pub generation: u64,
}

/// The part of a breaker other isolates need, written to KV on transitions.
///
/// Serde shape: `{"state":"open","open_until_ms":1700000300000,"generation":7,"trips":2,
/// "updated_ms":1700000000000}`; `open_until_ms` is omitted when closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakerSnapshot {
    pub state: BreakerState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until_ms: Option<u64>,
    pub generation: u64,
    #[serde(default)]
    pub trips: u64,
    #[serde(default)]
    pub updated_ms: u64,
}

/// What the status API shows, matching the seed's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BreakerStatus {
    pub enabled: bool,
    pub is_open: bool,
    pub state: BreakerState,
    pub failure_rate: f64,
    pub total_requests: u64,
    pub consecutive_failures: u32,
    pub last_failure_ms: Option<u64>,
    pub last_success_ms: Option<u64>,
    pub open_until_ms: Option<u64>,
    pub trips: u64,
    pub generation: u64,
}

/// One upstream's circuit breaker. See the module docs for the semantics.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: BreakerPolicy,
    enabled: bool,
    /// Stored state; `Open` past `open_until_ms` is read as half-open (see `refresh`).
    state: BreakerState,
    open_until_ms: u64,
    generation: u64,
    trips: u64,
    updated_ms: u64,
    /// Sliding count window: bit i = 1 if the i-th most recent call failed.
    window: u128,
    window_len: u32,
    /// Failures in `window` (its popcount, kept incrementally).
    window_failures: u32,
    consecutive_failures: u32,
    total_requests: u64,
    last_failure_ms: Option<u64>,
    last_success_ms: Option<u64>,
    /// Consecutive trips without a sustained close (drives the open-time growth).
    streak: u32,
    closed_since_ms: u64,
    probes_in_flight: u32,
    probe_successes: u32,
    /// Last time a probe was admitted or completed, or half-open began.
    last_probe_event_ms: u64,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Breaker {
        let enabled = policy.s.enabled;
        Breaker {
            policy,
            enabled,
            state: BreakerState::Closed,
            open_until_ms: 0,
            generation: 0,
            trips: 0,
            updated_ms: 0,
            window: 0,
            window_len: 0,
            window_failures: 0,
            consecutive_failures: 0,
            total_requests: 0,
            last_failure_ms: None,
            last_success_ms: None,
            streak: 0,
            closed_since_ms: 0,
            probes_in_flight: 0,
            probe_successes: 0,
            last_probe_event_ms: 0,
        }
    }

    pub fn policy(&self) -> &BreakerPolicy {
        &self.policy
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Turns the breaker on or off at run time (`LIGHTRAG_ENABLE_CIRCUIT_BREAKER` changed
    /// through the admin API). Disabling closes it and clears its window; the returned
    /// transition (if it was not closed) is local only and does not bump the generation, so
    /// other isolates keep their own setting.
    pub fn set_enabled(&mut self, enabled: bool, now_ms: u64) -> Option<Transition> {
        if self.enabled == enabled {
            return None;
        }
        self.enabled = enabled;
        if enabled {
            return None;
        }
        let from = self.state_at(now_ms);
        self.close_local(now_ms);
        (from != BreakerState::Closed).then_some(Transition {
            from,
            to: BreakerState::Closed,
            cause: TransitionCause::Disabled,
            at_ms: now_ms,
            open_until_ms: None,
            generation: self.generation,
        })
    }

    /// The state at `now_ms` without changing anything.
    pub fn state(&self, now_ms: u64) -> BreakerState {
        if !self.enabled {
            return BreakerState::Closed;
        }
        self.state_at(now_ms)
    }

    fn state_at(&self, now_ms: u64) -> BreakerState {
        match self.state {
            BreakerState::Open if now_ms >= self.open_until_ms => BreakerState::HalfOpen,
            s => s,
        }
    }

    /// Moves an expired open state to half-open. Time-derived, so every isolate computes the
    /// same thing: no generation bump and no KV write.
    fn refresh(&mut self, now_ms: u64) {
        if self.state == BreakerState::Open && now_ms >= self.open_until_ms {
            self.state = BreakerState::HalfOpen;
            self.probes_in_flight = 0;
            self.probe_successes = 0;
            self.last_probe_event_ms = self.open_until_ms;
        }
    }

    /// Decides whether one request may go to this upstream. `roll` is uniform in [0, 1).
    pub fn admit(&mut self, now_ms: u64, roll: f64) -> Admission {
        if !self.enabled {
            return Admission::Allowed;
        }
        self.refresh(now_ms);
        match self.state {
            BreakerState::Closed => Admission::Allowed,
            BreakerState::Open => Admission::Rejected,
            BreakerState::HalfOpen => {
                let s = &self.policy.s;
                let stalled = now_ms
                    >= self
                        .last_probe_event_ms
                        .saturating_add(s.half_open_max_wait_ms);
                if stalled {
                    // Nothing admitted or completed for too long: assume the in-flight probes
                    // were lost and admit this one whatever the roll.
                    self.probes_in_flight = 0;
                } else if self.probes_in_flight >= s.half_open_max_probes
                    || roll.partial_cmp(&s.half_open_probe_share) != Some(std::cmp::Ordering::Less)
                {
                    return Admission::Rejected;
                }
                self.probes_in_flight += 1;
                self.last_probe_event_ms = now_ms;
                Admission::Probe
            }
        }
    }

    /// The routing view for one request: [`Breaker::admit`] folded with the state.
    pub fn view(&mut self, now_ms: u64, roll: f64) -> BreakerView {
        match self.admit(now_ms, roll) {
            Admission::Allowed => BreakerView::Closed,
            Admission::Probe => BreakerView::HalfOpenProbe,
            Admission::Rejected => match self.state {
                BreakerState::HalfOpen => BreakerView::HalfOpenReject,
                _ => BreakerView::Open,
            },
        }
    }

    /// Records one finished call. `jitter_roll` in [0, 1) sets the jitter if this trips the
    /// breaker. Returns the transition, if any, for the caller to write to KV.
    pub fn record(
        &mut self,
        outcome: &Outcome,
        now_ms: u64,
        jitter_roll: f64,
    ) -> Option<Transition> {
        let s = self.policy.s;
        let failed = outcome.kind.is_failure()
            || (s.slow_call_ms > 0 && outcome.latency_ms >= s.slow_call_ms);
        self.total_requests = self.total_requests.saturating_add(1);
        if failed {
            self.last_failure_ms = Some(now_ms);
        } else {
            self.last_success_ms = Some(now_ms);
        }
        if !self.enabled {
            return None;
        }
        self.refresh(now_ms);
        match self.state {
            BreakerState::Closed => {
                // Shift the newest call in; the oldest falls out once the window is full.
                let evicted = self.window_len >= s.window_size
                    && (self.window >> (s.window_size - 1)) & 1 == 1;
                self.window =
                    ((self.window << 1) | u128::from(failed)) & window_mask(s.window_size);
                self.window_len = (self.window_len + 1).min(s.window_size);
                self.window_failures =
                    self.window_failures.saturating_sub(u32::from(evicted)) + u32::from(failed);
                if failed {
                    self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                } else {
                    self.consecutive_failures = 0;
                }
                let cause = if self.consecutive_failures >= s.failure_threshold {
                    Some(TransitionCause::ConsecutiveFailures)
                } else if self.window_len >= s.minimum_calls
                    && f64::from(self.window_failures)
                        >= s.failure_rate_threshold * f64::from(self.window_len)
                {
                    Some(TransitionCause::FailureRate)
                } else {
                    None
                };
                cause.map(|c| self.trip(BreakerState::Closed, c, now_ms, jitter_roll))
            }
            // A call started before the trip: counted above, cannot change the state.
            BreakerState::Open => None,
            BreakerState::HalfOpen => {
                self.probes_in_flight = self.probes_in_flight.saturating_sub(1);
                self.last_probe_event_ms = now_ms;
                if failed {
                    self.consecutive_failures = self.consecutive_failures.saturating_add(1);
                    return Some(self.trip(
                        BreakerState::HalfOpen,
                        TransitionCause::ProbeFailed,
                        now_ms,
                        jitter_roll,
                    ));
                }
                self.consecutive_failures = 0;
                self.probe_successes += 1;
                if self.probe_successes >= s.half_open_successes_to_close {
                    self.close_local(now_ms);
                    self.generation = self.generation.saturating_add(1);
                    return Some(Transition {
                        from: BreakerState::HalfOpen,
                        to: BreakerState::Closed,
                        cause: TransitionCause::ProbesSucceeded,
                        at_ms: now_ms,
                        open_until_ms: None,
                        generation: self.generation,
                    });
                }
                None
            }
        }
    }

    fn trip(
        &mut self,
        from: BreakerState,
        cause: TransitionCause,
        now_ms: u64,
        jitter_roll: f64,
    ) -> Transition {
        let sustained_close = from == BreakerState::Closed
            && now_ms.saturating_sub(self.closed_since_ms) >= self.policy.s.backoff_reset_ms;
        if sustained_close {
            self.streak = 0;
        }
        self.streak = self.streak.saturating_add(1);
        let open_until = now_ms.saturating_add(self.policy.open_ms(self.streak, jitter_roll));
        self.open_at(open_until, now_ms);
        self.trips = self.trips.saturating_add(1);
        self.generation = self.generation.saturating_add(1);
        Transition {
            from,
            to: BreakerState::Open,
            cause,
            at_ms: now_ms,
            open_until_ms: Some(open_until),
            generation: self.generation,
        }
    }

    fn open_at(&mut self, open_until_ms: u64, now_ms: u64) {
        self.state = BreakerState::Open;
        self.open_until_ms = open_until_ms;
        self.probes_in_flight = 0;
        self.probe_successes = 0;
        self.updated_ms = now_ms;
    }

    fn close_local(&mut self, now_ms: u64) {
        self.state = BreakerState::Closed;
        self.open_until_ms = 0;
        self.window = 0;
        self.window_len = 0;
        self.window_failures = 0;
        self.consecutive_failures = 0;
        self.probes_in_flight = 0;
        self.probe_successes = 0;
        self.closed_since_ms = now_ms;
        self.updated_ms = now_ms;
    }

    /// Manual force-open from the admin API: open for exactly `duration_ms` (no jitter, no
    /// growth), then half-open as usual.
    pub fn force_open(&mut self, now_ms: u64, duration_ms: u64) -> Transition {
        let from = self.state(now_ms);
        let open_until = now_ms.saturating_add(duration_ms);
        self.open_at(open_until, now_ms);
        self.generation = self.generation.saturating_add(1);
        Transition {
            from,
            to: BreakerState::Open,
            cause: TransitionCause::ForcedOpen,
            at_ms: now_ms,
            open_until_ms: Some(open_until),
            generation: self.generation,
        }
    }

    /// Manual reset from the admin API: closed, window and growth cleared.
    pub fn reset(&mut self, now_ms: u64) -> Transition {
        let from = self.state(now_ms);
        self.close_local(now_ms);
        self.streak = 0;
        self.generation = self.generation.saturating_add(1);
        Transition {
            from,
            to: BreakerState::Closed,
            cause: TransitionCause::Reset,
            at_ms: now_ms,
            open_until_ms: None,
            generation: self.generation,
        }
    }

    /// When the breaker next changes by itself (open → half-open), for the driver's timer.
    pub fn next_deadline_ms(&self, now_ms: u64) -> Option<u64> {
        (self.enabled && self.state == BreakerState::Open && self.open_until_ms > now_ms)
            .then_some(self.open_until_ms)
    }

    /// What to write to KV.
    pub fn snapshot(&self) -> BreakerSnapshot {
        BreakerSnapshot {
            state: self.state,
            open_until_ms: (self.state != BreakerState::Closed).then_some(self.open_until_ms),
            generation: self.generation,
            trips: self.trips,
            updated_ms: self.updated_ms,
        }
    }

    /// Adopts a snapshot read from KV if its generation is newer than ours: an open (or
    /// forced-open) state opens this breaker until the remote `open_until_ms`; a closed one
    /// (an admin reset, or probes that succeeded elsewhere) closes it. Older or equal
    /// generations are ignored. Returns whether anything was adopted.
    pub fn merge_remote(&mut self, snap: &BreakerSnapshot, now_ms: u64) -> bool {
        if snap.generation <= self.generation {
            return false;
        }
        self.generation = snap.generation;
        self.trips = self.trips.max(snap.trips);
        match snap.state {
            BreakerState::Closed => {
                self.close_local(now_ms);
                self.streak = 0;
            }
            BreakerState::Open | BreakerState::HalfOpen => {
                // A remote half-open is an open whose time ran out: adopting it as open with
                // the same `open_until_ms` lets `refresh` move us to half-open locally.
                let open_until = snap.open_until_ms.unwrap_or(now_ms);
                if self.state == BreakerState::Closed {
                    self.streak = self.streak.saturating_add(1);
                }
                self.open_at(open_until, now_ms);
                self.refresh(now_ms);
            }
        }
        true
    }

    /// Failure rate over the current window (0 when empty).
    pub fn failure_rate(&self) -> f64 {
        if self.window_len == 0 {
            0.0
        } else {
            f64::from(self.window_failures) / f64::from(self.window_len)
        }
    }

    /// The status API view.
    pub fn status(&self, now_ms: u64) -> BreakerStatus {
        let state = self.state(now_ms);
        BreakerStatus {
            enabled: self.enabled,
            is_open: state == BreakerState::Open,
            state,
            failure_rate: self.failure_rate(),
            total_requests: self.total_requests,
            consecutive_failures: self.consecutive_failures,
            last_failure_ms: self.last_failure_ms,
            last_success_ms: self.last_success_ms,
            open_until_ms: (self.enabled && self.state != BreakerState::Closed)
                .then_some(self.open_until_ms),
            trips: self.trips,
            generation: self.generation,
        }
    }
}

fn window_mask(size: u32) -> u128 {
    if size >= 128 {
        u128::MAX
    } else {
        (1u128 << size) - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `make fuzz` (target `kv_breaker_snapshot`): a snapshot from KV with
    /// `generation: u64::MAX` was adopted, and the next local transition overflowed (a panic
    /// in debug builds; in release a wrap to 0, after which no other isolate would ever adopt
    /// this one's transitions). The counter now stops at the maximum instead.
    #[test]
    fn a_maximal_remote_generation_does_not_overflow() {
        let mut b = Breaker::new(BreakerPolicy::default());
        let snap = BreakerSnapshot {
            state: BreakerState::Closed,
            open_until_ms: None,
            generation: u64::MAX,
            trips: 0,
            updated_ms: 0,
        };
        assert!(b.merge_remote(&snap, 1_000));
        let t = b.force_open(1_000, 60_000);
        assert_eq!(t.generation, u64::MAX);
        b.reset(2_000);
        assert_eq!(b.snapshot().generation, u64::MAX);
    }
}
