//! The four strategies, each a recipe for a stage list (defaults are the old system's, which
//! operators know):
//! - **linear** `start_percentage` 5, `increment` 10, `stage_duration` 60 min,
//!   `final_percentage` 100 → 5, 15, …, 95, 100;
//! - **exponential** `start_percentage` 1, `multiplier` 2 → 1, 2, 4, …, 64, then a final stage
//!   at `final_percentage` (100) with stricter gates and twice the duration;
//! - **canary** `canary_percentage` 1 for `canary_duration` 120 min, then `final_percentage`
//!   (100) after an operator's approve — or on its own with `auto_approve`;
//! - **steps** an explicit list.
//!
//! Why the builders count before they build: an increment of 0.01 or a multiplier of 1.0001
//! would make thousands of stages; the count is computed (linear) or bounded while building
//! (exponential) and refused above [`MAX_STAGES`], naming the field — never a long loop.
//! Every error names the field as the operator wrote it.

use crate::core::cohort::Percent;
use crate::core::rollout::error::PlanError;
use crate::core::rollout::plan::{Plan, Safety, Strategy, MAX_STAGES};
use crate::core::rollout::stage::{minutes_to_ms, percent, Stage, StageGates, MAX_STAGE_MS};

/// Linear: `start_percentage`, then `+ increment` until `final_percentage` (always the last
/// stage, even when the increment overshoots it).
#[derive(Debug, Clone, PartialEq)]
pub struct LinearSpec {
    pub start_percentage: f64,
    pub increment: f64,
    pub stage_duration_minutes: f64,
    pub final_percentage: f64,
}

impl Default for LinearSpec {
    fn default() -> Self {
        LinearSpec {
            start_percentage: 5.0,
            increment: 10.0,
            stage_duration_minutes: 60.0,
            final_percentage: 100.0,
        }
    }
}

/// Exponential: `start_percentage`, then `× multiplier` while below `final_percentage`, then a
/// final stage at `final_percentage` with `final_gates` (default: [`StageGates::stricter`]) for
/// `final_duration_minutes` (default: twice the stage duration).
#[derive(Debug, Clone, PartialEq)]
pub struct ExponentialSpec {
    pub start_percentage: f64,
    pub multiplier: f64,
    pub stage_duration_minutes: f64,
    pub final_percentage: f64,
    pub final_gates: Option<StageGates>,
    pub final_duration_minutes: Option<f64>,
}

impl Default for ExponentialSpec {
    fn default() -> Self {
        ExponentialSpec {
            start_percentage: 1.0,
            multiplier: 2.0,
            stage_duration_minutes: 60.0,
            final_percentage: 100.0,
            final_gates: None,
            final_duration_minutes: None,
        }
    }
}

/// Canary: `canary_percentage` for `canary_duration_minutes`, then `final_percentage` for
/// `final_duration_minutes` — after an approve, or on its own with `auto_approve`.
#[derive(Debug, Clone, PartialEq)]
pub struct CanarySpec {
    pub canary_percentage: f64,
    pub canary_duration_minutes: f64,
    pub auto_approve: bool,
    pub final_percentage: f64,
    pub final_duration_minutes: f64,
}

impl Default for CanarySpec {
    fn default() -> Self {
        CanarySpec {
            canary_percentage: 1.0,
            canary_duration_minutes: 120.0,
            auto_approve: false,
            final_percentage: 100.0,
            final_duration_minutes: 60.0,
        }
    }
}

/// One explicit step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSpec {
    pub target_percentage: f64,
    pub min_duration_minutes: f64,
    pub auto_advance: bool,
    pub gates: StageGates,
}

/// The strategy-specific half of a plan request.
#[derive(Debug, Clone, PartialEq)]
pub enum StrategySpec {
    Linear(LinearSpec),
    Exponential(ExponentialSpec),
    Canary(CanarySpec),
    Steps(Vec<StepSpec>),
}

/// A plan as an operator describes it, before validation: the strategy's parameters, the
/// gates every generated stage gets, and the safety limits.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanSpec {
    pub strategy: StrategySpec,
    /// Gates of every generated stage (linear, exponential before its final stage, canary).
    pub gates: StageGates,
    /// Whether generated stages advance on their own (linear, exponential).
    pub auto_advance: bool,
    pub safety: Safety,
}

impl PlanSpec {
    /// A spec with the default gates and safety limits.
    pub fn new(strategy: StrategySpec) -> PlanSpec {
        PlanSpec {
            strategy,
            gates: StageGates::default(),
            auto_advance: true,
            safety: Safety::default(),
        }
    }

