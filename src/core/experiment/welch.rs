//! Welch's unequal-variance t-test on the difference in means (treatment − control), with its
//! fixed-horizon confidence interval. Used for latency and answer quality.
//!
//! Why Welch and not Student's pooled t: the two arms are different services, so equal
//! variances are not a safe assumption (LightRAG's latency spread is not Perplexity's), and
//! Welch's test loses almost nothing when they happen to be equal. Degrees of freedom by the
//! Welch–Satterthwaite equation. Same numbers as `scipy.stats.ttest_ind_from_stats(…,
//! equal_var=False)` and statsmodels' `CompareMeans.tconfint_diff(usevar="unequal")`.
//!
//! Valid for **one** look at a sample size fixed in advance. The controller looks every
//! minute; it must use [`super::sequential`] for decisions. This test is reported for
//! reference and for offline analysis.

use super::insufficient::{require_finite, require_samples, Insufficient};
use super::moments::Moments;
use super::settings::Alpha;
use super::student_t::{student_t_quantile, student_t_two_sided_p};
use serde::Serialize;

/// The result of [`welch_t_test`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WelchTest {
    /// mean(treatment) − mean(control).
    pub difference: f64,
    /// √(s²_t/n_t + s²_c/n_c).
    pub std_error: f64,
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided.
    pub p_value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// The Welch statistic without its p-value and interval (the cheap part, for callers that
/// only need the statistic).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WelchStatistic {
    pub difference: f64,
    pub std_error: f64,
    pub t: f64,
    pub df: f64,
}

impl WelchStatistic {
    /// Two-sided p-value.
    pub fn p_value(&self) -> f64 {
        student_t_two_sided_p(self.t, self.df)
    }
}

/// The difference in means, its standard error, t and the Welch–Satterthwaite df. Needs two
/// values per arm and some variance in at least one arm.
pub fn welch_statistic(
    treatment: &Moments,
    control: &Moments,
) -> Result<WelchStatistic, Insufficient> {
    require_samples(2, treatment.n(), control.n())?;
    let (Some(mean_t), Some(mean_c), Some(var_t), Some(var_c)) = (
        treatment.mean(),
        control.mean(),
        treatment.variance(),
        control.variance(),
    ) else {
        return Err(Insufficient::NotFinite);
    };
    let (n_t, n_c) = (treatment.n() as f64, control.n() as f64);
    let (a, b) = (var_t / n_t, var_c / n_c);
    let se2 = a + b;
    if se2 <= 0.0 {
        return Err(Insufficient::NoVariance);
    }
    let std_error = se2.sqrt();
    let difference = mean_t - mean_c;
    let out = WelchStatistic {
        difference,
        std_error,
        t: difference / std_error,
        df: se2 * se2 / (a * a / (n_t - 1.0) + b * b / (n_c - 1.0)),
    };
    require_finite(&[out.difference, out.t, out.df])?;
    Ok(out)
}

/// Welch's two-sided t-test of equal means with a `1 − alpha` interval for the difference.
pub fn welch_t_test(
    treatment: &Moments,
    control: &Moments,
    alpha: Alpha,
) -> Result<WelchTest, Insufficient> {
    let s = welch_statistic(treatment, control)?;
    let half = student_t_quantile(1.0 - alpha.get() / 2.0, s.df) * s.std_error;
    let out = WelchTest {
        difference: s.difference,
        std_error: s.std_error,
        t: s.t,
        df: s.df,
        p_value: s.p_value(),
        ci_low: s.difference - half,
        ci_high: s.difference + half,
    };
    require_finite(&[out.p_value, out.ci_low, out.ci_high])?;
    Ok(out)
}
