//! The standard normal distribution: CDF, upper tail and quantile.
//!
//! Why this way: Φ(x) = ½·erfc(−x/√2) and erfc(z) = Q(½, z²) for z ≥ 0, so the tails come from
//! the regularised incomplete gamma already in [`crate::core::stats`], with full relative
//! precision far into the tails (the z-test's p-values and the mixture SPRT's confidence
//! bounds need both tails). The quantile starts from Abramowitz & Stegun 26.2.23 (error
//! < 4.5e-4) and polishes it with Halley steps on that CDF, which converge cubically; checked
//! against `scipy.stats.norm` in `tests/experiment_stats.rs`.

use crate::core::stats::gamma_q;

const SQRT_2PI: f64 = 2.506_628_274_631_000_2;

/// The standard normal density.
pub fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / SQRT_2PI
}

/// P(Z ≤ x).
pub fn normal_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let half_tail = 0.5 * gamma_q(0.5, 0.5 * x * x);
    if x < 0.0 {
        half_tail
    } else {
        1.0 - half_tail
    }
}

/// P(Z > x), precise in the upper tail.
pub fn normal_sf(x: f64) -> f64 {
    normal_cdf(-x)
}

/// Two-sided p-value of a z statistic: P(|Z| ≥ |z|).
pub fn normal_two_sided_p(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    gamma_q(0.5, 0.5 * z * z)
}

/// The p-quantile Φ⁻¹(p): −∞ at 0, +∞ at 1, NaN outside [0, 1].
pub fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p > 0.5 {
        // Φ⁻¹(p) = −Φ⁻¹(1 − p); 1 − p is exact for p ≥ ½ (Sterbenz).
        return -lower_quantile(1.0 - p);
    }
    lower_quantile(p)
}

/// Φ⁻¹(q) for 0 < q ≤ ½.
fn lower_quantile(q: f64) -> f64 {
    // Abramowitz & Stegun 26.2.23.
    let t = (-2.0 * q.ln()).sqrt();
    let mut x = -(t
        - (2.515_517 + 0.802_853 * t + 0.010_328 * t * t)
            / (1.0 + 1.432_788 * t + 0.189_269 * t * t + 0.001_308 * t * t * t));
    for _ in 0..4 {
        let density = normal_pdf(x);
        if density == 0.0 {
            break;
        }
        let u = (normal_cdf(x) - q) / density;
        let step = u / (1.0 + 0.5 * x * u);
        x -= step;
        if step.abs() <= 1e-15 * x.abs().max(1.0) {
            break;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetry_and_known_points() {
        assert_eq!(normal_cdf(0.0), 0.5);
        assert!((normal_cdf(1.959_963_984_540_054) - 0.975).abs() < 1e-15);
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-14);
        for &x in &[0.3, 1.0, 2.5, 6.0] {
            assert!((normal_cdf(x) + normal_cdf(-x) - 1.0).abs() < 1e-15);
            assert!((normal_quantile(normal_cdf(-x)) + x).abs() < 1e-12 * x.max(1.0));
        }
        assert!(normal_quantile(1.5).is_nan());
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert!(normal_cdf(f64::NAN).is_nan());
        assert_eq!(normal_cdf(f64::INFINITY), 1.0);
        assert_eq!(normal_cdf(f64::NEG_INFINITY), 0.0);
    }
}