    /// Builds and validates the plan. Errors name the field as the operator wrote it.
    pub fn build(&self) -> Result<Plan, PlanError> {
        self.gates.validate("")?;
        self.safety.validate()?;
        let (strategy, stages) = match &self.strategy {
            StrategySpec::Linear(s) => (Strategy::Linear, self.linear(s)?),
            StrategySpec::Exponential(s) => (Strategy::Exponential, self.exponential(s)?),
            StrategySpec::Canary(s) => (Strategy::Canary, self.canary(s)?),
            StrategySpec::Steps(s) => (Strategy::Steps, steps(s)?),
        };
        Plan::try_new(strategy, stages, self.safety.clone())
    }

    fn stage(&self, target: Percent, min_duration_ms: u64) -> Stage {
        Stage {
            target_percentage: target,
            min_duration_ms,
            auto_advance: self.auto_advance,
            gates: self.gates.clone(),
        }
    }

    fn linear(&self, s: &LinearSpec) -> Result<Vec<Stage>, PlanError> {
        let start = percent("start_percentage", s.start_percentage)?;
        let fin = percent("final_percentage", s.final_percentage)?;
        let inc = increment_hundredths("increment", s.increment)?;
        let duration = minutes_to_ms("stage_duration_minutes", s.stage_duration_minutes)?;
        let (a, b) = (u32::from(start.hundredths()), u32::from(fin.hundredths()));
        if a > b {
            return Err(PlanError::new(
                "start_percentage",
                format!(
                    "must not exceed final_percentage ({} %), got {}",
                    fin.percent(),
                    start.percent()
                ),
            ));
        }
        // Stages strictly below final: a, a+inc, … (ceil((b-a)/inc) of them), then final.
        let below = (b - a).div_ceil(inc) as usize;
        if below + 1 > MAX_STAGES {
            return Err(PlanError::new(
                "increment",
                format!(
                    "gives {} stages from {} % to {} %; at most {MAX_STAGES} are allowed",
                    below + 1,
                    start.percent(),
                    fin.percent()
                ),
            ));
        }
        let mut out = Vec::with_capacity(below + 1);
        let mut p = a;
        while p < b {
            out.push(self.stage(hundredths(p), duration));
            p += inc;
        }
        out.push(self.stage(fin, duration));
        Ok(out)
    }

    fn exponential(&self, s: &ExponentialSpec) -> Result<Vec<Stage>, PlanError> {
        let start = percent("start_percentage", s.start_percentage)?;
        let fin = percent("final_percentage", s.final_percentage)?;
        let m = s.multiplier;
        if !(m.is_finite() && m > 1.0 && m <= 10.0) {
            return Err(PlanError::new(
                "multiplier",
                format!("must be a number in (1, 10], got {m}"),
            ));
        }
        let duration = minutes_to_ms("stage_duration_minutes", s.stage_duration_minutes)?;
        let final_duration = match s.final_duration_minutes {
            Some(min) => minutes_to_ms("final_stage.min_duration_minutes", min)?,
            None => duration.saturating_mul(2).min(MAX_STAGE_MS),
        };
        let final_gates = match &s.final_gates {
            Some(g) => {
                g.validate("final_stage.")?;
                g.clone()
            }
            None => self.gates.stricter(),
        };
        let (a, b) = (u32::from(start.hundredths()), u32::from(fin.hundredths()));
        if a > b {
            return Err(PlanError::new(
                "start_percentage",
                format!(
                    "must not exceed final_percentage ({} %), got {}",
                    fin.percent(),
                    start.percent()
                ),
            ));
        }
        let mut out = Vec::new();
        let mut p = a;
        while p < b {
            // Bounded: each pass adds a stage and the count is checked before the next.
            if out.len() + 1 >= MAX_STAGES {
                return Err(PlanError::new(
                    "multiplier",
                    format!(
                        "gives more than {MAX_STAGES} stages from {} % to {} %",
                        start.percent(),
                        fin.percent()
                    ),
                ));
            }
            out.push(self.stage(hundredths(p), duration));
            // Always at least one hundredth further, so a tiny start still makes progress.
            let next = (f64::from(p) * m).round();
            p = if next.is_finite() && next > f64::from(p) {
                (next.min(f64::from(b))) as u32
            } else {
                p + 1
            };
        }
        out.push(Stage {
            target_percentage: fin,
            min_duration_ms: final_duration,
            auto_advance: self.auto_advance,
            gates: final_gates,
        });
        Ok(out)
    }

    fn canary(&self, s: &CanarySpec) -> Result<Vec<Stage>, PlanError> {
        let canary = percent("canary_percentage", s.canary_percentage)?;
        let fin = percent("final_percentage", s.final_percentage)?;
        if canary >= fin {
            return Err(PlanError::new(
                "canary_percentage",
                format!(
                    "must be below final_percentage ({} %), got {}",
                    fin.percent(),
                    canary.percent()
                ),
            ));
        }
        let canary_ms = minutes_to_ms("canary_duration_minutes", s.canary_duration_minutes)?;
        let final_ms = minutes_to_ms("final_duration_minutes", s.final_duration_minutes)?;
        Ok(vec![
            Stage {
                target_percentage: canary,
                min_duration_ms: canary_ms,
                auto_advance: s.auto_approve,
                gates: self.gates.clone(),
            },
            Stage {
                target_percentage: fin,
                min_duration_ms: final_ms,
                auto_advance: true,
                gates: self.gates.clone(),
            },
        ])
    }
}

