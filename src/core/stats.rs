//! Small, dependency-free statistics: χ² goodness-of-fit and its p-value.
//!
//! Why here and hand-written: the rollout controller's sample-ratio-mismatch gate (docs/architecture.md#rollout-controller)
//! and the uniformity/arm-size tests need the χ² upper tail, and pulling a statistics crate
//! into the wasm bundle for one function is not worth its size. The incomplete gamma function
//! follows the classic series / continued-fraction split (Numerical Recipes §6.2), accurate to
//! ~1e-12 relative, far beyond what a p < 0.001 threshold needs.

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx)
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + G + 0.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularised upper incomplete gamma Q(a, x) = Γ(a, x) / Γ(a), for a > 0, x ≥ 0.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if a.is_nan() || a <= 0.0 || !a.is_finite() || x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    let gln = ln_gamma(a);
    if x < a + 1.0 {
        // Series for P(a, x); Q = 1 - P.
        let mut ap = a;
        let mut sum = 1.0 / a;
        let mut del = sum;
        for _ in 0..10_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        let p = sum * (-x + a * x.ln() - gln).exp();
        (1.0 - p).clamp(0.0, 1.0)
    } else {
        // Lentz continued fraction for Q(a, x).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        ((-x + a * x.ln() - gln).exp() * h).clamp(0.0, 1.0)
    }
}

/// P(χ²_df ≥ x): the p-value of a χ² statistic with `df` degrees of freedom.
pub fn chi_square_p_value(x: f64, df: f64) -> f64 {
    gamma_q(df / 2.0, x / 2.0)
}

/// A χ² goodness-of-fit result.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ChiSquare {
    pub statistic: f64,
    pub df: f64,
    pub p_value: f64,
}

/// χ² goodness of fit of `observed` counts against expected `weights` (any positive scale;
/// they are normalised). Cells whose weight is zero are skipped. `None` when fewer than two
/// usable cells or no observations.
pub fn chi_square_fit(observed: &[u64], weights: &[f64]) -> Option<ChiSquare> {
    if observed.len() != weights.len() {
        return None;
    }
    // Summed as floats: counts aggregated from KV can reach `u64::MAX`, and two of them would
    // overflow a `u64` sum (found by `make fuzz`, target `kv_rollout_state`).
    let total: f64 = observed.iter().map(|&o| o as f64).sum();
    let wsum: f64 = weights.iter().filter(|w| w.is_finite() && **w > 0.0).sum();
    if total == 0.0 || wsum.is_nan() || wsum <= 0.0 {
        return None;
    }
    let mut stat = 0.0;
    let mut cells = 0usize;
    for (&o, &w) in observed.iter().zip(weights) {
        if !(w.is_finite() && w > 0.0) {
            continue;
        }
        let e = total * w / wsum;
        let d = o as f64 - e;
        stat += d * d / e;
        cells += 1;
    }
    if cells < 2 {
        return None;
    }
    let df = (cells - 1) as f64;
    Some(ChiSquare {
        statistic: stat,
        df,
        p_value: chi_square_p_value(stat, df),
    })
}

/// χ² test that `observed` counts are uniform over their cells.
pub fn chi_square_uniform(observed: &[u64]) -> Option<ChiSquare> {
    chi_square_fit(observed, &vec![1.0; observed.len()])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `make fuzz` (target `kv_rollout_state`): arm counts summing past `u64::MAX`
    /// overflowed (a panic in debug builds, a wrapped total and a wrong p-value in release).
    #[test]
    fn counts_near_u64_max_do_not_overflow() {
        let x = chi_square_fit(&[u64::MAX, u64::MAX / 2], &[0.5, 0.5]);
        let x = x.unwrap_or_else(|| panic!("no result"));
        assert!(x.statistic > 0.0 && x.p_value < 1e-9, "{x:?}");
        let even = chi_square_fit(&[u64::MAX, u64::MAX], &[1.0, 1.0]);
        assert_eq!(even.map(|x| x.statistic), Some(0.0));
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1e-300)
    }

    #[test]
    fn known_quantiles() {
        // Reference values from standard χ² tables.
        assert!(close(
            chi_square_p_value(3.841_458_820_694_124, 1.0),
            0.05,
            1e-9
        ));
        assert!(close(
            chi_square_p_value(10.827_566_170_662_733, 1.0),
            0.001,
            1e-8
        ));
        assert!(close(
            chi_square_p_value(123.225_221_453_361_81, 99.0),
            0.05,
            1e-8
        ));
        assert!(close(
            chi_square_p_value(148.230_359_165_101_73, 99.0),
            0.001,
            1e-7
        ));
        assert!(close(chi_square_p_value(2.0, 2.0), (-1.0f64).exp(), 1e-12));
        assert_eq!(chi_square_p_value(0.0, 5.0), 1.0);
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut f = 1.0f64;
        for n in 1..20 {
            f *= n as f64;
            assert!(close(ln_gamma(n as f64 + 1.0), f.ln(), 1e-12), "n={n}");
        }
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
    }

    #[test]
    fn fit_detects_mismatch() {
        let fair = chi_square_fit(&[5_030, 4_970], &[1.0, 1.0]).unwrap();
        assert!(fair.p_value > 0.5);
        let skew = chi_square_fit(&[5_300, 4_700], &[1.0, 1.0]).unwrap();
        assert!(skew.p_value < 1e-6);
        let weighted = chi_square_fit(&[2_500, 7_500], &[25.0, 75.0]).unwrap();
        assert!(close(weighted.statistic, 0.0, 1e-12) || weighted.statistic < 1e-9);
        assert_eq!(chi_square_fit(&[0, 0], &[1.0, 1.0]), None);
        assert_eq!(chi_square_fit(&[10], &[1.0]), None);
    }
}
