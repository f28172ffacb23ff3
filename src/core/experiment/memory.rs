//! What the sequential test remembers between looks: the running minimum of its always-valid
//! p-value and the running intersection of its always-valid intervals.
//!
//! Why: each look's p-value is already always valid on its own, but a p-value that crossed α
//! at 10:40 may drift back above it by 11:00 as noise accumulates; "significant at some look"
//! is the event the guarantee bounds, so keeping the minimum (and intersecting the intervals)
//! is just as valid and shows a reader at 11:00 what the test concluded (Johari et al. 2022,
//! the definition of always-valid p-values as a running minimum). The controller persists one
//! [`Carried`] per metric next to the rollout state.
//!
//! The memory belongs to one sequence of cumulative data: when either arm's count goes *down*
//! (a new stage, a reset window), the memory is dropped and the sequence starts again.

use super::sequential::SequentialTest;
use serde::{Deserialize, Serialize};

/// The carried state of one metric's sequential test.
///
/// Serde shape: `{"treatment_n":812,"control_n":2410,"p_value":0.03,"ci_low":-0.04,"ci_high":-0.002}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Carried {
    pub treatment_n: u64,
    pub control_n: u64,
    pub p_value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

impl Carried {
    /// This look's test, tightened by `previous` when `previous` belongs to the same sequence
    /// (both counts at most the current ones, values finite). If the intervals do not
    /// intersect — possible only when the model is wrong or with probability ≤ α — the
    /// interval of the smaller p-value is kept, so that "0 is outside the interval" stays
    /// equivalent to "p ≤ α".
    pub fn update(
        current: &SequentialTest,
        treatment_n: u64,
        control_n: u64,
        previous: Option<&Carried>,
    ) -> Carried {
        let fresh = Carried {
            treatment_n,
            control_n,
            p_value: current.p_value,
            ci_low: current.ci_low,
            ci_high: current.ci_high,
        };
        let Some(prev) = previous.filter(|p| {
            p.treatment_n <= treatment_n
                && p.control_n <= control_n
                && [p.p_value, p.ci_low, p.ci_high]
                    .iter()
                    .all(|v| v.is_finite())
        }) else {
            return fresh;
        };
        let (lo, hi) = (
            current.ci_low.max(prev.ci_low),
            current.ci_high.min(prev.ci_high),
        );
        let (ci_low, ci_high) = if lo <= hi {
            (lo, hi)
        } else if prev.p_value < current.p_value {
            (prev.ci_low, prev.ci_high)
        } else {
            (current.ci_low, current.ci_high)
        };
        Carried {
            treatment_n,
            control_n,
            p_value: current.p_value.min(prev.p_value),
            ci_low,
            ci_high,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(p_value: f64, ci_low: f64, ci_high: f64) -> SequentialTest {
        SequentialTest {
            difference: (ci_low + ci_high) / 2.0,
            variance: 1.0,
            mixing_variance: 1.0,
            log_likelihood_ratio: -p_value.ln(),
            p_value,
            ci_low,
            ci_high,
            significant: p_value <= 0.05,
        }
    }

    #[test]
    fn running_minimum_and_intersection() {
        let first = Carried::update(&look(0.2, -0.05, 0.01), 100, 300, None);
        let second = Carried::update(&look(0.04, -0.03, -0.002), 200, 600, Some(&first));
        assert_eq!(second.p_value, 0.04);
        assert_eq!((second.ci_low, second.ci_high), (-0.03, -0.002));
        let third = Carried::update(&look(0.3, -0.04, 0.02), 300, 900, Some(&second));
        assert_eq!(third.p_value, 0.04, "the minimum is kept");
        assert_eq!((third.ci_low, third.ci_high), (-0.03, -0.002));
    }

    #[test]
    fn disjoint_intervals_keep_the_one_with_the_smaller_p() {
        let first = Carried::update(&look(1e-6, -0.10, -0.04), 100, 300, None);
        let later = Carried::update(&look(0.1, -0.03, 0.001), 200, 600, Some(&first));
        assert_eq!((later.ci_low, later.ci_high), (-0.10, -0.04));
        assert_eq!(later.p_value, 1e-6);
        let first = Carried::update(&look(0.5, 0.01, 0.05), 100, 300, None);
        let later = Carried::update(&look(0.01, -0.03, -0.001), 200, 600, Some(&first));
        assert_eq!((later.ci_low, later.ci_high), (-0.03, -0.001));
    }

    #[test]
    fn a_new_sequence_forgets() {
        let old = Carried::update(&look(1e-6, -0.10, -0.04), 1_000, 3_000, None);
        let new = Carried::update(&look(0.5, -0.2, 0.2), 10, 30, Some(&old));
        assert_eq!(new.p_value, 0.5);
        assert_eq!((new.ci_low, new.ci_high), (-0.2, 0.2));
        let nan = Carried {
            p_value: f64::NAN,
            ..old
        };
        let next = Carried::update(&look(0.5, -0.2, 0.2), 2_000, 6_000, Some(&nan));
        assert_eq!(next.p_value, 0.5);
    }
}
