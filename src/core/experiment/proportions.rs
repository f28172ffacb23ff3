//! The two-proportion z-test on the difference in rates (treatment − control), with its Wald
//! confidence interval. Used for the success rate (and any other per-request yes/no rate).
//!
//! Why these two variances: the test asks "could both arms share one rate?", so its standard
//! error uses the pooled rate p̄ (the null's own variance; statsmodels' `proportions_ztest`
//! default); the interval describes the difference wherever it is, so it uses each arm's own
//! rate (Wald; statsmodels' `confint_proportions_2indep(method="wald")`).
//!
//! Valid for **one** look at a sample size fixed in advance; decisions under continuous
//! monitoring use [`super::sequential`].

use super::insufficient::{require_finite, require_samples, Insufficient};
use super::moments::Proportion;
use super::normal::{normal_quantile, normal_two_sided_p};
use super::settings::Alpha;
use serde::Serialize;

/// The result of [`two_proportion_z_test`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProportionTest {
    /// rate(treatment) − rate(control).
    pub difference: f64,
    /// √(p̄(1 − p̄)(1/n_t + 1/n_c)), the standard error under "no difference".
    pub pooled_std_error: f64,
    pub z: f64,
    /// Two-sided.
    pub p_value: f64,
    /// Wald interval: difference ± z_{1−α/2} √(p_t(1−p_t)/n_t + p_c(1−p_c)/n_c).
    pub ci_low: f64,
    pub ci_high: f64,
}

/// The two-sided pooled z-test of equal rates with a `1 − alpha` Wald interval. Needs one
/// trial per arm, and at least one success and one failure over both arms.
pub fn two_proportion_z_test(
    treatment: &Proportion,
    control: &Proportion,
    alpha: Alpha,
) -> Result<ProportionTest, Insufficient> {
    require_samples(1, treatment.n(), control.n())?;
    let (Some(p_t), Some(p_c)) = (treatment.rate(), control.rate()) else {
        return Err(Insufficient::NotFinite);
    };
    let (n_t, n_c) = (treatment.n() as f64, control.n() as f64);
    let pooled = (treatment.successes() + control.successes()) as f64 / (n_t + n_c);
    let pooled_var = pooled * (1.0 - pooled) * (1.0 / n_t + 1.0 / n_c);
    if pooled_var <= 0.0 {
        return Err(Insufficient::NoVariance);
    }
    let difference = p_t - p_c;
    let pooled_std_error = pooled_var.sqrt();
    let z = difference / pooled_std_error;
    let wald_se = (p_t * (1.0 - p_t) / n_t + p_c * (1.0 - p_c) / n_c).sqrt();
    let half = normal_quantile(1.0 - alpha.get() / 2.0) * wald_se;
    let out = ProportionTest {
        difference,
        pooled_std_error,
        z,
        p_value: normal_two_sided_p(z),
        ci_low: difference - half,
        ci_high: difference + half,
    };
    require_finite(&[out.z, out.p_value, out.ci_low, out.ci_high])?;
    Ok(out)
}
