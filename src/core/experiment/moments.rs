//! Mergeable sufficient statistics: [`Moments`] (count, mean, sum of squared deviations) for a
//! measure such as latency or quality, and [`Proportion`] (successes of n) for a rate.
//!
//! Why these and not raw samples: every isolate flushes its own counters and the controller
//! adds them up, so a test can only see what merges. Count, mean and M2 are exactly what
//! Welch's t-test and the mixture SPRT need, and they merge without loss of precision by Chan,
//! Golub & LeVeque's pairwise update (1979), the same update Welford's one-pass algorithm uses
//! per sample. Windows that store integer `count / sum / sum of squares` (associative, like
//! `window::Stats::quality_sum`) convert with [`Moments::from_integer_sums`], exactly.

use crate::core::policy::PolicyError;
use serde::{Deserialize, Serialize};

/// Count, mean and M2 = Σ (xᵢ − mean)² of some finite values.
///
/// Invariants (checked by [`Moments::try_new`], kept by every method): `mean` and `m2` are
/// finite, `m2 ≥ 0`, and an empty summary has `mean = m2 = 0`.
///
/// Serde shape: `{"n":120,"mean":1840.5,"m2":3.1e7}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MomentsWire")]
pub struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
}

#[derive(Deserialize)]
struct MomentsWire {
    n: u64,
    #[serde(default)]
    mean: f64,
    #[serde(default)]
    m2: f64,
}

impl TryFrom<MomentsWire> for Moments {
    type Error = PolicyError;
    fn try_from(w: MomentsWire) -> Result<Self, Self::Error> {
        Moments::try_new(w.n, w.mean, w.m2)
    }
}

impl Moments {
    pub const EMPTY: Moments = Moments {
        n: 0,
        mean: 0.0,
        m2: 0.0,
    };

    /// Validates a summary. With `n = 0` the mean and M2 must be zero; with `n = 1` M2 must be 0.
    pub fn try_new(n: u64, mean: f64, m2: f64) -> Result<Moments, PolicyError> {
        if !mean.is_finite() {
            return Err(PolicyError::new(
                "mean",
                format!("must be finite, got {mean}"),
            ));
        }
        if !(m2.is_finite() && m2 >= 0.0) {
            return Err(PolicyError::new(
                "m2",
                format!("must be a finite number ≥ 0, got {m2}"),
            ));
        }
        if n == 0 && (mean != 0.0 || m2 != 0.0) {
            return Err(PolicyError::new(
                "n",
                "is 0 but mean or m2 is not: an empty summary has neither",
            ));
        }
        if n == 1 && m2 != 0.0 {
            return Err(PolicyError::new("m2", "must be 0 for a single value"));
        }
        Ok(Moments { n, mean, m2 })
    }

    /// The moments of `values`; non-finite values are skipped.
    pub fn from_values(values: &[f64]) -> Moments {
        let mut m = Moments::EMPTY;
        for &v in values {
            m.push(v);
        }
        m
    }

    /// From a count, a sum and a sum of squares (floating point). The subtraction
    /// `Σx² − (Σx)²/n` cancels when the mean is large against the spread; a result rounded below
    /// zero is clamped to 0. Prefer [`Moments::from_integer_sums`] where the window keeps integers.
    pub fn from_sums(n: u64, sum: f64, sum_sq: f64) -> Result<Moments, PolicyError> {
        if n == 0 {
            return Moments::try_new(0, sum, sum_sq);
        }
        if !sum.is_finite() || !sum_sq.is_finite() {
            return Err(PolicyError::new("sum", "sums must be finite"));
        }
        let nf = n as f64;
        let mean = sum / nf;
        let m2 = if n == 1 {
            0.0
        } else {
            (sum_sq - sum * mean).max(0.0)
        };
        Moments::try_new(n, mean, m2)
    }

    /// From integer sums of values measured in `1/scale` units (e.g. latency in ms with
    /// `scale = 1`, quality in millionths with `scale = 1e6`): the values are `vᵢ / scale`, `sum =
    /// Σ vᵢ`, `sum_sq = Σ vᵢ²`. M2 = (n·Σv² − (Σv)²) / (n·scale²) is computed exactly in integers,
    /// so no cancellation; `n·Σv²` must fit in a u128 (it does for any realistic window).
    pub fn from_integer_sums(
        n: u64,
        sum: u128,
        sum_sq: u128,
        scale: f64,
    ) -> Result<Moments, PolicyError> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(PolicyError::new(
                "scale",
                format!("must be finite and > 0, got {scale}"),
            ));
        }
        if n == 0 {
            return if sum == 0 && sum_sq == 0 {
                Ok(Moments::EMPTY)
            } else {
                Err(PolicyError::new("n", "is 0 but the sums are not"))
            };
        }
        let n128 = u128::from(n);
        let numerator = n128
            .checked_mul(sum_sq)
            .zip(sum.checked_mul(sum))
            .and_then(|(a, b)| a.checked_sub(b));
        let nf = n as f64;
        let mean = sum as f64 / nf / scale;
        let m2 = match numerator {
            Some(num) => num as f64 / nf / (scale * scale),
            // Overflow (or Σv² < (Σv)²/n, which integer data cannot produce): say so.
            None => {
                return Err(PolicyError::new(
                    "sum_sq",
                    "n·Σv² − (Σv)² is negative or overflows u128: the sums are inconsistent",
                ))
            }
        };
        Moments::try_new(n, mean, if n == 1 { 0.0 } else { m2 })
    }

    /// Adds one value (Welford's update). Non-finite values are skipped, as `window::Stats`
    /// skips out-of-range scores.
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        let n = self.n.saturating_add(1);
        let delta = x - self.mean;
        let mean = self.mean + delta / n as f64;
        let m2 = self.m2 + delta * (x - mean);
        if mean.is_finite() && m2.is_finite() {
            self.n = n;
            self.mean = mean;
            self.m2 = m2.max(0.0);
        }
    }

    /// Merges another summary into this one (Chan et al.'s pairwise update).
    pub fn merge(&mut self, other: &Moments) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let n = self.n.saturating_add(other.n);
        let (na, nb, nf) = (self.n as f64, other.n as f64, n as f64);
        let delta = other.mean - self.mean;
        let mean = self.mean + delta * (nb / nf);
        let m2 = self.m2 + other.m2 + delta * delta * (na * nb / nf);
        if mean.is_finite() && m2.is_finite() {
            self.n = n;
            self.mean = mean;
            self.m2 = m2.max(0.0);
        }
    }

    /// This summary merged with another.
    pub fn merged(mut self, other: &Moments) -> Moments {
        self.merge(other);
        self
    }

    pub fn n(&self) -> u64 {
        self.n
    }

    /// The mean; `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then_some(self.mean)
    }

    /// Σ (xᵢ − mean)².
    pub fn m2(&self) -> f64 {
        self.m2
    }

    /// The sample variance M2 / (n − 1); `None` below two values.
    pub fn variance(&self) -> Option<f64> {
        (self.n > 1).then(|| self.m2 / (self.n - 1) as f64)
    }

    /// The sample standard deviation; `None` below two values.
    pub fn std_dev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }
}

