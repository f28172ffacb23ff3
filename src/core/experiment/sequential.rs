//! The sequential test: a mixture sequential probability ratio test (mSPRT) with a normal
//! mixing distribution, giving always-valid p-values and confidence intervals.
//!
//! Why sequential at all: the controller reads the metrics every minute and acts on the first
//! significant result. A fixed-horizon test re-run at every look has a 5 % false-positive
//! rate *per look*, so over a day of looks it "finds" a difference in about half of all A/A
//! experiments (`tests/experiment_aa.rs` measures it). An always-valid p-value pₙ satisfies
//! P(∃ n: pₙ ≤ α) ≤ α under the null, so it may be read at any time, as often as one likes.
//!
//! Why the mSPRT and not another confidence sequence: it is the method built for exactly this
//! problem and deployed at scale (Johari, Koomen, Pekelis & Walsh, "Peeking at A/B tests",
//! KDD 2017; Johari, Pekelis & Walsh, "Always valid inference: continuous monitoring of A/B
//! tests", Operations Research 70(3), 2022, arXiv:1512.04922), it needs only the difference
//! and its variance — so one implementation serves means and proportions from the sufficient
//! statistics the windows already merge — and it has a closed form, so every minute's check
//! costs a few floating-point operations in the Worker. Its confidence interval is the set of
//! nulls it does not reject, so the interval and the p-value always agree. (A normal mixture
//! *is* a confidence sequence — Robbins' 1970 normal-mixture boundary, as in Howard et al.
//! 2021 — so this is also the "confidence sequence" option, with one tuning knob.)
//!
//! The statistic. Let Δ̂ be the estimated difference (treatment − control) and V its
//! variance; under the null Δ̂ ~ N(θ₀, V), under the alternative θ ~ H = N(θ₀, τ²). The
//! mixture likelihood ratio is the ratio of the two marginal densities of Δ̂:
//!
//! ```text
//! Λ = ∫ φ(Δ̂; θ, V) dH(θ) / φ(Δ̂; θ₀, V) = √(V / (V + τ²)) · exp( τ² (Δ̂ − θ₀)² / (2 V (V + τ²)) )
//! ```
//!
//! With n requests per arm and a common variance σ², V = 2σ²/n and this is Johari et al.'s
//! two-stream normal mSPRT, √(2σ²/(2σ² + nτ²)) · exp(n²τ²(Ȳₙ − X̄ₙ − θ₀)² / (4σ²(2σ² + nτ²))).
//! Written with V it also covers unequal arms (a 25/75 rollout): with a fixed split, Δ̂/V is
//! (asymptotically) a Brownian motion in information time 1/V and Λ is its normal-mixture
//! martingale, so Ville's inequality P(sup Λ ≥ 1/α) ≤ α holds. The p-value is min(1, 1/Λ)
//! and the `1 − α` interval is { θ₀ : Λ(θ₀) < 1/α }
//! = Δ̂ ± √( 2V(V + τ²)/τ² · (ln(1/α) + ½ ln((V + τ²)/V)) ). Taking the running minimum of the
//! p-value and the running intersection of the intervals over looks ([`super::memory`]) is
//! also valid and never less powerful.
//!
//! Plug-ins (the deployed mSPRT estimates variances from the data too): V from the sample
//! variances — Welch's s²_t/n_t + s²_c/n_c for means; for rates the larger of the pooled
//! (null) variance p̄(1 − p̄)(1/n_t + 1/n_c) and the unpooled (Wald) one, so that an arm
//! without a failure yet does not shrink V — and τ = `mixing_effect_size` × the pooled
//! per-request standard deviation, so the knob is a standardised effect size. The A/A
//! simulations (`tests/experiment_aa.rs`) check the result: false-positive rates at or
//! below α, also with skewed (log-normal) latencies and a 5 % split.
//!
//! Assumptions the caller must respect: the split is fixed over the data passed in (feed one
//! rollout stage's cumulative counts; a new stage starts a new sequence), and requests are
//! independent (cohorts are per user, so heavy users make intervals optimistic; the windows
//! keep no per-user data to correct for that).

use super::insufficient::{require_finite, require_samples, Insufficient};
use super::moments::{Moments, Proportion};
use super::settings::{Alpha, ExperimentSettings};
use serde::Serialize;

