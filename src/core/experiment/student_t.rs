//! Student's t distribution with real (Welch–Satterthwaite) degrees of freedom ν > 0.
//!
//! Why this way: P(|T| > t) = I_{ν/(ν+t²)}(ν/2, ½), the textbook identity (Abramowitz & Stegun
//! 26.7.1 / NR §6.4), evaluated with [`beta_inc_xy`] so that both x and 1 − x keep their
//! precision. The quantile is found by a safeguarded Newton iteration on ln P(T > t) from the
//! normal quantile, bracketed so that it cannot diverge in the heavy tails of small ν. Infinite
//! ν is the normal distribution. Checked against `scipy.stats.t` in `tests/experiment_stats.rs`.

use super::normal::{normal_pdf, normal_quantile, normal_sf};
use super::special::{beta_inc_xy, ln_beta};

fn valid_df(df: f64) -> bool {
    df > 0.0 && !df.is_nan()
}

/// P(T > |t|) (one tail), without cancellation for large or small |t|.
fn one_tail(t: f64, df: f64) -> f64 {
    let tt = t * t;
    if tt.is_infinite() {
        return 0.0;
    }
    let x = df / (df + tt);
    let y = tt / (df + tt);
    // I_x(ν/2, ½) is the two-sided tail; `beta_inc_xy` evaluates it directly when it is small
    // and through its complement only when it is near 1, so small tails keep their precision.
    0.5 * beta_inc_xy(0.5 * df, 0.5, x, y)
}

/// P(T > t).
pub fn student_t_sf(t: f64, df: f64) -> f64 {
    if t.is_nan() || !valid_df(df) {
        return f64::NAN;
    }
    if df.is_infinite() {
        return normal_sf(t);
    }
    let tail = one_tail(t, df);
    if t > 0.0 {
        tail
    } else {
        1.0 - tail
    }
}

/// P(T ≤ t).
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    student_t_sf(-t, df)
}

/// Two-sided p-value P(|T| ≥ |t|).
pub fn student_t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() || !valid_df(df) {
        return f64::NAN;
    }
    if df.is_infinite() {
        return 2.0 * normal_sf(t.abs());
    }
    (2.0 * one_tail(t, df)).min(1.0)
}

/// The density.
pub fn student_t_pdf(t: f64, df: f64) -> f64 {
    if t.is_nan() || !valid_df(df) {
        return f64::NAN;
    }
    if df.is_infinite() {
        return normal_pdf(t);
    }
    (-0.5 * df.ln() - ln_beta(0.5 * df, 0.5) - 0.5 * (df + 1.0) * (t * t / df).ln_1p()).exp()
}

/// The p-quantile: −∞ at 0, +∞ at 1, NaN outside [0, 1] or for ν ≤ 0.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || !valid_df(df) {
        return f64::NAN;
    }
    if df.is_infinite() {
        return normal_quantile(p);
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p == 0.5 {
        return 0.0;
    }
    if p < 0.5 {
        -upper_quantile(p, df)
    } else {
        // 1 − p is exact for p ≥ ½.
        upper_quantile(1.0 - p, df)
    }
}

/// The t ≥ 0 with P(T > t) = q, for 0 < q < ½.
fn upper_quantile(q: f64, df: f64) -> f64 {
    let target = q.ln();
    // Bracket: P(T > lo) > q ≥ P(T > hi).
    let mut lo = 0.0f64;
    let mut hi = (-normal_quantile(q)).max(1.0);
    let mut guard = 0;
    while one_tail(hi, df) > q && guard < 2_000 {
        lo = hi;
        hi *= 2.0;
        guard += 1;
    }
    let mut t = (-normal_quantile(q)).clamp(lo, hi);
    for _ in 0..200 {
        let tail = one_tail(t, df);
        if tail > q {
            lo = t;
        } else {
            hi = t;
        }
        // Newton on g(t) = ln P(T > t) − ln q, g'(t) = −pdf / tail.
        let density = student_t_pdf(t, df);
        let newton = if tail > 0.0 && density > 0.0 {
            t + (tail.ln() - target) * tail / density
        } else {
            f64::NAN
        };
        let next = if newton.is_finite() && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        if (next - t).abs() <= 4.0 * f64::EPSILON * t.abs().max(1e-300) {
            return next;
        }
        t = next;
        if hi - lo <= 4.0 * f64::EPSILON * hi {
            break;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cauchy_and_two_df_closed_forms() {
        // ν = 1 is Cauchy: F(t) = ½ + atan(t)/π; ν = 2: F(t) = ½ + t / (2√(2 + t²)).
        for &t in &[-30.0, -2.0, -0.4, 0.0, 0.7, 3.0, 100.0] {
            let cauchy = 0.5 + f64::atan(t) / std::f64::consts::PI;
            assert!((student_t_cdf(t, 1.0) - cauchy).abs() < 1e-14, "t={t}");
            let two = 0.5 + t / (2.0 * (2.0 + t * t).sqrt());
            assert!((student_t_cdf(t, 2.0) - two).abs() < 1e-14, "t={t}");
        }
        let q = student_t_quantile(0.975, 1.0);
        assert!((q - (std::f64::consts::PI * 0.475).tan()).abs() < 1e-11 * q);
    }

    #[test]
    fn quantile_inverts_cdf() {
        for &df in &[0.7, 1.0, 3.3, 10.0, 57.2, 1_000.0, 250_000.0] {
            for &p in &[1e-9, 0.001, 0.025, 0.3, 0.5, 0.8, 0.975, 0.999_999] {
                let t = student_t_quantile(p, df);
                let back = student_t_cdf(t, df);
                let tol = 1e-10 * p.min(1.0 - p) + 4.0 * f64::EPSILON;
                assert!((back - p).abs() <= tol, "{df} {p} {back}");
            }
        }
        assert!(student_t_quantile(0.5, 0.0).is_nan());
        assert!(student_t_sf(1.0, f64::NAN).is_nan());
    }
}
