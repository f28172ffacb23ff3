//! The fleet's breaker: the state hub's view of every isolate's calls to an upstream, which
//! trips the shared record when the fleet's calls together meet the breaker's policy.
//!
//! Why: each isolate trips on the calls *it* saw. In a fleet of 1,000 isolates at the Clinical
//! Metabolomics Oracle's traffic an isolate sees a request every few minutes, so after LightRAG
//! fails it takes ~50 s before any one isolate has seen failures from
//! `LIGHTRAG_CIRCUIT_BREAKER_MIN_DISTINCT_KEYS` distinct users (`make simulate`), while the
//! fleet as a whole saw them within seconds. With the state hub (`core::hub`) every isolate
//! sends the calls it recorded while its breaker was closed ([`FleetCall`], after the
//! response, `core::fleet::IsolateState::fleet_report`); the hub runs them, in the order they
//! arrive, through one more [`Breaker`] with the same policy — the same consecutive-failure
//! and failure-rate rules, the same distinct-keys guard and per-key cap, over the fleet's
//! calls — and when that breaker trips, writes its open record to `breaker/<upstream>` as an
//! isolate would. The reporting isolate adopts it from the hub's answer, every other one at
//! its next refresh.
//!
//! Every call is reported, successes too: with failures alone the hub would see a run of
//! failures where the fleet had a few among many successes, and trip on a 10 % error rate.
//! The distinct-keys guard across isolates needs equal users to have equal tags in every
//! isolate: the Worker derives the tag secret from the deployment's `ADMIN_TOKEN`
//! (`core::keytag::TagSecret::derive`); without one each isolate draws its own, and a user
//! counts once per isolate it reached (the status says which).
//!
//! Only trips: half-open probes and closing stay with the isolates (their probes close the
//! record as before). While the stored record is open or half-open the hub ignores reports,
//! and calls made before the stored record's last transition are dropped, so a call from
//! before an operator's reset or a recovery never counts toward the next trip. The hub keeps
//! this in memory: if the object is evicted the fleet's window starts empty, which delays a
//! fleet trip and never causes one (isolates still trip on their own calls).

use super::{Breaker, BreakerPolicy, BreakerSnapshot, BreakerState};
use crate::core::keytag::KeyTag;
use crate::core::outcome::{Outcome, OutcomeKind};
use serde::{Deserialize, Serialize};

/// One call as an isolate reports it to the hub.
///
/// Serde shape: `{"at_ms":1700000000000,"kind":"success","tag":1234}` (`kind` as
/// [`OutcomeKind`] serializes: `"success"`, `{"http_server_error":503}`, …; `tag` the caller's
/// keyed tag, never the key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetCall {
    pub at_ms: u64,
    pub kind: OutcomeKind,
    pub tag: u64,
}

/// The hub's breaker over the fleet's calls to one upstream.
#[derive(Debug, Clone)]
pub struct FleetWatch {
    breaker: Breaker,
    policy: BreakerPolicy,
    /// The stored record's last transition time: calls before it are dropped.
    since_ms: u64,
}

impl FleetWatch {
    pub fn new(policy: BreakerPolicy) -> FleetWatch {
        FleetWatch {
            breaker: Breaker::new(policy),
            policy,
            since_ms: 0,
        }
    }

    /// The fleet breaker's state now (status, tests).
    pub fn state(&self, now_ms: u64) -> BreakerState {
        self.breaker.state(now_ms)
    }

