//! What every validated policy shares: the numeric [`Bounds`] a setting must fall in, and the
//! one error type a policy's `try_new` returns.
//!
//! Why here: a policy (breaker, fallback, quality gate) is built once, by its `try_new`, from
//! values the configuration loader parsed. If the loader and the policy each had their own idea
//! of a setting's range, a value one accepts the other would refuse — and the policy would then
//! have to fall back to defaults the operator never chose. So each policy declares its bounds as
//! constants, its `try_new` checks them, and the loader quotes the very same constants when it
//! rejects a variable (`expected a whole number from 1 to 128`).

use std::fmt;

/// A closed (or left-open) numeric interval, for integer or real settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds {
    lo: f64,
    hi: f64,
    lo_open: bool,
    whole: bool,
}

impl Bounds {
    /// `lo <= x <= hi`.
    pub const fn closed(lo: f64, hi: f64) -> Bounds {
        Bounds {
            lo,
            hi,
            lo_open: false,
            whole: false,
        }
    }

    /// `lo < x <= hi`.
    pub const fn open_closed(lo: f64, hi: f64) -> Bounds {
        Bounds {
            lo,
            hi,
            lo_open: true,
            whole: false,
        }
    }

    /// A whole number with `lo <= x <= hi`.
    pub const fn whole(lo: u64, hi: u64) -> Bounds {
        Bounds {
            lo: lo as f64,
            hi: hi as f64,
            lo_open: false,
            whole: true,
        }
    }

    pub fn lo(&self) -> f64 {
        self.lo
    }

    pub fn hi(&self) -> f64 {
        self.hi
    }

    /// Whether `x` is finite, inside, and whole when the bounds ask for it.
    pub fn contains(&self, x: f64) -> bool {
        let above = if self.lo_open {
            x > self.lo
        } else {
            x >= self.lo
        };
        x.is_finite() && above && x <= self.hi && (!self.whole || x.fract() == 0.0)
    }

    /// `a whole number from 1 to 128`, `a number greater than 0 to 1`, …
    pub fn describe(&self) -> String {
        if self.whole {
            format!("a whole number from {} to {}", self.lo, self.hi)
        } else {
            let lo = if self.lo_open { "greater than" } else { "from" };
            format!("a number {lo} {} to {}", self.lo, self.hi)
        }
    }

    /// `Ok` when `x` is inside, else a [`PolicyError`] naming `field`.
    pub fn check(&self, field: &'static str, x: f64) -> Result<(), PolicyError> {
        if self.contains(x) {
            Ok(())
        } else {
            Err(PolicyError::new(
                field,
                format!("must be {}, got {x}", self.describe()),
            ))
        }
    }
}

/// A policy value that was rejected by a `try_new`: which field and why.
///
/// # Design
/// One small error type for every resilience policy (breaker, fallback, gate, scorer, window)
/// so the configuration layer can report "`field`: message" uniformly in the status API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub field: &'static str,
    pub message: String,
}

impl PolicyError {
    pub fn new(field: &'static str, message: impl Into<String>) -> PolicyError {
        PolicyError {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for PolicyError {}

/// Checks `v >= lo` for an integer setting without an upper bound.
pub(crate) fn check_min(field: &'static str, v: u64, lo: u64) -> Result<(), PolicyError> {
    if v >= lo {
        Ok(())
    } else {
        Err(PolicyError::new(
            field,
            format!("must be at least {lo}, got {v}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_contain_and_describe() {
        let w = Bounds::whole(1, 128);
        assert!(w.contains(1.0) && w.contains(128.0));
        assert!(!w.contains(0.0) && !w.contains(129.0) && !w.contains(2.5));
        assert_eq!(w.describe(), "a whole number from 1 to 128");
        let s = Bounds::open_closed(0.0, 1.0);
        assert!(!s.contains(0.0) && s.contains(1.0) && !s.contains(f64::NAN));
        assert_eq!(s.describe(), "a number greater than 0 to 1");
        let c = Bounds::closed(0.0, 0.5);
        assert!(c.contains(0.0) && !c.contains(0.51) && !c.contains(f64::INFINITY));
        assert_eq!(
            c.check("jitter", 0.9).unwrap_err().to_string(),
            "jitter: must be a number from 0 to 0.5, got 0.9"
        );
    }
}
