//! The experiment statistics against reference values from independent packages (scipy,
//! statsmodels, mpmath), pinned in `tests/reference/experiment.json` by
//! `scripts/reference/experiment_reference.py` (package versions recorded in the file), plus
//! the defining properties of the mSPRT that no package implements.

use cmo_edge_router::core::experiment::normal::{normal_cdf, normal_quantile, normal_sf};
use cmo_edge_router::core::experiment::sequential::{
    additional_treatment_samples, log_likelihood_ratio, means_evidence, proportions_evidence,
    Projection,
};
use cmo_edge_router::core::experiment::special::{beta_inc, ln_beta};
use cmo_edge_router::core::experiment::student_t::{
    student_t_cdf, student_t_pdf, student_t_quantile, student_t_sf,
};
use cmo_edge_router::core::experiment::*;
use proptest::prelude::*;
use serde_json::Value;

fn reference() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/experiment.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn int(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// |got − want| ≤ rtol·|want| + atol.
#[track_caller]
fn close(got: f64, want: f64, rtol: f64, atol: f64, what: &str) {
    let ok = (got - want).abs() <= rtol * want.abs() + atol || (got == want);
    assert!(
        ok,
        "{what}: got {got:e}, want {want:e} (rel err {:e})",
        ((got - want) / want).abs()
    );
}

fn moments(v: &Value) -> Moments {
    Moments::try_new(int(v, "n"), num(v, "mean"), num(v, "m2")).unwrap()
}

fn proportion(v: &Value) -> Proportion {
    Proportion::try_new(int(v, "successes"), int(v, "n")).unwrap()
}

#[test]
fn reference_file_records_its_provenance() {
    let r = reference();
    for pkg in ["python", "numpy", "scipy", "statsmodels", "mpmath"] {
        assert!(r["versions"][pkg].is_string(), "{pkg} version missing");
    }
    assert_eq!(
        r["generated_by"],
        "scripts/reference/experiment_reference.py"
    );
}

#[test]
fn normal_matches_scipy() {
    let r = reference();
    for c in r["normal"]["cdf"].as_array().unwrap() {
        let x = num(c, "x");
        close(normal_cdf(x), num(c, "cdf"), 1e-13, 0.0, &format!("Φ({x})"));
        close(
            normal_sf(x),
            num(c, "sf"),
            1e-13,
            0.0,
            &format!("1 − Φ({x})"),
        );
    }
    for c in r["normal"]["quantile"].as_array().unwrap() {
        let p = num(c, "p");
        let want = num(c, "quantile");
        close(normal_quantile(p), want, 1e-13, 1e-15, &format!("Φ⁻¹({p})"));
    }
}

#[test]
fn student_t_matches_scipy() {
    let r = reference();
    for c in r["student_t"]["cdf"].as_array().unwrap() {
        let (t, df) = (num(c, "t"), num(c, "df"));
        let what = format!("t={t} df={df}");
        close(student_t_cdf(t, df), num(c, "cdf"), 1e-11, 0.0, &what);
        close(student_t_sf(t, df), num(c, "sf"), 1e-11, 0.0, &what);
        close(student_t_pdf(t, df), num(c, "pdf"), 1e-11, 0.0, &what);
    }
    for c in r["student_t"]["quantile"].as_array().unwrap() {
        let (p, df) = (num(c, "p"), num(c, "df"));
        close(
            student_t_quantile(p, df),
            num(c, "quantile"),
            1e-11,
            1e-15,
            &format!("t⁻¹({p}; {df})"),
        );
    }
}

#[test]
fn incomplete_beta_matches_mpmath() {
    let r = reference();
    for c in r["beta"]["incomplete"].as_array().unwrap() {
        let (a, b, x) = (num(c, "a"), num(c, "b"), num(c, "x"));
        close(
            beta_inc(a, b, x),
            num(c, "value"),
            1e-11,
            1e-300,
            &format!("I_{x}({a}, {b})"),
        );
    }
    for c in r["beta"]["ln_beta"].as_array().unwrap() {
        let (a, b) = (num(c, "a"), num(c, "b"));
        close(
            ln_beta(a, b),
            num(c, "value"),
            1e-14,
            1e-14,
            &format!("ln B({a}, {b})"),
        );
    }
}

#[test]
fn welch_matches_scipy_and_statsmodels() {
    let r = reference();
    for c in r["welch"].as_array().unwrap() {
        let label = c["label"].as_str().unwrap();
        let w = welch_t_test(
            &moments(&c["treatment"]),
            &moments(&c["control"]),
            Alpha::FIVE_PERCENT,
        )
        .unwrap();
        let scale = num(c, "ci_high") - num(c, "ci_low");
        close(w.difference, num(c, "difference"), 1e-12, 1e-12, label);
        close(w.t, num(c, "t"), 1e-10, 0.0, label);
        close(w.df, num(c, "df"), 1e-10, 0.0, label);
        close(w.p_value, num(c, "p_value"), 1e-9, 1e-15, label);
        close(w.ci_low, num(c, "ci_low"), 0.0, 1e-10 * scale, label);
        close(w.ci_high, num(c, "ci_high"), 0.0, 1e-10 * scale, label);
    }
}

#[test]
fn two_proportion_z_matches_statsmodels() {
    let r = reference();
    for c in r["proportions"].as_array().unwrap() {
        let label = c["label"].as_str().unwrap();
        let z = two_proportion_z_test(
            &proportion(&c["treatment"]),
            &proportion(&c["control"]),
            Alpha::FIVE_PERCENT,
        )
        .unwrap();
        close(z.difference, num(c, "difference"), 1e-14, 1e-15, label);
        close(z.z, num(c, "z"), 1e-12, 0.0, label);
        close(z.p_value, num(c, "p_value"), 1e-11, 1e-300, label);
        close(z.ci_low, num(c, "ci_low"), 1e-12, 1e-14, label);
        close(z.ci_high, num(c, "ci_high"), 1e-12, 1e-14, label);
    }
}

#[test]
fn srm_matches_scipy_chisquare() {
    let r = reference();
    for c in r["srm"].as_array().unwrap() {
        let (t, ctl, share) = (int(c, "treatment"), int(c, "control"), num(c, "share"));
        let s = sample_ratio_mismatch(t, ctl, share).unwrap();
        let what = format!("{t}/{ctl} vs {share}");
        close(s.chi_square, num(c, "chi_square"), 1e-12, 1e-12, &what);
        close(s.p_value, num(c, "p_value"), 1e-10, 1e-300, &what);
        assert_eq!(s.mismatch, c["mismatch"].as_bool().unwrap(), "{what}");
    }
}

fn check_msprt(c: &Value, test: &SequentialTest, label: &str) {
    close(
        test.log_likelihood_ratio,
        num(c, "log_likelihood_ratio"),
        1e-11,
        1e-13,
        label,
    );
    close(test.p_value, num(c, "p_value"), 1e-11, 1e-300, label);
    let width = num(c, "ci_high") - num(c, "ci_low");
    close(test.ci_low, num(c, "ci_low"), 0.0, 1e-12 * width, label);
    close(test.ci_high, num(c, "ci_high"), 0.0, 1e-12 * width, label);
    assert_eq!(
        test.significant,
        c["significant"].as_bool().unwrap(),
        "{label}"
    );
}

#[test]
fn msprt_matches_closed_form_and_integrated_mixture() {
    let r = reference();
    let m = &r["msprt"];
    for c in m["direct"].as_array().unwrap() {
        let e = Evidence {
            estimate: num(c, "estimate"),
            variance: num(c, "variance"),
            mixing_variance: num(c, "mixing_variance"),
        };
        let label = c["label"].as_str().unwrap();
        check_msprt(c, &mixture_sprt(&e, Alpha::FIVE_PERCENT).unwrap(), label);
    }
    let settings = ExperimentSettings::try_new(0.05, num(m, "mixing_effect_size"), 30).unwrap();
    for c in m["means"].as_array().unwrap() {
        let label = c["label"].as_str().unwrap();
        let (t, ctl) = (moments(&c["treatment"]), moments(&c["control"]));
        let e = means_evidence(&t, &ctl, &settings).unwrap();
        close(e.variance, num(c, "variance"), 1e-12, 0.0, label);
        close(
            e.mixing_variance,
            num(c, "mixing_variance"),
            1e-12,
            0.0,
            label,
        );
        check_msprt(c, &sequential_means(&t, &ctl, &settings).unwrap(), label);
    }
    for c in m["proportions"].as_array().unwrap() {
        let label = c["label"].as_str().unwrap();
        let (t, ctl) = (proportion(&c["treatment"]), proportion(&c["control"]));
        let e = proportions_evidence(&t, &ctl, &settings).unwrap();
        close(e.variance, num(c, "variance"), 1e-12, 0.0, label);
        check_msprt(
            c,
            &sequential_proportions(&t, &ctl, &settings).unwrap(),
            label,
        );
    }
}

/// The defining property: under the null, Λ is a nonnegative martingale with mean 1 (that is
/// what makes Ville's inequality P(sup Λ ≥ 1/α) ≤ α apply). For Δ̂ ~ N(0, V), E[Λ] = 1 for
/// every V and τ²; checked here by numerical integration over Δ̂ (Simpson, ±40 sd).
#[test]
fn msprt_likelihood_ratio_has_mean_one_under_the_null() {
    for &(v, tau2) in &[(1.0f64, 1.0f64), (1e-4, 1e-3), (2.0, 0.01), (1e-6, 5.0)] {
        let sd = (v + tau2).sqrt().max(v.sqrt());
        let (lo, hi, steps) = (-40.0 * sd, 40.0 * sd, 200_000);
        let h = (hi - lo) / steps as f64;
        let density = |x: f64| {
            let lr = log_likelihood_ratio(
                &Evidence {
                    estimate: x,
                    variance: v,
                    mixing_variance: tau2,
                },
                0.0,
            );
            (lr - x * x / (2.0 * v)).exp() / (2.0 * std::f64::consts::PI * v).sqrt()
        };
        let mut sum = density(lo) + density(hi);
        for i in 1..steps {
            let x = lo + i as f64 * h;
            sum += if i % 2 == 1 { 4.0 } else { 2.0 } * density(x);
        }
        close(
            sum * h / 3.0,
            1.0,
            1e-9,
            0.0,
            &format!("E[Λ] V={v} τ²={tau2}"),
        );
    }
}

/// A real effect drives Λ to infinity: with the difference fixed at τ and V shrinking like
/// 1/n, ln Λ eventually grows without bound (power one).
#[test]
fn msprt_detects_a_fixed_effect_eventually() {
    let tau2: f64 = 1e-4;
    let mut last = f64::NEG_INFINITY;
    for n in [1e2, 1e3, 1e4, 1e5, 1e6] {
        let llr = log_likelihood_ratio(
            &Evidence {
                estimate: tau2.sqrt(),
                variance: 0.03 / n,
                mixing_variance: tau2,
            },
            0.0,
        );
        assert!(llr > last, "ln Λ must grow with n once the data dominate");
        last = llr;
    }
    assert!(last > 20.0f64.ln() * 10.0);
}

#[test]
fn samples_needed_projection_lands_on_the_threshold() {
    // 25/75 split, success rate ≈ 97 %: the projected sample size, fed back, just crosses.
    let (nt, nc, var) = (400u64, 1_200u64, 0.97 * 0.03);
    let tau2 = 0.01 * var;
    let p = Projection {
        treatment_n: nt,
        control_n: nc,
        treatment_variance: var,
        control_variance: var,
        mixing_variance: tau2,
        effect: tau2.sqrt(),
        alpha: Alpha::FIVE_PERCENT,
    };
    let k = additional_treatment_samples(&p).unwrap();
    let llr_at = |k: u64| {
        let (t, c) = ((nt + k) as f64, nc as f64 + 3.0 * k as f64);
        log_likelihood_ratio(
            &Evidence {
                estimate: tau2.sqrt(),
                variance: var / t + var / c,
                mixing_variance: tau2,
            },
            0.0,
        )
    };
    assert!(k > 0);
    assert!(llr_at(k) >= 20.0f64.ln());
    assert!(llr_at(k - 1) < 20.0f64.ln());
}

proptest! {
    /// The interval and the p-value are the same statement: 0 is outside the always-valid
    /// interval exactly when p ≤ α (up to rounding at the boundary).
    #[test]
    fn interval_and_p_value_agree(
        estimate in -1.0f64..1.0,
        log_v in -12.0f64..1.0,
        log_tau in -12.0f64..1.0,
    ) {
        let e = Evidence { estimate, variance: 10f64.powf(log_v), mixing_variance: 10f64.powf(log_tau) };
        let t = mixture_sprt(&e, Alpha::FIVE_PERCENT).unwrap();
        let excludes_zero = t.ci_low > 0.0 || t.ci_high < 0.0;
        let margin = (t.log_likelihood_ratio - 20.0f64.ln()).abs();
        if margin > 1e-9 {
            prop_assert_eq!(excludes_zero, t.p_value <= 0.05);
            prop_assert_eq!(t.significant, t.p_value <= 0.05);
        }
        prop_assert!(t.ci_low <= estimate && estimate <= t.ci_high);
    }

    /// Merging moments in any split equals summarising everything at once.
    #[test]
    fn moments_merge_is_split_invariant(
        values in proptest::collection::vec(0.0f64..10_000.0, 2..200),
        cut in 0usize..200,
    ) {
        let cut = cut.min(values.len());
        let all = Moments::from_values(&values);
        let merged = Moments::from_values(&values[..cut]).merged(&Moments::from_values(&values[cut..]));
        prop_assert_eq!(all.n(), merged.n());
        prop_assert!((all.mean().unwrap() - merged.mean().unwrap()).abs() <= 1e-9 * all.mean().unwrap().abs().max(1.0));
        prop_assert!((all.m2() - merged.m2()).abs() <= 1e-9 * all.m2().max(1.0));
    }
}

#[test]
fn degenerate_inputs_are_insufficient_not_panics() {
    let empty = Moments::EMPTY;
    let one = Moments::from_values(&[3.0]);
    let flat = Moments::from_values(&[2.0; 50]);
    let some = Moments::from_values(&(0..50).map(f64::from).collect::<Vec<_>>());
    let a = Alpha::FIVE_PERCENT;
    assert!(matches!(
        welch_t_test(&empty, &some, a),
        Err(Insufficient::TooFewSamples { .. })
    ));
    assert!(matches!(
        welch_t_test(&one, &some, a),
        Err(Insufficient::TooFewSamples { .. })
    ));
    assert_eq!(welch_t_test(&flat, &flat, a), Err(Insufficient::NoVariance));
    let s = ExperimentSettings::default();
    assert_eq!(
        sequential_means(&flat, &flat, &s),
        Err(Insufficient::NoVariance)
    );
    let all_ok = Proportion::try_new(100, 100).unwrap();
    assert_eq!(
        two_proportion_z_test(&all_ok, &all_ok, a),
        Err(Insufficient::NoVariance)
    );
    assert_eq!(
        sequential_proportions(&all_ok, &all_ok, &s),
        Err(Insufficient::NoVariance)
    );
    assert!(matches!(
        two_proportion_z_test(&Proportion::EMPTY, &all_ok, a),
        Err(Insufficient::TooFewSamples { .. })
    ));
    assert!(matches!(
        sample_ratio_mismatch(0, 0, 0.25),
        Err(Insufficient::TooFewSamples { .. })
    ));
    assert!(matches!(
        sample_ratio_mismatch(10, 0, 1.0),
        Err(Insufficient::NoExpectedSplit { .. })
    ));
    assert_eq!(
        sample_ratio_mismatch(10, 10, f64::NAN),
        Err(Insufficient::NotFinite)
    );
    let nan = Evidence {
        estimate: f64::NAN,
        variance: 1.0,
        mixing_variance: 1.0,
    };
    assert_eq!(mixture_sprt(&nan, a), Err(Insufficient::NotFinite));
    let zero = Evidence {
        estimate: 1.0,
        variance: 0.0,
        mixing_variance: 1.0,
    };
    assert_eq!(mixture_sprt(&zero, a), Err(Insufficient::NoVariance));
}
