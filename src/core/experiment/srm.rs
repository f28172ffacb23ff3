//! Sample-ratio mismatch: are the arms the size the rollout says they should be?
//!
//! Why it gates everything else: if a 25 % rollout yields 31 % treatment requests, something
//! other than the coin decides who is where (a cohort that bypasses routing, a fallback
//! counted in the wrong arm, an isolate that did not flush), and every comparison is biased in
//! an unknown direction. The check is Pearson's χ² goodness of fit of the two arm counts
//! against the expected split (df = 1, [`crate::core::stats::chi_square_fit`]; same as
//! `scipy.stats.chisquare`), flagged at p < 0.001 — the threshold the experimentation
//! literature uses (Fabijan et al., KDD 2019) because SRM is checked on every experiment and
//! every look, so it must almost never fire by chance.

use super::insufficient::{require_finite, Insufficient};
use crate::core::stats::chi_square_fit;
use serde::Serialize;

/// p-values below this flag a mismatch.
pub const SRM_P_THRESHOLD: f64 = 0.001;

/// The result of [`sample_ratio_mismatch`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SampleRatio {
    pub treatment: u64,
    pub control: u64,
    pub expected_treatment_share: f64,
    pub observed_treatment_share: f64,
    pub chi_square: f64,
    pub p_value: f64,
    /// `p_value < SRM_P_THRESHOLD`: hold, the arms are not comparable.
    pub mismatch: bool,
}

/// χ² test of the arm counts against `expected_treatment_share` (the rollout percentage / 100).
pub fn sample_ratio_mismatch(
    treatment: u64,
    control: u64,
    expected_treatment_share: f64,
) -> Result<SampleRatio, Insufficient> {
    require_finite(&[expected_treatment_share])?;
    if !(expected_treatment_share > 0.0 && expected_treatment_share < 1.0) {
        return Err(Insufficient::NoExpectedSplit {
            expected_treatment_share,
        });
    }
    let total = treatment.saturating_add(control);
    if total == 0 {
        return Err(Insufficient::TooFewSamples {
            needed: 1,
            treatment,
            control,
        });
    }
    let fit = chi_square_fit(
        &[treatment, control],
        &[expected_treatment_share, 1.0 - expected_treatment_share],
    )
    .ok_or(Insufficient::NotFinite)?;
    require_finite(&[fit.statistic, fit.p_value])?;
    Ok(SampleRatio {
        treatment,
        control,
        expected_treatment_share,
        observed_treatment_share: treatment as f64 / total as f64,
        chi_square: fit.statistic,
        p_value: fit.p_value,
        mismatch: fit.p_value < SRM_P_THRESHOLD,
    })
}
