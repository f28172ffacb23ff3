//! Who moves when the configuration changes: the preview's "what moves" panel.
//!
//! Why: before raising a percentage, adding a rule or changing the salt, an operator wants to
//! know how many users will change upstream, in which direction and why — and above all that
//! raising the rollout moves nobody *out* of LightRAG (users who already had LightRAG keep it,
//! docs/architecture.md#cohort-hashing). This decides every user twice with the real decision,
//! once per configuration, and counts the differences; it never re-derives a decision, so the
//! answer is what the worker would do before and after the change.

use crate::core::config::Config;
use crate::core::decide::{decide, PreparedQuery, RouteRequest, RouteState};
use crate::core::model::{Arm, Upstream};
use crate::core::population::Population;
use crate::core::sorted_map::SortedMap;
use serde::Serialize;

/// Most ids kept as a sample per direction.
pub const MAX_SAMPLE: usize = 100;

/// Users who change upstream in one direction.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Flow {
    pub count: u64,
    /// `"<reason before> → <reason after>"` → users (e.g. `"rollout_out → rollout_in"`).
    pub by_reason: SortedMap<String, u64>,
    /// The first ids that moved this way (at most the requested sample size).
    pub sample: Vec<String>,
}

impl Flow {
    fn add(&mut self, key: &str, from: String, to: String, sample: usize) {
        self.count += 1;
        *self.by_reason.entry(format!("{from} → {to}")).or_default() += 1;
        if self.sample.len() < sample {
            self.sample.push(key.to_string());
        }
    }
}

/// How a population's routing changes from one configuration to another.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Movement {
    pub total: u64,
    /// Users whose upstream changes (both directions).
    pub moved: u64,
    pub lightrag_to_perplexity: Flow,
    pub perplexity_to_lightrag: Flow,
    /// Users on LightRAG before and after.
    pub stayed_lightrag: u64,
    /// Users on Perplexity before and after.
    pub stayed_perplexity: u64,
    /// Same upstream, different reason (e.g. `rollout_out → rule:news`), by reason pair.
    pub reason_changes: SortedMap<String, u64>,
    /// A/B arm changes (`"control → treatment"`), whatever the upstream did.
    pub arm_changes: SortedMap<String, u64>,
    /// Users routed to LightRAG before and after.
    pub lightrag_before: u64,
    pub lightrag_after: u64,
}

/// The two configurations and what every user is decided against.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub current: &'a Config,
    pub proposed: &'a Config,
    /// The live state both decisions see (breaker, rollback, quality gate).
    pub state: &'a RouteState,
    /// The query every user asks (rules may read it).
    pub query: &'a str,
    /// Ids kept per direction, at most [`MAX_SAMPLE`].
    pub sample: usize,
}

struct Counter<'a> {
    change: Change<'a>,
    prepared: PreparedQuery,
    m: Movement,
}

impl Counter<'_> {
    fn add(&mut self, key: &str) {
        let c = &self.change;
        let sample = c.sample.min(MAX_SAMPLE);
        let req = RouteRequest::new(Some(key), self.prepared.as_query());
        let before = decide(c.current, c.state, &req);
        let after = decide(c.proposed, c.state, &req);
        let m = &mut self.m;
        m.total += 1;
        m.lightrag_before += u64::from(before.upstream == Upstream::Lightrag);
        m.lightrag_after += u64::from(after.upstream == Upstream::Lightrag);
        if before.arm != after.arm {
            *m.arm_changes
                .entry(format!("{} → {}", arm(before.arm), arm(after.arm)))
                .or_default() += 1;
        }
        // Reasons are turned into text only for users whose routing changed (the rare case),
        // so a million unchanged users cost two decisions and a comparison each.
        let text = || (before.reason.to_string(), after.reason.to_string());
        match (before.upstream, after.upstream) {
            (Upstream::Lightrag, Upstream::Perplexity) => {
                m.moved += 1;
                let (from, to) = text();
                m.lightrag_to_perplexity.add(key, from, to, sample);
            }
            (Upstream::Perplexity, Upstream::Lightrag) => {
                m.moved += 1;
                let (from, to) = text();
                m.perplexity_to_lightrag.add(key, from, to, sample);
            }
            (u, _) => {
                if u == Upstream::Lightrag {
                    m.stayed_lightrag += 1;
                } else {
                    m.stayed_perplexity += 1;
                }
                if before.reason != after.reason {
                    let (from, to) = text();
                    *m.reason_changes
                        .entry(format!("{from} → {to}"))
                        .or_default() += 1;
                }
            }
        }
    }
}