/// Gaussian evidence about a difference: the estimate Δ̂ and its variance V.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Evidence {
    pub estimate: f64,
    pub variance: f64,
    /// τ², the variance of the normal mixing distribution around the null.
    pub mixing_variance: f64,
}

/// ln Λ(θ₀): the log mixture likelihood ratio of `null` = θ₀ (see the module doc).
pub fn log_likelihood_ratio(e: &Evidence, null: f64) -> f64 {
    let (v, tau2) = (e.variance, e.mixing_variance);
    let d = e.estimate - null;
    -0.5 * (tau2 / v).ln_1p() + tau2 * d * d / (2.0 * v * (v + tau2))
}

/// The mSPRT's answer at one look.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SequentialTest {
    /// Δ̂ = treatment − control.
    pub difference: f64,
    /// V, the variance of Δ̂.
    pub variance: f64,
    /// τ².
    pub mixing_variance: f64,
    /// ln Λ for "no difference" (θ₀ = 0).
    pub log_likelihood_ratio: f64,
    /// Always-valid p-value at this look, min(1, 1/Λ).
    pub p_value: f64,
    /// Always-valid `1 − α` interval for the difference at this look.
    pub ci_low: f64,
    pub ci_high: f64,
    /// p ≤ α (equivalently, 0 is outside the interval).
    pub significant: bool,
}

/// The mSPRT of "no difference" at level `alpha` from Gaussian evidence.
pub fn mixture_sprt(e: &Evidence, alpha: Alpha) -> Result<SequentialTest, Insufficient> {
    require_finite(&[e.estimate, e.variance, e.mixing_variance])?;
    if e.variance <= 0.0 || e.mixing_variance <= 0.0 {
        return Err(Insufficient::NoVariance);
    }
    let (v, tau2) = (e.variance, e.mixing_variance);
    let llr = log_likelihood_ratio(e, 0.0);
    let p_value = (-llr).exp().min(1.0);
    let threshold = -alpha.get().ln();
    let half2 = 2.0 * v * (v + tau2) / tau2 * (threshold + 0.5 * (tau2 / v).ln_1p());
    let half = half2.sqrt();
    let out = SequentialTest {
        difference: e.estimate,
        variance: v,
        mixing_variance: tau2,
        log_likelihood_ratio: llr,
        p_value,
        ci_low: e.estimate - half,
        ci_high: e.estimate + half,
        significant: llr >= threshold,
    };
    require_finite(&[
        out.log_likelihood_ratio,
        out.p_value,
        out.ci_low,
        out.ci_high,
    ])?;
    Ok(out)
}

/// The evidence about mean(treatment) − mean(control), or why there is none yet.
pub fn means_evidence(
    treatment: &Moments,
    control: &Moments,
    settings: &ExperimentSettings,
) -> Result<Evidence, Insufficient> {
    require_samples(
        settings.min_samples_per_arm().max(2),
        treatment.n(),
        control.n(),
    )?;
    let (Some(mean_t), Some(mean_c), Some(var_t), Some(var_c)) = (
        treatment.mean(),
        control.mean(),
        treatment.variance(),
        control.variance(),
    ) else {
        return Err(Insufficient::NotFinite);
    };
    let (n_t, n_c) = (treatment.n() as f64, control.n() as f64);
    let variance = var_t / n_t + var_c / n_c;
    let pooled = (treatment.m2() + control.m2()) / (n_t + n_c - 2.0);
    let d = settings.mixing_effect_size();
    let e = Evidence {
        estimate: mean_t - mean_c,
        variance,
        mixing_variance: d * d * pooled,
    };
    require_finite(&[e.estimate, e.variance, e.mixing_variance])?;
    if variance <= 0.0 || pooled <= 0.0 {
        return Err(Insufficient::NoVariance);
    }
    Ok(e)
}

