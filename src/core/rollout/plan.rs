//! The rollout plan: an ordered list of stages plus the safety limits that hold across them.
//!
//! Why a stage list: the machine then knows one thing — "the current stage and the next one" —
//! whatever strategy the operator chose (see [`crate::core::rollout::strategy`]), and the
//! preview chart, the status page and the tests all read the same list. A [`Plan`] exists only
//! through [`Plan::try_new`], which every path goes through (the admin request, a stored
//! document, a test): targets strictly increase, there is at least one stage and at most
//! [`MAX_STAGES`], every threshold is in range. So "percentages never decrease while
//! progressing" is a property of the type, and no plan can make the machine loop.

use crate::core::cohort::Percent;
use crate::core::rollout::decimal::tidy;
use crate::core::rollout::error::PlanError;
use crate::core::rollout::stage::{check_count, check_rate, Stage};
use serde::{Deserialize, Serialize};

/// Most stages a plan may have (a linear plan with increment 1 from 1 % has 100).
pub const MAX_STAGES: usize = 100;

/// How the plan was built (serde: `"linear"`, `"exponential"`, `"canary"`, `"steps"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Linear,
    Exponential,
    Canary,
    Steps,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Linear => "linear",
            Strategy::Exponential => "exponential",
            Strategy::Canary => "canary",
            Strategy::Steps => "steps",
        }
    }

    pub fn parse(s: &str) -> Option<Strategy> {
        match s {
            "linear" => Some(Strategy::Linear),
            "exponential" => Some(Strategy::Exponential),
            "canary" => Some(Strategy::Canary),
            "steps" => Some(Strategy::Steps),
            _ => None,
        }
    }
}

/// Limits that hold in every stage: how many failing ticks roll back, and what breach rolls
/// back at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Safety {
    /// Consecutive failing ticks that roll back (default 3), in 1..=100.
    pub failure_limit: u32,
    /// Treatment error rate above this rolls back at once (default 10 %) …
    pub emergency_error_rate: f64,
    /// … once the treatment arm has this many requests this stage (default 50).
    pub emergency_min_requests: u64,
    /// Treatment mean quality below this rolls back at once (default 0.5) …
    pub emergency_quality: f64,
    /// … once this many treatment answers were scored this stage (default 20).
    pub emergency_min_scored: u64,
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            failure_limit: 3,
            emergency_error_rate: 0.1,
            emergency_min_requests: 50,
            emergency_quality: 0.5,
            emergency_min_scored: 20,
        }
    }
}

impl Safety {
    pub fn validate(&self) -> Result<(), PlanError> {
        if !(1..=100).contains(&self.failure_limit) {
            return Err(PlanError::new(
                "failure_limit",
                format!(
                    "must be a whole number in [1, 100], got {}",
                    self.failure_limit
                ),
            ));
        }
        let e = self.emergency_error_rate;
        if !(e.is_finite() && e > 0.0 && e <= 1.0) {
            return Err(PlanError::new(
                "emergency_error_rate",
                format!("must be a number in (0, 1], got {e}"),
            ));
        }
        check_count(
            "emergency_min_requests".into(),
            self.emergency_min_requests,
            1,
        )?;
        check_rate("emergency_quality".into(), self.emergency_quality)?;
        check_count("emergency_min_scored".into(), self.emergency_min_scored, 1)?;
        Ok(())
    }
}

/// A validated plan. Built only by [`Plan::try_new`] (directly, from a [`crate::core::rollout::strategy::PlanSpec`], from the
/// admin request, or from a stored document).
///
/// Serde shape: `{"strategy": "linear", "stages": [Stage…], "safety": Safety}`; deserialising
/// re-validates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PlanWire", into = "PlanWire")]
pub struct Plan {
    strategy: Strategy,
    stages: Vec<Stage>,
    safety: Safety,
}

#[derive(Serialize, Deserialize)]
struct PlanWire {
    strategy: Strategy,
    stages: Vec<Stage>,
    #[serde(default)]
    safety: Safety,
}

impl TryFrom<PlanWire> for Plan {
    type Error = PlanError;
    fn try_from(w: PlanWire) -> Result<Self, Self::Error> {
        Plan::try_new(w.strategy, w.stages, w.safety)
    }
}

impl From<Plan> for PlanWire {
    fn from(p: Plan) -> PlanWire {
        PlanWire {
            strategy: p.strategy,
            stages: p.stages,
            safety: p.safety,
        }
    }
}

impl Plan {
    /// Validates a stage list: 1..=[`MAX_STAGES`] stages, each valid, targets strictly
    /// increasing; and the safety limits.
    ///
    /// Thresholds are tidied to nine decimal places, so a stored plan reads back identical.
    pub fn try_new(
        strategy: Strategy,
        mut stages: Vec<Stage>,
        mut safety: Safety,
    ) -> Result<Plan, PlanError> {
        for s in &mut stages {
            s.gates.tidy();
        }
        safety.emergency_error_rate = tidy(safety.emergency_error_rate);
        safety.emergency_quality = tidy(safety.emergency_quality);
        if stages.is_empty() {
            return Err(PlanError::new("stages", "must hold at least one stage"));
        }
        if stages.len() > MAX_STAGES {
            return Err(PlanError::new(
                "stages",
                format!(
                    "must hold at most {MAX_STAGES} stages, got {}",
                    stages.len()
                ),
            ));
        }
        let mut prev: Option<Percent> = None;
        for (i, s) in stages.iter().enumerate() {
            let prefix = format!("stages[{i}].");
            s.validate(&prefix)?;
            if let Some(p) = prev {
                if s.target_percentage <= p {
                    return Err(PlanError::new(
                        format!("{prefix}target_percentage"),
                        format!(
                            "must be above the previous stage's {} % (a rollout only moves forward), got {}",
                            p.percent(),
                            s.target_percentage.percent()
                        ),
                    ));
                }
            }
            prev = Some(s.target_percentage);
        }
        safety.validate()?;
        Ok(Plan {
            strategy,
            stages,
            safety,
        })
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    pub fn stage(&self, index: usize) -> Option<&Stage> {
        self.stages.get(index)
    }

    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Always false: a plan has at least one stage.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    pub fn safety(&self) -> &Safety {
        &self.safety
    }

    /// Where the plan ends.
    pub fn final_percentage(&self) -> Percent {
        self.stages
            .last()
            .map(|s| s.target_percentage)
            .unwrap_or(Percent::ZERO)
    }
}
