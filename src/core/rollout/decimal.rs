//! Numbers that survive a JSON round trip exactly.
//!
//! Why: the state document must read back as the same rollout after a restart, and
//! `serde_json` (without its `float_roundtrip` feature, which this crate does not enable) may
//! parse a 16–17-digit decimal one unit in the last place off. Decimals with at most nine
//! places below one million are parsed exactly (their mantissa and power of ten are exact
//! doubles), and `ryu` writes them back in that short form. So every float the rollout
//! stores — thresholds, observed rates, ratios, p-values, means — is tidied to nine decimal
//! places (whole numbers above a million), which is far finer than any gate cares about.

/// `x` rounded to 9 decimal places (to a whole number when |x| ≥ 10⁶); non-finite values are
/// returned unchanged (the callers filter them out).
pub(crate) fn tidy(x: f64) -> f64 {
    if !x.is_finite() {
        x
    } else if x.abs() >= 1e6 {
        x.round()
    } else {
        (x * 1e9).round() / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::tidy;

    #[test]
    fn tidy_values_round_trip_through_json() {
        let mut x = 0.123_456_789_012_345_67_f64;
        for i in 0..20_000 {
            x = (x * 7.31 + 0.017 * f64::from(i)) % 1_000.0;
            for v in [x, x / 1e7, 1.0 - x / 1e3, x * 1e5, -x] {
                let t = tidy(v);
                let back: f64 = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
                assert_eq!(back.to_bits(), t.to_bits(), "{v} → {t}");
                assert_eq!(tidy(t).to_bits(), t.to_bits());
            }
        }
        assert_eq!(tidy(0.05), 0.05);
        assert!(tidy(f64::NAN).is_nan());
    }
}
