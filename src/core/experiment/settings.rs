//! The knobs of an experiment analysis, validated once: the error rate α, the effect size the
//! sequential test is tuned for, and the least data per arm before any test is run.
//!
//! Why a minimum per arm: every test here leans on the central limit theorem through plug-in
//! variances. With a handful of requests an arm may have no failure yet (variance 0) and a
//! normal approximation is not yet honest, so below `min_samples_per_arm` the answer is
//! "insufficient data", never a p-value.

use crate::core::policy::{check_min, Bounds, PolicyError};
use serde::{Deserialize, Serialize};

/// A significance level α in (0, 0.5): tests report `1 − α` confidence intervals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Alpha(f64);

impl Alpha {
    /// α = 0.05 (95 % intervals).
    pub const FIVE_PERCENT: Alpha = Alpha(0.05);

    pub fn try_new(alpha: f64) -> Result<Alpha, PolicyError> {
        if alpha.is_finite() && alpha > 0.0 && alpha < 0.5 {
            Ok(Alpha(alpha))
        } else {
            Err(PolicyError::new(
                "alpha",
                format!("must be a number in (0, 0.5), got {alpha}"),
            ))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }

    /// The confidence level 1 − α, in percent (95 for α = 0.05).
    pub fn confidence_percent(self) -> f64 {
        100.0 * (1.0 - self.0)
    }
}

impl Default for Alpha {
    fn default() -> Self {
        Alpha::FIVE_PERCENT
    }
}

impl<'de> Deserialize<'de> for Alpha {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        Alpha::try_new(v).map_err(serde::de::Error::custom)
    }
}

/// Analysis settings. Build with [`ExperimentSettings::try_new`] or take the defaults.
///
/// Serde shape: `{"alpha":0.05,"mixing_effect_size":0.1,"min_samples_per_arm":30}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SettingsWire")]
pub struct ExperimentSettings {
    alpha: Alpha,
    mixing_effect_size: f64,
    min_samples_per_arm: u64,
}

#[derive(Deserialize)]
#[serde(default)]
struct SettingsWire {
    alpha: f64,
    mixing_effect_size: f64,
    min_samples_per_arm: u64,
}

impl Default for SettingsWire {
    fn default() -> Self {
        let d = ExperimentSettings::default();
        SettingsWire {
            alpha: d.alpha.get(),
            mixing_effect_size: d.mixing_effect_size,
            min_samples_per_arm: d.min_samples_per_arm,
        }
    }
}

impl TryFrom<SettingsWire> for ExperimentSettings {
    type Error = PolicyError;
    fn try_from(w: SettingsWire) -> Result<Self, Self::Error> {
        ExperimentSettings::try_new(w.alpha, w.mixing_effect_size, w.min_samples_per_arm)
    }
}

/// Smallest and largest standardised effect the mixture may be tuned for.
const EFFECT_SIZE_RANGE: (f64, f64) = (0.001, 10.0);

impl Default for ExperimentSettings {
    fn default() -> Self {
        ExperimentSettings {
            alpha: Alpha::FIVE_PERCENT,
            mixing_effect_size: 0.1,
            min_samples_per_arm: 30,
        }
    }
}

impl ExperimentSettings {
    /// - `alpha` in (0, 0.5);
    /// - `mixing_effect_size`: the standard deviation τ/σ of the mSPRT's normal mixing
    ///   distribution, in units of the per-request standard deviation (a standardised effect,
    ///   like Cohen's d), in [0.001, 10]. The test is most sensitive to effects of about this
    ///   size and still detects others, more slowly (Johari et al. 2022 on choosing the mixing distribution);
    /// - `min_samples_per_arm` ≥ 2.
    pub fn try_new(
        alpha: f64,
        mixing_effect_size: f64,
        min_samples_per_arm: u64,
    ) -> Result<ExperimentSettings, PolicyError> {
        let alpha = Alpha::try_new(alpha)?;
        Bounds::closed(EFFECT_SIZE_RANGE.0, EFFECT_SIZE_RANGE.1)
            .check("mixing_effect_size", mixing_effect_size)?;
        check_min("min_samples_per_arm", min_samples_per_arm, 2)?;
        Ok(ExperimentSettings {
            alpha,
            mixing_effect_size,
            min_samples_per_arm,
        })
    }

    pub fn alpha(&self) -> Alpha {
        self.alpha
    }

    pub fn mixing_effect_size(&self) -> f64 {
        self.mixing_effect_size
    }

    pub fn min_samples_per_arm(&self) -> u64 {
        self.min_samples_per_arm
    }
}