    /// Feeds one isolate's report. `stored` is the record in the store now, `policy` the
    /// breaker policy the fleet runs on (a changed one starts a fresh window), `jitter_roll` in
    /// [0, 1) the open time's jitter if the fleet trips. Returns the record to store when the
    /// fleet's calls tripped the breaker.
    pub fn report(
        &mut self,
        stored: Option<&BreakerSnapshot>,
        calls: &[FleetCall],
        policy: BreakerPolicy,
        now_ms: u64,
        jitter_roll: f64,
    ) -> Option<BreakerSnapshot> {
        if policy != self.policy {
            let snap = self.breaker.snapshot();
            *self = FleetWatch::new(policy);
            self.breaker.merge_remote(&snap, now_ms);
        }
        if let Some(s) = stored {
            if self.breaker.merge_remote(s, now_ms) {
                self.since_ms = s.updated_ms;
            }
        }
        if self.breaker.state(now_ms) != BreakerState::Closed {
            return None;
        }
        for c in calls.iter().filter(|c| c.at_ms >= self.since_ms) {
            let outcome = Outcome::new(c.kind, 0);
            let t = self
                .breaker
                .record(&outcome, KeyTag::from_raw(c.tag), now_ms, jitter_roll);
            if t.is_some_and(|t| t.to == BreakerState::Open) {
                self.since_ms = now_ms;
                return Some(self.breaker.snapshot());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::breaker::BreakerSettings;

    fn policy() -> BreakerPolicy {
        BreakerPolicy::try_new(BreakerSettings {
            failure_threshold: 5,
            min_distinct_keys: 3,
            window_size: 20,
            minimum_calls: 10,
            failure_rate_threshold: 0.5,
            ..BreakerSettings::default()
        })
        .unwrap_or_default()
    }

    fn call(at_ms: u64, failed: bool, tag: u64) -> FleetCall {
        FleetCall {
            at_ms,
            kind: if failed {
                OutcomeKind::HttpServerError(503)
            } else {
                OutcomeKind::Success
            },
            tag,
        }
    }

    #[test]
    fn failures_spread_over_isolates_trip_the_fleet() {
        let mut w = FleetWatch::new(policy());
        // Five isolates, one failure each from a different user: no isolate alone trips.
        for i in 0..4u64 {
            assert_eq!(
                w.report(None, &[call(1_000 + i, true, i)], policy(), 2_000, 0.5),
                None
            );
        }
        let snap = w.report(None, &[call(1_005, true, 4)], policy(), 2_000, 0.5);
        let snap = snap.unwrap_or_else(|| panic!("the fifth failure trips the fleet"));
        assert_eq!(snap.state, BreakerState::Open);
        assert_eq!(snap.generation, 1);
        assert!(snap.open_until_ms.is_some_and(|u| u > 2_000));
        // Open: further reports are ignored.
        assert_eq!(
            w.report(Some(&snap), &[call(2_001, true, 9)], policy(), 2_001, 0.5),
            None
        );
    }

    #[test]
    fn one_user_failing_everywhere_does_not_trip_it() {
        let mut w = FleetWatch::new(policy());
        for i in 0..40u64 {
            assert_eq!(
                w.report(None, &[call(1_000 + i, true, 7)], policy(), 2_000, 0.5),
                None
            );
        }
    }

    #[test]
    fn a_ten_percent_error_rate_does_not_trip_it() {
        let mut w = FleetWatch::new(policy());
        for i in 0..500u64 {
            let calls = [call(1_000 + i, i % 10 == 0, i)];
            assert_eq!(w.report(None, &calls, policy(), 1_000 + i, 0.5), None);
        }
    }

    #[test]
    fn calls_from_before_the_stored_transition_do_not_count() {
        let mut w = FleetWatch::new(policy());
        // An operator reset at 5_000 (a closed record, newer than anything held).
        let reset = BreakerSnapshot {
            state: BreakerState::Closed,
            open_until_ms: None,
            generation: 3,
            trips: 1,
            updated_ms: 5_000,
            admin_epoch: 5_000,
        };
        let old: Vec<FleetCall> = (0..10).map(|i| call(4_000 + i, true, i)).collect();
        assert_eq!(w.report(Some(&reset), &old, policy(), 6_000, 0.5), None);
        // The same failures after the reset trip it, above the stored generation.
        let new: Vec<FleetCall> = (0..10).map(|i| call(5_500 + i, true, i)).collect();
        let snap = w.report(Some(&reset), &new, policy(), 6_000, 0.5);
        let snap = snap.unwrap_or_else(|| panic!("new failures trip it"));
        assert_eq!((snap.admin_epoch, snap.generation), (5_000, 4));
    }

    #[test]
    fn an_open_record_stored_by_an_isolate_stops_the_counting() {
        let mut w = FleetWatch::new(policy());
        let open = BreakerSnapshot {
            state: BreakerState::Open,
            open_until_ms: Some(60_000),
            generation: 1,
            trips: 1,
            updated_ms: 1_000,
            admin_epoch: 0,
        };
        let calls: Vec<FleetCall> = (0..10).map(|i| call(2_000 + i, true, i)).collect();
        assert_eq!(w.report(Some(&open), &calls, policy(), 3_000, 0.5), None);
        // Past its end the record reads half-open: still the isolates' probes' business.
        assert_eq!(w.report(Some(&open), &calls, policy(), 61_000, 0.5), None);
        // Closed again by a probe (generation 2): counting resumes from its time.
        let closed = BreakerSnapshot {
            state: BreakerState::Closed,
            open_until_ms: None,
            generation: 2,
            trips: 1,
            updated_ms: 62_000,
            admin_epoch: 0,
        };
        assert_eq!(w.report(Some(&closed), &calls, policy(), 63_000, 0.5), None);
        let later: Vec<FleetCall> = (0..5).map(|i| call(62_500 + i, true, i)).collect();
        let snap = w.report(Some(&closed), &later, policy(), 63_000, 0.5);
        assert_eq!(
            snap.map(|s| (s.state, s.generation)),
            Some((BreakerState::Open, 3))
        );
    }

    #[test]
    fn a_changed_policy_starts_a_fresh_window() {
        let mut w = FleetWatch::new(policy());
        let four: Vec<FleetCall> = (0..4).map(|i| call(1_000 + i, true, i)).collect();
        assert_eq!(w.report(None, &four, policy(), 2_000, 0.5), None);
        let mut s = *policy().settings();
        s.failure_threshold = 6;
        let p2 = BreakerPolicy::try_new(s).unwrap_or_default();
        // Two more failures: six in all, but the first four were under the old policy.
        let two = [call(1_010, true, 10), call(1_011, true, 11)];
        assert_eq!(w.report(None, &two, p2, 2_000, 0.5), None);
    }
}
