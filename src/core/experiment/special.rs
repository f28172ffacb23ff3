//! Special functions behind Student's t: ln B(a, b) and the regularised incomplete beta
//! function I_x(a, b).
//!
//! Why hand-written: the same reason as [`crate::core::stats`] (one small function is not worth
//! a statistics crate in the wasm bundle). The continued fraction is the modified-Lentz
//! evaluation of Numerical Recipes §6.4; ln B uses Stirling's series for large arguments the
//! way R's `lbeta` does, because `lnΓ(a+b) − lnΓ(a) − lnΓ(b)` loses about `log10(lnΓ(a))`
//! digits when a Welch test has tens of thousands of degrees of freedom. Checked against
//! `scipy.special.betainc` / `betaln` in `tests/experiment_stats.rs`.

use crate::core::stats::ln_gamma;

/// ln √(2π).
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// The remainder of Stirling's series, lnΓ(x) − [(x − ½)ln x − x + ln √(2π)], for x ≥ 10
/// (R's `lgammacor`). Truncated after the x⁻¹³ term: the next one is below 4e-17 at x = 10.
fn stirling_remainder(x: f64) -> f64 {
    // Bernoulli-number coefficients B₂ₖ / (2k(2k−1)).
    const C: [f64; 7] = [
        1.0 / 12.0,
        -1.0 / 360.0,
        1.0 / 1260.0,
        -1.0 / 1680.0,
        1.0 / 1188.0,
        -691.0 / 360_360.0,
        1.0 / 156.0,
    ];
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let mut acc = 0.0;
    for c in C.iter().rev() {
        acc = acc * inv2 + c;
    }
    acc * inv
}

/// ln B(a, b) = lnΓ(a) + lnΓ(b) − lnΓ(a + b), for a, b > 0 (NaN otherwise).
pub fn ln_beta(a: f64, b: f64) -> f64 {
    if !(a > 0.0 && b > 0.0) {
        return f64::NAN;
    }
    let (p, q) = if a < b { (a, b) } else { (b, a) };
    if p >= 10.0 {
        let corr = stirling_remainder(p) + stirling_remainder(q) - stirling_remainder(p + q);
        let r = p / (p + q);
        -0.5 * q.ln() + LN_SQRT_2PI + corr + (p - 0.5) * r.ln() + q * (-r).ln_1p()
    } else if q >= 10.0 {
        let corr = stirling_remainder(q) - stirling_remainder(p + q);
        ln_gamma(p) + corr + p - p * (p + q).ln() + (q - 0.5) * (-p / (p + q)).ln_1p()
    } else {
        ln_gamma(p) + ln_gamma(q) - ln_gamma(p + q)
    }
}

/// Continued fraction for I_x(a, b) (NR §6.4, modified Lentz), given y = 1 − x too. Converges
/// quickly for x < (a + 1) / (a + b + 2), in O(√max(a, b)) terms.
fn beta_continued_fraction(a: f64, b: f64, x: f64, y: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-16;
    const MAX_TERMS: u32 = 100_000;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let clamp = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut c = 1.0;
    // 1 − (a+b)x/(a+1) = (1 − b + (a+b)y)/(a+1): the second form has no cancellation when
    // b ≤ 1 (Student's t has b = ½ and x near 1 for large ν).
    let first = if b <= 1.0 {
        (1.0 - b + qab * y) / qap
    } else {
        1.0 - qab * x / qap
    };
    let mut d = 1.0 / clamp(first);
    let mut h = d;
    for m in 1..=MAX_TERMS {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / clamp(1.0 + aa * d);
        c = clamp(1.0 + aa / c);
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / clamp(1.0 + aa * d);
        c = clamp(1.0 + aa / c);
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// The regularised incomplete beta function I_x(a, b), for a, b > 0 and x in [0, 1].
pub fn beta_inc(a: f64, b: f64, x: f64) -> f64 {
    beta_inc_xy(a, b, x, 1.0 - x)
}

/// I_x(a, b) given both `x` and `y = 1 − x`, so that callers who know `y` more precisely than
/// `1 − x` (Student's t: `y = t²/(ν + t²)`) keep that precision. NaN outside the domain.
pub fn beta_inc_xy(a: f64, b: f64, x: f64, y: f64) -> f64 {
    let valid = a > 0.0
        && b > 0.0
        && a.is_finite()
        && b.is_finite()
        && (0.0..=1.0).contains(&x)
        && (0.0..=1.0).contains(&y);
    if !valid {
        return f64::NAN;
    }
    if x == 0.0 {
        return 0.0;
    }
    if y == 0.0 {
        return 1.0;
    }
    // ln of the prefactor xᵃ yᵇ / B(a, b), each log taken from the more precise side.
    let ln_x = if x > 0.5 { (-y).ln_1p() } else { x.ln() };
    let ln_y = if y > 0.5 { (-x).ln_1p() } else { y.ln() };
    let ln_front = a * ln_x + b * ln_y - ln_beta(a, b);
    if x < (a + 1.0) / (a + b + 2.0) {
        (ln_front.exp() * beta_continued_fraction(a, b, x, y) / a).clamp(0.0, 1.0)
    } else {
        (1.0 - ln_front.exp() * beta_continued_fraction(b, a, y, x) / b).clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_forms() {
        // I_x(1, 1) = x; I_x(a, 1) = xᵃ; I_x(1, b) = 1 − (1 − x)ᵇ.
        for &x in &[0.0, 0.1, 0.37, 0.5, 0.9, 1.0] {
            assert!((beta_inc(1.0, 1.0, x) - x).abs() < 1e-15);
            assert!((beta_inc(3.5, 1.0, x) - x.powf(3.5)).abs() < 1e-14);
            assert!((beta_inc(1.0, 2.5, x) - (1.0 - (1.0 - x).powf(2.5))).abs() < 1e-14);
        }
        // B(½, ½) = π.
        assert!((ln_beta(0.5, 0.5) - std::f64::consts::PI.ln()).abs() < 1e-14);
        assert!(beta_inc(-1.0, 1.0, 0.5).is_nan());
        assert!(beta_inc(1.0, 1.0, 1.5).is_nan());
    }

    #[test]
    fn ln_beta_branches_meet() {
        // Each branch against the plain lnΓ sum where that is still accurate.
        for &(a, b) in &[
            (10.0, 10.0),
            (9.99, 10.01),
            (0.5, 12.0),
            (3.0, 40.0),
            (25.0, 60.0),
        ] {
            let plain = ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
            assert!((ln_beta(a, b) - plain).abs() < 1e-12, "{a} {b}");
        }
    }
}
