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
//!   What counts as a failure is decided once, by the outcome's kind
//!   ([`crate::core::outcome`]): server errors, timeouts, 429/408 and slow calls
//!   (Resilience4j `slowCallDurationThreshold`) do, client 4xx never do.
//! - **Open** rejects until its end. The open time is `recovery_timeout_ms` on the first trip
//!   and grows by `backoff_multiplier` on each re-trip (Envoy's ejection time grows with the
//!   ejection count), capped at `max_recovery_timeout_ms`, with ±`jitter` so isolates that
//!   tripped together do not probe together. The growth resets after the breaker has stayed
//!   closed for `backoff_reset_ms`.
//! - **Half-open** admits probes. Resilience4j hands out a fixed number of permits; isolates
//!   share no memory, so we admit each request as a probe with probability
//!   `half_open_probe_share` (the roll is passed in) and bound the probes in flight in this
//!   isolate. `half_open_successes_to_close` successes close it, failures reopen it with a
//!   longer open time. It cannot get stuck: if no probe has been admitted or completed for
//!   `half_open_max_wait_ms` (probes lost to cancelled requests, or unlucky rolls), the
//!   in-flight count is cleared and the next request is admitted as a probe regardless of the
//!   roll (Resilience4j's `maxWaitDurationInHalfOpenState` exists for the same reason).
//!
//! The parts: [`settings`] (the validated policy and its bounds), [`window`] (the closed
//! state's count window), [`state`] (the state enum, each variant with its own data) and
//! [`replica`] (what is shared with other isolates through KV: [`Breaker::snapshot`] is written
//! on transitions, [`Breaker::merge_remote`] adopts a newer one) and [`fleet`] (the state hub's
//! breaker over every isolate's calls, which trips the shared record when the fleet's calls
//! meet the policy before any one isolate's do).
//!
//! In half-open, every recorded outcome is treated as a probe's result (the caller does not
//! have to thread the admission through); results arriving while open are counted in the
//! totals but cannot change the state, since they describe calls started before the trip.

pub mod fleet;
pub mod replay;
pub mod replica;
pub mod scenario;
pub mod settings;
pub mod state;
mod window;

pub use fleet::{FleetCall, FleetWatch};
pub use replica::{AdminCommand, BreakerSnapshot};
pub use settings::{BreakerPolicy, BreakerSettings, MAX_WINDOW_SIZE};
pub use state::{BreakerState, State};

use crate::core::keytag::KeyTag;
use crate::core::outcome::Outcome;
use replica::Replica;
use serde::{Deserialize, Serialize};
use window::{CountWindow, KeySet};

/// What [`Breaker::admit`] says about one request.
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

/// An operator's manual action on a breaker (`POST /admin/breaker/{upstream}/{open|reset}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BreakerAction {
    /// Open for one recovery timeout (no jitter, no growth), then half-open as usual.
    Open,
    /// Closed at once, window and growth cleared.
    Reset,
}

impl BreakerAction {
    pub fn parse(s: &str) -> Option<BreakerAction> {
        match s {
            "open" => Some(BreakerAction::Open),
            "reset" => Some(BreakerAction::Reset),
            _ => None,
        }
    }
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
    /// Issue time of the last operator command applied here (0: none).
    pub admin_epoch: u64,
    /// Outcomes recorded but left out of the window because their key already held its share
    /// (`LIGHTRAG_CIRCUIT_BREAKER_MAX_CALLS_PER_KEY`) or had already given a probe result.
    pub capped_calls: u64,
}

/// Every call recorded, whatever the state (the status API's totals).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Calls {
    total: u64,
    /// Outcomes left out of the window: their key already held its share, or (half-open) had
    /// already given its probe result.
    capped: u64,
    last_failure_ms: Option<u64>,
    last_success_ms: Option<u64>,
}

/// One upstream's circuit breaker. See the module docs for the semantics.
#[derive(Debug, Clone)]
pub struct Breaker {
    policy: BreakerPolicy,
    state: State,
    window: CountWindow,
    replica: Replica,
    calls: Calls,
}

impl Breaker {
    pub fn new(policy: BreakerPolicy) -> Breaker {
        Breaker {
            policy,
            state: State::Closed {
                since_ms: 0,
                streak: 0,
            },
            window: CountWindow::default(),
            replica: Replica::default(),
            calls: Calls::default(),
        }
    }