/// The evidence about rate(treatment) − rate(control), or why there is none yet.
pub fn proportions_evidence(
    treatment: &Proportion,
    control: &Proportion,
    settings: &ExperimentSettings,
) -> Result<Evidence, Insufficient> {
    require_samples(
        settings.min_samples_per_arm().max(1),
        treatment.n(),
        control.n(),
    )?;
    let (Some(p_t), Some(p_c)) = (treatment.rate(), control.rate()) else {
        return Err(Insufficient::NotFinite);
    };
    let (n_t, n_c) = (treatment.n() as f64, control.n() as f64);
    let p = (treatment.successes() + control.successes()) as f64 / (n_t + n_c);
    let per_request = p * (1.0 - p);
    if per_request <= 0.0 {
        return Err(Insufficient::NoVariance);
    }
    let pooled = per_request * (1.0 / n_t + 1.0 / n_c);
    let unpooled = p_t * (1.0 - p_t) / n_t + p_c * (1.0 - p_c) / n_c;
    let d = settings.mixing_effect_size();
    let e = Evidence {
        estimate: p_t - p_c,
        variance: pooled.max(unpooled),
        mixing_variance: d * d * per_request,
    };
    require_finite(&[e.estimate, e.variance, e.mixing_variance])?;
    Ok(e)
}

/// mSPRT of equal means (latency, quality).
pub fn sequential_means(
    treatment: &Moments,
    control: &Moments,
    settings: &ExperimentSettings,
) -> Result<SequentialTest, Insufficient> {
    mixture_sprt(
        &means_evidence(treatment, control, settings)?,
        settings.alpha(),
    )
}

/// mSPRT of equal rates (success rate).
pub fn sequential_proportions(
    treatment: &Proportion,
    control: &Proportion,
    settings: &ExperimentSettings,
) -> Result<SequentialTest, Insufficient> {
    mixture_sprt(
        &proportions_evidence(treatment, control, settings)?,
        settings.alpha(),
    )
}

/// What "how much longer?" is computed from: the arms so far, each arm's per-request
/// variance, and the effect to detect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Projection {
    pub treatment_n: u64,
    pub control_n: u64,
    pub treatment_variance: f64,
    pub control_variance: f64,
    pub mixing_variance: f64,
    /// The true difference assumed (e.g. τ, the effect the test is tuned for).
    pub effect: f64,
    pub alpha: Alpha,
}

/// How many more treatment-arm requests (control growing in its current proportion) until an
/// estimate equal to `effect` would be significant: `Some(0)` if it already would be, `None`
/// when the inputs are degenerate or the answer exceeds 10¹² requests.
pub fn additional_treatment_samples(p: &Projection) -> Option<u64> {
    let ok = [
        p.treatment_variance,
        p.control_variance,
        p.mixing_variance,
        p.effect,
    ]
    .iter()
    .all(|v| v.is_finite() && *v >= 0.0);
    if !ok || p.mixing_variance <= 0.0 || p.effect <= 0.0 || p.treatment_n == 0 || p.control_n == 0
    {
        return None;
    }
    let threshold = -p.alpha.get().ln();
    let crosses = |v: f64| {
        log_likelihood_ratio(
            &Evidence {
                estimate: p.effect,
                variance: v,
                mixing_variance: p.mixing_variance,
            },
            0.0,
        ) >= threshold
    };
    let ratio = p.control_n as f64 / p.treatment_n as f64;
    let variance_after = |k: f64| {
        p.treatment_variance / (p.treatment_n as f64 + k)
            + p.control_variance / (p.control_n as f64 + ratio * k)
    };
    let now = variance_after(0.0);
    if now.is_nan() || now <= 0.0 {
        return None;
    }
    if crosses(now) {
        return Some(0);
    }
    // {V : crosses(V)} is an interval (0, V*]: ln Λ falls as V grows up to its minimum and
    // stays below 0 < ln(1/α) beyond it. Bisect for V* in log space.
    let (mut lo, mut hi) = (now * 1e-30, now);
    if !crosses(lo) {
        return None;
    }
    for _ in 0..200 {
        let mid = (lo * hi).sqrt();
        if crosses(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let target = lo;
    // Smallest k with variance_after(k) ≤ target (variance_after falls with k).
    const CAP: f64 = 1e12;
    if variance_after(CAP) > target {
        return None;
    }
    let (mut k_lo, mut k_hi) = (0.0f64, 1.0f64);
    while variance_after(k_hi) > target {
        k_lo = k_hi;
        k_hi *= 2.0;
    }
    while k_hi - k_lo > 1.0 {
        let mid = ((k_lo + k_hi) / 2.0).floor();
        if variance_after(mid) > target {
            k_lo = mid;
        } else {
            k_hi = mid;
        }
    }
    Some(k_hi as u64)
}