/// `successes` of `n` trials.
///
/// Serde shape: `{"successes":117,"n":120}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ProportionWire")]
pub struct Proportion {
    successes: u64,
    n: u64,
}

#[derive(Deserialize)]
struct ProportionWire {
    successes: u64,
    n: u64,
}

impl TryFrom<ProportionWire> for Proportion {
    type Error = PolicyError;
    fn try_from(w: ProportionWire) -> Result<Self, Self::Error> {
        Proportion::try_new(w.successes, w.n)
    }
}

impl Proportion {
    pub const EMPTY: Proportion = Proportion { successes: 0, n: 0 };

    pub fn try_new(successes: u64, n: u64) -> Result<Proportion, PolicyError> {
        if successes > n {
            return Err(PolicyError::new(
                "successes",
                format!("{successes} exceeds n = {n}"),
            ));
        }
        Ok(Proportion { successes, n })
    }

    /// Adds one trial.
    pub fn record(&mut self, success: bool) {
        if self.n == u64::MAX {
            return;
        }
        self.n += 1;
        if success {
            self.successes += 1;
        }
    }

    pub fn merge(&mut self, other: &Proportion) {
        let n = self.n.saturating_add(other.n);
        let successes = self.successes.saturating_add(other.successes).min(n);
        *self = Proportion { successes, n };
    }

    pub fn successes(&self) -> u64 {
        self.successes
    }

    pub fn failures(&self) -> u64 {
        self.n - self.successes
    }

    pub fn n(&self) -> u64 {
        self.n
    }

    /// successes / n; `None` when empty.
    pub fn rate(&self) -> Option<f64> {
        (self.n > 0).then(|| self.successes as f64 / self.n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(values: &[f64]) -> (f64, f64) {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let m2 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        (mean, m2)
    }

    #[test]
    fn welford_and_chan_agree_with_two_pass() {
        let xs: Vec<f64> = (0..97).map(|i| 1_000.0 + ((i * 37) % 101) as f64).collect();
        let (mean, m2) = naive(&xs);
        let all = Moments::from_values(&xs);
        assert!((all.mean().unwrap() - mean).abs() < 1e-9);
        assert!((all.m2() - m2).abs() < 1e-7 * m2);
        let (a, b) = xs.split_at(40);
        let merged = Moments::from_values(a).merged(&Moments::from_values(b));
        assert_eq!(merged.n(), 97);
        assert!((merged.mean().unwrap() - mean).abs() < 1e-9);
        assert!((merged.m2() - m2).abs() < 1e-7 * m2);
    }

    #[test]
    fn integer_sums_are_exact() {
        let v: [u64; 5] = [750_000, 810_000, 640_000, 900_000, 700_000];
        let sum: u128 = v.iter().map(|&x| u128::from(x)).sum();
        let sum_sq: u128 = v.iter().map(|&x| u128::from(x) * u128::from(x)).sum();
        let m = Moments::from_integer_sums(5, sum, sum_sq, 1e6).unwrap();
        let xs: Vec<f64> = v.iter().map(|&x| x as f64 / 1e6).collect();
        let (mean, m2) = naive(&xs);
        assert!((m.mean().unwrap() - mean).abs() < 1e-15);
        assert!((m.m2() - m2).abs() < 1e-15);
        assert!(Moments::from_integer_sums(2, 10, 1, 1.0).is_err());
        assert!(Moments::from_integer_sums(0, 1, 1, 1.0).is_err());
    }

    #[test]
    fn degenerate_inputs_are_refused_or_empty() {
        assert!(Moments::try_new(3, f64::NAN, 1.0).is_err());
        assert!(Moments::try_new(3, 1.0, -1.0).is_err());
        assert!(Moments::try_new(0, 1.0, 0.0).is_err());
        assert!(Moments::try_new(1, 1.0, 2.0).is_err());
        let mut m = Moments::EMPTY;
        m.push(f64::NAN);
        m.push(f64::INFINITY);
        assert_eq!(m, Moments::EMPTY);
        assert_eq!(m.mean(), None);
        assert_eq!(m.variance(), None);
        assert!(Proportion::try_new(5, 4).is_err());
        assert_eq!(Proportion::EMPTY.rate(), None);
        let bad: Result<Moments, _> = serde_json::from_str(r#"{"n":2,"mean":1.0,"m2":-3}"#);
        assert!(bad.is_err());
    }
}