    fn enabled(&self) -> bool {
        self.policy.settings().enabled
    }

    /// The state at `now_ms` without changing anything (always closed when disabled).
    pub fn state(&self, now_ms: u64) -> BreakerState {
        if !self.enabled() {
            return BreakerState::Closed;
        }
        match self.state {
            State::Open { until_ms, .. } if now_ms >= until_ms => BreakerState::HalfOpen,
            ref s => s.kind(),
        }
    }

    /// Moves an expired open state to half-open. Time-derived, so every isolate computes the
    /// same thing: no generation bump and no KV write.
    fn refresh(&mut self, now_ms: u64) {
        if let State::Open { until_ms, streak } = self.state {
            if now_ms >= until_ms {
                self.state = State::HalfOpen {
                    since_ms: until_ms,
                    streak,
                    probes: 0,
                    succeeded: KeySet::default(),
                    failed: KeySet::default(),
                    last_event_ms: until_ms,
                };
            }
        }
    }

    /// Decides whether one request may go to this upstream; a `Probe` takes one of the
    /// half-open probe permits. `roll` is uniform in [0, 1).
    pub fn admit(&mut self, now_ms: u64, roll: f64) -> Admission {
        if !self.enabled() {
            return Admission::Allowed;
        }
        self.refresh(now_ms);
        let s = self.policy.settings();
        match &mut self.state {
            State::Closed { .. } => Admission::Allowed,
            State::Open { .. } => Admission::Rejected,
            State::HalfOpen {
                probes,
                last_event_ms,
                ..
            } => {
                let stalled = now_ms >= last_event_ms.saturating_add(s.half_open_max_wait_ms);
                if stalled {
                    // Nothing admitted or completed for too long: assume the in-flight probes
                    // were lost and admit this one whatever the roll.
                    *probes = 0;
                } else if *probes >= s.half_open_max_probes
                    || roll.partial_cmp(&s.half_open_probe_share) != Some(std::cmp::Ordering::Less)
                {
                    return Admission::Rejected;
                }
                *probes += 1;
                *last_event_ms = now_ms;
                Admission::Probe
            }
        }
    }

    /// Hands back a half-open probe permit whose call will report no result: it was never sent,
    /// the client left before it finished, or the request itself was refused. Nothing is judged
    /// and the stall clock is left alone; only the permit is free again, so a request that says
    /// nothing about the upstream cannot hold a probe slot until `half_open_max_wait_ms`.
    /// Outside half-open there are no permits and this does nothing.
    pub fn release(&mut self, now_ms: u64) {
        if !self.enabled() {
            return;
        }
        self.refresh(now_ms);
        if let State::HalfOpen { probes, .. } = &mut self.state {
            *probes = probes.saturating_sub(1);
        }
    }

