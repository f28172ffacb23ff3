//! Numbers that survive a JSON round trip exactly.
//!
//! Why: the state document must read back as the same rollout after a restart, and
//! `serde_json` (without its `float_roundtrip` feature, which this crate does not enable) may
//! parse a 16–17-digit decimal one unit in the last place off. Decimals with at most nine
//! places below one million are parsed exactly (their mantissa and power of ten are exact
//! doubles), and `ryu` writes them back in that short form. So every float the rollout
//! stores — thresholds, observed rates, ratios, p-values, means — is tidied to nine decimal
//! places (whole numbers above a million), which is far finer than any gate cares about.

/// `x` rounded to 9 decimal places (to a whole number when |x| ≥ 10⁶, and to 13 significant
/// digits when |x| ≥ 10¹⁴); non-finite values are returned unchanged (the callers filter them
/// out).
///
/// Why 13 digits up there (found by `make fuzz`, target `kv_rollout_state`, with gate values
/// computed from counts near `u64::MAX`): `serde_json` reads a number exactly when all its
/// digits, as written, fit a double's 53-bit mantissa. Below 10¹⁶ `ryu` writes whole numbers
/// as `4487757182799730.0`, whose 17 digits do not fit; above, it writes the shortest
/// scientific form (`1.3850939199261897e19`), up to 17 digits. A 13-digit value keeps every
/// written form within the mantissa up to 10²², far beyond any count the rollout stores.
pub(crate) fn tidy(x: f64) -> f64 {
    if !x.is_finite() {
        x
    } else if x.abs() >= 1e14 {
        let scale = 10f64.powi(x.abs().log10().floor() as i32 - 12);
        (x / scale).round() * scale
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
        let mut big = vec![
            13_850_939_199_261_893_633u64 as f64,
            4_487_757_182_799_730.0,
            u64::MAX as f64,
            9_007_199_254_740_993u64 as f64,
            1e15 + 0.5,
            123_456_789_012_345_678.0,
            -4.2e21,
        ];
        let mut y = 1.234_567_890_123_456_7e6_f64;
        while y < 1e22 {
            big.push(y);
            y = y * 1.618_033_988_749_895 + 0.37;
        }
        for b in big {
            let t = tidy(b);
            let back: f64 = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
            assert_eq!(back.to_bits(), t.to_bits(), "{b} → {t}");
            assert!((t - b).abs() <= (b.abs() * 1e-12).max(0.5), "{b} → {t}");
        }
        assert_eq!(tidy(0.05), 0.05);
        assert!(tidy(f64::NAN).is_nan());
    }
}
