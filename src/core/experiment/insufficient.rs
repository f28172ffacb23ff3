//! Why a comparison could not be made. Every test returns `Result<_, Insufficient>` instead of
//! a NaN or a panic, so an empty arm, a constant measure or a 100 % rollout (no control arm)
//! reads as a plain "not yet" in the report.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Insufficient {
    /// Fewer observations than the test needs in at least one arm.
    TooFewSamples {
        needed: u64,
        treatment: u64,
        control: u64,
    },
    /// Every observation in both arms is the same (e.g. no failure anywhere yet), so there is
    /// no variance to compare against.
    NoVariance,
    /// An input or an intermediate value was not a finite number.
    NotFinite,
    /// The expected split leaves one arm empty by design (0 % or 100 % rollout).
    NoExpectedSplit { expected_treatment_share: f64 },
}

impl fmt::Display for Insufficient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Insufficient::TooFewSamples {
                needed,
                treatment,
                control,
            } => write!(
                f,
                "insufficient data: {needed} per arm needed, have {treatment} in the LightRAG arm and {control} in the Perplexity arm"
            ),
            Insufficient::NoVariance => {
                f.write_str("insufficient data: every observation in both arms is identical")
            }
            Insufficient::NotFinite => f.write_str("insufficient data: a value was not finite"),
            Insufficient::NoExpectedSplit {
                expected_treatment_share,
            } => write!(
                f,
                "no comparison: the expected treatment share {expected_treatment_share} leaves an arm empty"
            ),
        }
    }
}

/// `Err(TooFewSamples)` unless both arms have at least `needed`.
pub(crate) fn require_samples(
    needed: u64,
    treatment: u64,
    control: u64,
) -> Result<(), Insufficient> {
    if treatment >= needed && control >= needed {
        Ok(())
    } else {
        Err(Insufficient::TooFewSamples {
            needed,
            treatment,
            control,
        })
    }
}

/// `Err(NotFinite)` unless every value is finite.
pub(crate) fn require_finite(values: &[f64]) -> Result<(), Insufficient> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(Insufficient::NotFinite)
    }
}