    /// Records one finished call, failed or not as its kind says. `jitter_roll` in [0, 1) sets
    /// the jitter if this trips the breaker. Returns the transition, if any, for the caller to
    /// write to KV.
    pub fn record(
        &mut self,
        outcome: &Outcome,
        key: KeyTag,
        now_ms: u64,
        jitter_roll: f64,
    ) -> Option<Transition> {
        let _ = key;
        let failed = outcome.is_failure();
        self.calls.total = self.calls.total.saturating_add(1);
        if failed {
            self.calls.last_failure_ms = Some(now_ms);
        } else {
            self.calls.last_success_ms = Some(now_ms);
        }
        if !self.enabled() {
            return None;
        }
        self.refresh(now_ms);
        let s = *self.policy.settings();
        match &mut self.state {
            State::Closed { .. } => {
                // One key holds at most its share of the window (and so of the run of failures).
                if self.window.calls_from(key) >= s.max_calls_per_key {
                    self.calls.capped = self.calls.capped.saturating_add(1);
                    return None;
                }
                self.window.record(failed, key, s.window_size);
                let w = &self.window;
                let cause = if w.consecutive() >= s.failure_threshold
                    && w.streak_keys() >= s.min_distinct_keys
                {
                    Some(TransitionCause::ConsecutiveFailures)
                } else if w.len() >= s.minimum_calls
                    && f64::from(w.failures()) >= s.failure_rate_threshold * f64::from(w.len())
                    && w.failing_keys(s.min_distinct_keys) >= s.min_distinct_keys.min(s.window_size)
                {
                    Some(TransitionCause::FailureRate)
                } else {
                    None
                };
                cause.map(|c| self.trip(c, now_ms, jitter_roll))
            }
            // A call started before the trip: counted above, cannot change the state.
            State::Open { .. } => None,
            State::HalfOpen {
                probes,
                succeeded,
                failed: failed_keys,
                last_event_ms,
                ..
            } => {
                *probes = probes.saturating_sub(1);
                *last_event_ms = now_ms;
                // Each key's first result counts, once: one client cannot keep the breaker open
                // by failing probes, nor close it by succeeding.
                if succeeded.contains(key) || failed_keys.contains(key) {
                    self.calls.capped = self.calls.capped.saturating_add(1);
                    return None;
                }
                self.window.note_streak(failed, key);
                if failed {
                    failed_keys.insert(key);
                    if failed_keys.len() < s.min_distinct_keys {
                        return None;
                    }
                    return Some(self.trip(TransitionCause::ProbeFailed, now_ms, jitter_roll));
                }
                succeeded.insert(key);
                if succeeded.len() < s.half_open_successes_to_close {
                    return None;
                }
                self.close(now_ms);
                self.replica.bump(now_ms);
                Some(Transition {
                    from: BreakerState::HalfOpen,
                    to: BreakerState::Closed,
                    cause: TransitionCause::ProbesSucceeded,
                    at_ms: now_ms,
                    open_until_ms: None,
                    generation: self.replica.generation,
                })
            }
        }
    }

    /// Opens from closed or half-open, for one more trip in the streak (which a sustained close
    /// forgives).
    fn trip(&mut self, cause: TransitionCause, now_ms: u64, jitter_roll: f64) -> Transition {
        let from = self.state.kind();
        let streak = match self.state {
            State::Closed { since_ms, .. }
                if now_ms.saturating_sub(since_ms) >= self.policy.settings().backoff_reset_ms =>
            {
                0
            }
            ref s => s.streak(),
        }
        .saturating_add(1);
        let until_ms = now_ms.saturating_add(self.policy.open_ms(streak, jitter_roll));
        self.state = State::Open { until_ms, streak };
        self.replica.trips = self.replica.trips.saturating_add(1);
        self.replica.bump(now_ms);
        Transition {
            from,
            to: BreakerState::Open,
            cause,
            at_ms: now_ms,
            open_until_ms: Some(until_ms),
            generation: self.replica.generation,
        }
    }

    /// Closed from now on, with a fresh window; the streak stays until a close lasts.
    fn close(&mut self, now_ms: u64) {
        self.state = State::Closed {
            since_ms: now_ms,
            streak: self.state.streak(),
        };
        self.window = CountWindow::default();
        self.replica.updated_ms = now_ms;
    }

    /// Manual force-open from the admin API: open for exactly `duration_ms` (no jitter, no
    /// growth), then half-open as usual.
    pub fn force_open(&mut self, now_ms: u64, duration_ms: u64) -> Transition {
        let from = self.state(now_ms);
        let until_ms = now_ms.saturating_add(duration_ms);
        self.state = State::Open {
            until_ms,
            streak: self.state.streak(),
        };
        self.replica.bump(now_ms);
        Transition {
            from,
            to: BreakerState::Open,
            cause: TransitionCause::ForcedOpen,
            at_ms: now_ms,
            open_until_ms: Some(until_ms),
            generation: self.replica.generation,
        }
    }

    /// Manual reset from the admin API: closed, window and growth cleared.
    pub fn reset(&mut self, now_ms: u64) -> Transition {
        let from = self.state(now_ms);
        self.close(now_ms);
        self.state = State::Closed {
            since_ms: now_ms,
            streak: 0,
        };
        self.replica.bump(now_ms);
        Transition {
            from,
            to: BreakerState::Closed,
            cause: TransitionCause::Reset,
            at_ms: now_ms,
            open_until_ms: None,
            generation: self.replica.generation,
        }
    }

