//! One stage of a rollout: the percentage it routes to LightRAG, how long it must last, and the
//! gates its evidence must pass before the rollout moves on.
//!
//! Why every threshold lives on the stage (not on the plan): the exponential strategy's final
//! 100 % stage is stricter than the ones before it, and an explicit step list may want a
//! cautious first step and a quicker middle. The defaults are the old system's, which an
//! operator already knows (`max_error_rate` 5 %, `min_success_rate` 95 %, 100 requests), plus
//! the comparisons it never made (quality drop and p95 latency ratio against the control arm).

use crate::core::cohort::Percent;
use crate::core::json;
use crate::core::rollout::decimal::tidy;
use crate::core::rollout::error::PlanError;
use crate::core::rollout::pct;
use serde::{Deserialize, Deserializer, Serialize};

/// Longest stage an operator may ask for: 30 days. Anything longer is a typo (minutes vs
/// seconds) or a rollout that should be a config change.
pub const MAX_STAGE_MINUTES: f64 = 43_200.0;
/// [`MAX_STAGE_MINUTES`] in milliseconds.
pub const MAX_STAGE_MS: u64 = 43_200 * 60_000;
/// Largest accepted count threshold (requests, scored answers, samples).
pub const MAX_COUNT: u64 = 1_000_000_000;

/// The gate thresholds of one stage. `None` turns an optional gate off.
///
/// Serde shape (state document, status): every field, `null` for an off gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageGates {
    /// Requests each arm needs this stage before any rate gate may pass or fail (≥ 1).
    pub min_requests: u64,
    /// Scored answers an arm needs before a quality gate may pass or fail (≥ 1).
    pub min_scored: u64,
    /// Treatment error rate (requests that failed for the user) must stay at or below this.
    pub max_error_rate: f64,
    /// Treatment success rate (answered by the assigned upstream itself) must stay at or above.
    pub min_success_rate: f64,
    /// Treatment mean quality must stay at or above this (absolute); `None` = off.
    pub min_quality: Option<f64>,
    /// Treatment mean quality may trail control's by at most this; `None` = off.
    pub max_quality_drop: Option<f64>,
    /// Treatment p95 latency / control p95 latency must stay at or below this; `None` = off.
    pub max_latency_ratio: Option<f64>,
    /// LightRAG breaker trips tolerated this stage; one more fails the gate.
    pub max_breaker_trips: u64,
    /// Share of treatment answers where LightRAG found no context; `None` = off.
    pub max_no_context_rate: Option<f64>,
    /// Hook for a later dark-launch feature: shadow samples needed before advancing; `None` =
    /// off.
    pub min_shadow_samples: Option<u64>,
}

impl Default for StageGates {
    fn default() -> Self {
        StageGates {
            min_requests: 100,
            min_scored: 30,
            max_error_rate: 0.05,
            min_success_rate: 0.95,
            min_quality: None,
            max_quality_drop: Some(0.1),
            max_latency_ratio: Some(2.0),
            max_breaker_trips: 1,
            max_no_context_rate: None,
            min_shadow_samples: None,
        }
    }
}

pub(crate) fn check_rate(field: String, v: f64) -> Result<(), PlanError> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(PlanError::new(
            field,
            format!("must be a number in [0, 1], got {v}"),
        ))
    }
}

pub(crate) fn check_count(field: String, v: u64, lo: u64) -> Result<(), PlanError> {
    if (lo..=MAX_COUNT).contains(&v) {
        Ok(())
    } else {
        Err(PlanError::new(
            field,
            format!("must be a whole number in [{lo}, {MAX_COUNT}], got {v}"),
        ))
    }
}

impl StageGates {
    /// Checks every threshold; `prefix` is prepended to field names (`""` or `stages[2].`).
    pub fn validate(&self, prefix: &str) -> Result<(), PlanError> {
        let f = |name: &str| format!("{prefix}{name}");
        check_count(f("min_requests"), self.min_requests, 1)?;
        check_count(f("min_scored"), self.min_scored, 1)?;
        check_rate(f("max_error_rate"), self.max_error_rate)?;
        check_rate(f("min_success_rate"), self.min_success_rate)?;
        if let Some(q) = self.min_quality {
            check_rate(f("min_quality"), q)?;
        }
        if let Some(q) = self.max_quality_drop {
            check_rate(f("max_quality_drop"), q)?;
        }
        if let Some(r) = self.max_latency_ratio {
            if !(r.is_finite() && r > 0.0 && r <= 100.0) {
                return Err(PlanError::new(
                    f("max_latency_ratio"),
                    format!("must be a number in (0, 100], got {r}"),
                ));
            }
        }
        check_count(f("max_breaker_trips"), self.max_breaker_trips, 0)?;
        if let Some(r) = self.max_no_context_rate {
            check_rate(f("max_no_context_rate"), r)?;
        }
        if let Some(n) = self.min_shadow_samples {
            check_count(f("min_shadow_samples"), n, 1)?;
        }
        Ok(())
    }

    /// Rounds every threshold to nine decimal places (see `decimal`).
    pub(crate) fn tidy(&mut self) {
        self.max_error_rate = tidy(self.max_error_rate);
        self.min_success_rate = tidy(self.min_success_rate);
        for v in [
            &mut self.min_quality,
            &mut self.max_quality_drop,
            &mut self.max_latency_ratio,
            &mut self.max_no_context_rate,
        ] {
            *v = v.map(tidy);
        }
    }

