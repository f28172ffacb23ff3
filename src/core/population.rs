//! Synthetic user ids for the preview's "N users" questions: `user-0 … user-(N-1)`.
//!
//! Why generated here and not in the page: a million ids built as JavaScript strings and copied
//! into wasm one by one cost more than deciding for them (each crossing allocates and copies).
//! Generated inside the core into one reused buffer, an id costs a few digit writes, so a
//! million-user simulation spends its time where it should: in the real decision.

/// `count` ids `prefix0, prefix1, …`, numbered from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Population<'a> {
    pub prefix: &'a str,
    pub start: u64,
    pub count: u64,
}

/// The prefix the page and the tests use: `user-0`, `user-1`, …
pub const DEFAULT_PREFIX: &str = "user-";

impl<'a> Population<'a> {
    /// `user-0 … user-(count-1)`.
    pub fn users(count: u64) -> Population<'static> {
        Population {
            prefix: DEFAULT_PREFIX,
            start: 0,
            count,
        }
    }

    /// Calls `f` with each id in order; the `&str` lives in one buffer rewritten per id.
    pub fn for_each(&self, mut f: impl FnMut(&str)) {
        let mut buf = String::with_capacity(self.prefix.len() + 20);
        buf.push_str(self.prefix);
        let end = self.start.saturating_add(self.count);
        for i in self.start..end {
            buf.truncate(self.prefix.len());
            push_decimal(&mut buf, i);
            f(&buf);
        }
    }
}

/// Appends `n` in decimal (what `format!("{n}")` writes, without the formatting machinery).
fn push_decimal(buf: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        // n % 10 < 10, so the digit is ASCII.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        buf.push(char::from(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_what_format_writes() {
        let mut got = Vec::new();
        Population {
            prefix: "u-",
            start: 98,
            count: 4,
        }
        .for_each(|k| got.push(k.to_string()));
        assert_eq!(got, ["u-98", "u-99", "u-100", "u-101"]);
        for n in [0, 7, 10, 1_000_000, u64::MAX] {
            let mut s = String::new();
            push_decimal(&mut s, n);
            assert_eq!(s, n.to_string());
        }
        let mut n = 0;
        Population::users(0).for_each(|_| n += 1);
        assert_eq!(n, 0);
    }
}