fn arm(a: Arm) -> &'static str {
    a.as_str()
}

fn counter(change: Change<'_>) -> Counter<'_> {
    Counter {
        prepared: PreparedQuery::new(change.query),
        change,
        m: Movement::default(),
    }
}

/// The movement of the given users.
pub fn movement<I, S>(change: Change<'_>, keys: I) -> Movement
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut c = counter(change);
    for k in keys {
        c.add(k.as_ref());
    }
    c.m
}

/// The movement of a synthetic population (`user-0 …`), generated inside the core.
pub fn movement_of_population(change: Change<'_>, population: Population<'_>) -> Movement {
    let mut c = counter(change);
    population.for_each(|k| c.add(k));
    c.m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::load;
    use serde_json::json;

    fn cfg(v: serde_json::Value) -> Config {
        load(v.as_object().unwrap(), None, 0).config
    }

    #[test]
    fn raising_moves_nobody_out_and_lowering_nobody_in() {
        let ten = cfg(
            json!({"LIGHTRAG_INTEGRATION_ENABLED": "true", "LIGHTRAG_ROLLOUT_PERCENTAGE": "10"}),
        );
        let twenty = cfg(
            json!({"LIGHTRAG_INTEGRATION_ENABLED": "true", "LIGHTRAG_ROLLOUT_PERCENTAGE": "20"}),
        );
        let state = RouteState::default();
        let change = |a, b| Change {
            current: a,
            proposed: b,
            state: &state,
            query: "q",
            sample: 5,
        };
        let up = movement_of_population(change(&ten, &twenty), Population::users(20_000));
        assert_eq!(up.lightrag_to_perplexity.count, 0);
        assert_eq!(up.total, 20_000);
        assert_eq!(up.moved, up.perplexity_to_lightrag.count);
        assert_eq!(up.lightrag_after - up.lightrag_before, up.moved);
        assert_eq!(
            up.perplexity_to_lightrag
                .by_reason
                .keys()
                .collect::<Vec<_>>(),
            ["rollout_out → rollout_in"]
        );
        assert_eq!(up.perplexity_to_lightrag.sample.len(), 5);
        assert_eq!(up.arm_changes.get("control → treatment"), Some(&up.moved));
        let share = up.moved as f64 / 20_000.0;
        assert!((share - 0.10).abs() < 0.01, "{share}");
        let down = movement_of_population(change(&twenty, &ten), Population::users(20_000));
        assert_eq!(down.perplexity_to_lightrag.count, 0);
        assert_eq!(down.lightrag_to_perplexity.count, up.moved);
        // The sample ids really moved.
        for k in &up.perplexity_to_lightrag.sample {
            let m = movement(change(&ten, &twenty), [k]);
            assert_eq!(m.perplexity_to_lightrag.count, 1, "{k}");
        }
    }

    #[test]
    fn a_rule_moves_users_with_its_reason() {
        let base =
            json!({"LIGHTRAG_INTEGRATION_ENABLED": "true", "LIGHTRAG_ROLLOUT_PERCENTAGE": "50"});
        let mut ruled = base.clone();
        ruled["LIGHTRAG_ENABLE_CONDITIONAL_ROUTING"] = json!("true");
        ruled["LIGHTRAG_ROUTING_RULES"] =
            json!([{"name": "news", "when": {"keywords_any": ["latest"]}, "action": "perplexity"}]);
        let (a, b) = (cfg(base), cfg(ruled));
        let state = RouteState::default();
        let change = Change {
            current: &a,
            proposed: &b,
            state: &state,
            query: "the latest guidelines",
            sample: 3,
        };
        let m = movement_of_population(change, Population::users(4000));
        assert_eq!(m.perplexity_to_lightrag.count, 0);
        assert_eq!(m.lightrag_to_perplexity.count, m.lightrag_before);
        assert_eq!(
            m.lightrag_to_perplexity
                .by_reason
                .keys()
                .collect::<Vec<_>>(),
            ["rollout_in → rule:news"]
        );
        assert_eq!(
            m.reason_changes.get("rollout_out → rule:news"),
            Some(&m.stayed_perplexity)
        );
        // A question the rule does not match moves nobody.
        let calm = movement_of_population(
            Change {
                query: "what is a metabolite",
                ..change
            },
            Population::users(4000),
        );
        assert_eq!(calm.moved, 0);
        assert!(calm.reason_changes.is_empty());
    }
}