    /// The stricter gates of an exponential plan's final 100 % stage: half the error budget,
    /// half the allowed shortfall in success rate, twice the requests (capped).
    pub fn stricter(&self) -> StageGates {
        StageGates {
            min_requests: self.min_requests.saturating_mul(2).min(MAX_COUNT),
            max_error_rate: self.max_error_rate / 2.0,
            min_success_rate: 1.0 - (1.0 - self.min_success_rate) / 2.0,
            ..self.clone()
        }
    }
}

/// One stage: where the rollout stands while in it and what it must show to leave it.
///
/// Serde shape: `{"target_percentage": 25.0, "min_duration_ms": 3600000, "auto_advance": true,
/// "min_requests": 100, …}` (the gates flattened in).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    /// Share of users routed to LightRAG in this stage, in (0, 100] (hundredths).
    #[serde(with = "pct")]
    pub target_percentage: Percent,
    /// Active (unpaused) time the stage must last before it may advance, ≤ 30 days.
    pub min_duration_ms: u64,
    /// Advance on its own when ready; `false` waits for an operator's approve.
    pub auto_advance: bool,
    #[serde(flatten)]
    pub gates: StageGates,
}

// By hand: a derive with `flatten` buffers through serde's `Content` (`json::deserialize_with`).
impl<'de> Deserialize<'de> for Stage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        json::deserialize_with(d, |v| {
            #[derive(Deserialize)]
            struct Head {
                #[serde(with = "pct")]
                target_percentage: Percent,
                min_duration_ms: u64,
                auto_advance: bool,
            }
            json::members(v, "struct Stage")?;
            let h = Head::deserialize(v)?;
            Ok(Stage {
                target_percentage: h.target_percentage,
                min_duration_ms: h.min_duration_ms,
                auto_advance: h.auto_advance,
                gates: StageGates::deserialize(v)?,
            })
        })
    }
}

impl Stage {
    /// Checks the stage; `prefix` is prepended to field names.
    pub fn validate(&self, prefix: &str) -> Result<(), PlanError> {
        if self.target_percentage == Percent::ZERO {
            return Err(PlanError::new(
                format!("{prefix}target_percentage"),
                "must be above 0 (a 0 % stage routes nobody); use rollback to stop",
            ));
        }
        if self.min_duration_ms > MAX_STAGE_MS {
            return Err(PlanError::new(
                format!("{prefix}min_duration_minutes"),
                format!(
                    "must be at most {MAX_STAGE_MINUTES} minutes (30 days), got {} ms",
                    self.min_duration_ms
                ),
            ));
        }
        self.gates.validate(prefix)
    }
}

/// Minutes (as the operator writes them) → milliseconds, refusing NaN, negatives and more
/// than [`MAX_STAGE_MINUTES`].
pub fn minutes_to_ms(field: &str, minutes: f64) -> Result<u64, PlanError> {
    if minutes.is_finite() && (0.0..=MAX_STAGE_MINUTES).contains(&minutes) {
        // In range, so the product fits a u64 exactly enough.
        Ok((minutes * 60_000.0).round() as u64)
    } else {
        Err(PlanError::new(
            field,
            format!(
                "must be a number of minutes in [0, {MAX_STAGE_MINUTES}] (30 days), got {minutes}"
            ),
        ))
    }
}

/// A percentage (as the operator writes it) → hundredths, refusing NaN and values outside
/// (0, 100]. Values are rounded to the nearest hundredth (the router's resolution).
pub fn percent(field: &str, p: f64) -> Result<Percent, PlanError> {
    match Percent::from_percent(p) {
        Some(v) if v != Percent::ZERO => Ok(v),
        _ => Err(PlanError::new(
            field,
            format!("must be a percentage in [0.01, 100], got {p}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_stricter_is_stricter() {
        let g = StageGates::default();
        g.validate("").unwrap();
        let s = g.stricter();
        s.validate("").unwrap();
        assert!(s.max_error_rate < g.max_error_rate);
        assert!(s.min_success_rate > g.min_success_rate);
        assert_eq!(s.min_requests, 200);
    }

    #[test]
    fn conversions_refuse_nonsense() {
        assert_eq!(minutes_to_ms("d", 60.0).unwrap(), 3_600_000);
        assert_eq!(minutes_to_ms("d", 0.5).unwrap(), 30_000);
        assert!(minutes_to_ms("d", f64::NAN).is_err());
        assert!(minutes_to_ms("d", -1.0).is_err());
        assert_eq!(minutes_to_ms("d", 1e9).unwrap_err().field, "d");
        assert_eq!(percent("p", 0.25).unwrap().hundredths(), 25);
        assert!(percent("p", 0.0).is_err());
        assert!(percent("p", 0.001).is_err());
        assert!(percent("p", 100.5).is_err());
        assert!(percent("p", f64::INFINITY).is_err());
    }

    #[test]
    fn stage_round_trips_with_flattened_gates() {
        let s = Stage {
            target_percentage: Percent::from_percent(12.5).unwrap(),
            min_duration_ms: 60_000,
            auto_advance: true,
            gates: StageGates::default(),
        };
        let j = serde_json::to_value(&s).unwrap();
        assert_eq!(j["target_percentage"], 12.5);
        assert_eq!(j["max_error_rate"], 0.05);
        assert!(j["min_quality"].is_null());
        let back: Stage = serde_json::from_value(j).unwrap();
        assert_eq!(back, s);
    }
}