fn steps(list: &[StepSpec]) -> Result<Vec<Stage>, PlanError> {
    if list.is_empty() {
        return Err(PlanError::new("stages", "must hold at least one stage"));
    }
    if list.len() > MAX_STAGES {
        return Err(PlanError::new(
            "stages",
            format!("must hold at most {MAX_STAGES} stages, got {}", list.len()),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            let prefix = format!("stages[{i}].");
            s.gates.validate(&prefix)?;
            Ok(Stage {
                target_percentage: percent(
                    &format!("{prefix}target_percentage"),
                    s.target_percentage,
                )?,
                min_duration_ms: minutes_to_ms(
                    &format!("{prefix}min_duration_minutes"),
                    s.min_duration_minutes,
                )?,
                auto_advance: s.auto_advance,
                gates: s.gates.clone(),
            })
        })
        .collect()
}

/// An increment in hundredths: finite, at least 0.01, at most 100.
fn increment_hundredths(field: &str, v: f64) -> Result<u32, PlanError> {
    if v.is_finite() && v > 0.0 && v <= 100.0 {
        let h = (v * 100.0).round() as u32;
        if h >= 1 {
            return Ok(h);
        }
    }
    Err(PlanError::new(
        field,
        format!("must be a percentage in [0.01, 100], got {v}"),
    ))
}

/// Hundredths known to be within 0..=10000 (they come from two valid percentages).
fn hundredths(h: u32) -> Percent {
    u16::try_from(h)
        .ok()
        .and_then(Percent::from_hundredths)
        .unwrap_or(Percent::FULL)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets(p: &Plan) -> Vec<f64> {
        p.stages()
            .iter()
            .map(|s| s.target_percentage.percent())
            .collect()
    }

    #[test]
    fn linear_defaults() {
        let p = PlanSpec::new(StrategySpec::Linear(LinearSpec::default()))
            .build()
            .unwrap();
        assert_eq!(
            targets(&p),
            vec![5.0, 15.0, 25.0, 35.0, 45.0, 55.0, 65.0, 75.0, 85.0, 95.0, 100.0]
        );
        assert!(p.stages().iter().all(|s| s.min_duration_ms == 3_600_000));
    }

    #[test]
    fn exponential_defaults() {
        let p = PlanSpec::new(StrategySpec::Exponential(ExponentialSpec::default()))
            .build()
            .unwrap();
        assert_eq!(
            targets(&p),
            vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 100.0]
        );
        let last = p.stages().last().unwrap();
        assert_eq!(last.min_duration_ms, 7_200_000);
        assert_eq!(last.gates.max_error_rate, 0.025);
    }

    #[test]
    fn canary_defaults_wait_for_approval() {
        let p = PlanSpec::new(StrategySpec::Canary(CanarySpec::default()))
            .build()
            .unwrap();
        assert_eq!(targets(&p), vec![1.0, 100.0]);
        assert!(!p.stages()[0].auto_advance);
        assert_eq!(p.stages()[0].min_duration_ms, 7_200_000);
    }

    #[test]
    fn refusals_name_the_field() {
        let lin = |f: fn(&mut LinearSpec)| {
            let mut s = LinearSpec::default();
            f(&mut s);
            PlanSpec::new(StrategySpec::Linear(s)).build().unwrap_err()
        };
        assert_eq!(lin(|s| s.increment = 0.0).field, "increment");
        assert_eq!(lin(|s| s.increment = -5.0).field, "increment");
        assert_eq!(lin(|s| s.increment = f64::NAN).field, "increment");
        assert_eq!(lin(|s| s.increment = 0.5).field, "increment"); // 191 stages
        assert_eq!(lin(|s| s.start_percentage = 0.0).field, "start_percentage");
        assert_eq!(
            lin(|s| {
                s.start_percentage = 60.0;
                s.final_percentage = 50.0
            })
            .field,
            "start_percentage"
        );
        assert_eq!(
            lin(|s| s.final_percentage = 101.0).field,
            "final_percentage"
        );
        assert_eq!(
            lin(|s| s.stage_duration_minutes = 1e7).field,
            "stage_duration_minutes"
        );
        let e = PlanSpec::new(StrategySpec::Steps(vec![]))
            .build()
            .unwrap_err();
        assert_eq!(e.field, "stages");
    }
}