    /// An operator's action here: issues the [`AdminCommand`] (its epoch above every one this
    /// breaker has seen, so it dominates every generation in the fleet) and applies it. A
    /// forced open lasts the policy's recovery timeout. The caller writes the command to
    /// `breaker/<upstream>/admin` and the snapshot as usual.
    pub fn apply(&mut self, action: BreakerAction, now_ms: u64) -> (AdminCommand, Transition) {
        let cmd = AdminCommand {
            action,
            epoch: self.replica.next_epoch(now_ms),
            open_until_ms: match action {
                BreakerAction::Open => {
                    Some(now_ms.saturating_add(self.policy.settings().recovery_timeout_ms))
                }
                BreakerAction::Reset => None,
            },
        };
        let t = self.execute(&cmd, now_ms);
        (cmd, t)
    }

    /// A command another isolate issued (read from KV): applied if it is newer than the last
    /// command applied here, else ignored (`None`). A forced open is adopted until at most
    /// `now + max_recovery_timeout`.
    pub fn adopt_admin(&mut self, cmd: &AdminCommand, now_ms: u64) -> Option<Transition> {
        (cmd.epoch > self.replica.admin_epoch).then(|| self.execute(cmd, now_ms))
    }

    fn execute(&mut self, cmd: &AdminCommand, now_ms: u64) -> Transition {
        let t = match cmd.action {
            BreakerAction::Open => {
                let until = cmd
                    .open_until_ms
                    .unwrap_or(now_ms)
                    .min(self.max_open_until(now_ms));
                self.force_open(now_ms, until.saturating_sub(now_ms))
            }
            BreakerAction::Reset => self.reset(now_ms),
        };
        self.replica.admin_epoch = cmd.epoch;
        t
    }

    /// The latest end of an open period adopted at `now_ms`.
    fn max_open_until(&self, now_ms: u64) -> u64 {
        now_ms.saturating_add(self.policy.settings().max_recovery_timeout_ms)
    }

    /// What to write to KV.
    pub fn snapshot(&self) -> BreakerSnapshot {
        BreakerSnapshot {
            state: self.state.kind(),
            open_until_ms: self.state.open_until_ms(),
            generation: self.replica.generation,
            trips: self.replica.trips,
            updated_ms: self.replica.updated_ms,
            admin_epoch: self.replica.admin_epoch,
        }
    }

    /// Adopts a snapshot read from KV if it is newer than ours (`(admin_epoch, generation)`,
    /// see [`replica`]): an open (or forced-open) state opens this breaker until the remote
    /// `open_until_ms`, capped at `now + max_recovery_timeout`; a closed one (an admin reset,
    /// or probes that succeeded elsewhere) closes it. Older or equal ones are ignored. Returns
    /// whether anything was adopted.
    pub fn merge_remote(&mut self, snap: &BreakerSnapshot, now_ms: u64) -> bool {
        if !self.replica.is_newer(snap) {
            return false;
        }
        match snap.state {
            BreakerState::Closed => {
                self.close(now_ms);
                self.state = State::Closed {
                    since_ms: now_ms,
                    streak: 0,
                };
            }
            BreakerState::Open | BreakerState::HalfOpen => {
                // A remote half-open is an open whose time ran out: adopting it as open with
                // the same end lets `refresh` move us to half-open locally.
                let streak = match self.state {
                    State::Closed { streak, .. } => streak.saturating_add(1),
                    ref s => s.streak(),
                };
                self.state = State::Open {
                    until_ms: snap
                        .open_until_ms
                        .unwrap_or(now_ms)
                        .min(self.max_open_until(now_ms)),
                    streak,
                };
                self.refresh(now_ms);
            }
        }
        self.replica.adopt(snap, now_ms);
        true
    }

    /// The status API view.
    pub fn status(&self, now_ms: u64) -> BreakerStatus {
        let state = self.state(now_ms);
        let enabled = self.enabled();
        BreakerStatus {
            enabled,
            is_open: state == BreakerState::Open,
            state,
            failure_rate: self.window.rate(),
            total_requests: self.calls.total,
            consecutive_failures: self.window.consecutive(),
            last_failure_ms: self.calls.last_failure_ms,
            last_success_ms: self.calls.last_success_ms,
            open_until_ms: self.state.open_until_ms().filter(|_| enabled),
            trips: self.replica.trips,
            generation: self.replica.generation,
            admin_epoch: self.replica.admin_epoch,
            capped_calls: self.calls.capped,
        }
    }
}
