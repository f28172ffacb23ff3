//! Simulation: run the real decision over many keys and count where they go.
//!
//! Why: before changing the rollout percentage, the salt or the rules, an operator wants to see
//! who would go where. The browser preview calls this with a list of user ids (or synthetic
//! ones), and the accuracy tests use it over 100,000 users. It calls [`decide`] itself rather
//! than re-deriving the outcome, so the preview can never show something the worker would not do.

use crate::core::config::Config;
use crate::core::decide::{decide, Decision, PreparedQuery, RouteRequest, RouteState};
use crate::core::model::{Arm, Reason, Upstream};
use crate::core::population::Population;
use crate::core::sorted_map::SortedMap;
use serde::Serialize;

/// Counts for a simulated population.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Simulation {
    pub total: u64,
    /// Requests per upstream (serialized with the upstream's name as the key).
    pub per_upstream: SortedMap<Upstream, u64>,
    /// Requests per reason (keys `rollout_in`, `rule:news`, ...).
    pub per_reason: SortedMap<Reason, u64>,
    /// Requests per A/B arm (keys `treatment`, `control`, `none`).
    pub per_arm: SortedMap<Arm, u64>,
    /// Keys per whole-percent position bucket, 100 entries (`histogram[9]` is 9.00–9.99).
    pub histogram: Vec<u64>,
    /// Of those, the keys routed to LightRAG (per bucket), so a chart can show where the
    /// rollout, rules and safety steps actually sent each part of the line.
    pub histogram_lightrag: Vec<u64>,
    /// Share of requests routed to LightRAG, in `[0, 1]` (0 when empty).
    pub lightrag_share: f64,
}

/// Running counts, one decision at a time.
struct Tally {
    sim: Simulation,
    lightrag: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            sim: Simulation {
                total: 0,
                per_upstream: SortedMap::new(),
                per_reason: SortedMap::new(),
                per_arm: SortedMap::new(),
                histogram: vec![0; 100],
                histogram_lightrag: vec![0; 100],
                lightrag_share: 0.0,
            },
            lightrag: 0,
        }
    }

    fn add(&mut self, d: Decision) {
        let sim = &mut self.sim;
        sim.total += 1;
        *sim.per_upstream.entry(d.upstream).or_default() += 1;
        *sim.per_arm.entry(d.arm).or_default() += 1;
        let bucket = d.position.map(|p| usize::from(p.bucket()));
        if let Some(slot) = bucket.and_then(|b| sim.histogram.get_mut(b)) {
            *slot += 1;
        }
        if d.upstream == Upstream::Lightrag {
            self.lightrag += 1;
            if let Some(slot) = bucket.and_then(|b| sim.histogram_lightrag.get_mut(b)) {
                *slot += 1;
            }
        }
        *sim.per_reason.entry(d.reason).or_default() += 1;
    }

    fn finish(mut self) -> Simulation {
        if self.sim.total > 0 {
            self.sim.lightrag_share = self.lightrag as f64 / self.sim.total as f64;
        }
        self.sim
    }
}

/// Decides for each key with the same `query` and no headers, and counts the outcomes.
pub fn simulate<I, S>(cfg: &Config, state: &RouteState, keys: I, query: &str) -> Simulation
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    // The query is the same for every key: classify it once.
    let prepared = PreparedQuery::new(query);
    let mut tally = Tally::new();
    for key in keys {
        tally.add(decide(
            cfg,
            state,
            &RouteRequest::new(Some(key.as_ref()), prepared.as_query()),
        ));
    }
    tally.finish()
}

/// The counts of decisions already taken (the page's "who goes where" list, where each request
/// may carry its own headers).
pub fn summarize<'a>(decisions: impl IntoIterator<Item = &'a Decision>) -> Simulation {
    let mut tally = Tally::new();
    for d in decisions {
        tally.add(d.clone());
    }
    tally.finish()
}

/// [`simulate`] over a synthetic population (`user-0 … user-(n-1)`), generated inside the core
/// so that a million users never exist as a million strings anywhere.
pub fn simulate_population(
    cfg: &Config,
    state: &RouteState,
    population: Population<'_>,
    query: &str,
) -> Simulation {
    let prepared = PreparedQuery::new(query);
    let mut tally = Tally::new();
    population.for_each(|key| {
        tally.add(decide(
            cfg,
            state,
            &RouteRequest::new(Some(key), prepared.as_query()),
        ));
    });
    tally.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::load;
    use serde_json::json;

    #[test]
    fn counts_add_up() {
        let vars =
            json!({"LIGHTRAG_INTEGRATION_ENABLED": "true", "LIGHTRAG_ROLLOUT_PERCENTAGE": "30"});
        let c = load(vars.as_object().unwrap(), None, 0).config;
        let keys: Vec<String> = (0..2000).map(|i| format!("user-{i}")).collect();
        let s = simulate(&c, &RouteState::default(), &keys, "what is a metabolite");
        assert_eq!(s.total, 2000);
        assert_eq!(s.histogram.len(), 100);
        assert_eq!(s.histogram.iter().sum::<u64>(), 2000);
        assert_eq!(s.per_upstream.values().sum::<u64>(), 2000);
        let lr = s
            .per_upstream
            .get(&Upstream::Lightrag)
            .copied()
            .unwrap_or(0);
        assert_eq!(
            s.per_reason.get(&Reason::RolloutIn).copied().unwrap_or(0),
            lr
        );
        assert_eq!(s.histogram[..30].iter().sum::<u64>(), lr);
        assert_eq!(s.histogram_lightrag[..30], s.histogram[..30]);
        assert!(s.histogram_lightrag[30..].iter().all(|&n| n == 0));
        assert!(
            (s.lightrag_share - 0.3).abs() < 0.04,
            "{}",
            s.lightrag_share
        );
        let empty = simulate(&c, &RouteState::default(), Vec::<String>::new(), "");
        assert_eq!((empty.total, empty.lightrag_share), (0, 0.0));
        // The synthetic population is exactly those keys.
        let by_count = simulate_population(
            &c,
            &RouteState::default(),
            Population::users(2000),
            "what is a metabolite",
        );
        assert_eq!(by_count, s);
    }
}
