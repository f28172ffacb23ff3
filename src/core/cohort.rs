//! Cohort hashing: where a user sits on the 0–100 % rollout line.
//!
//! Why this exact formula (docs/architecture.md#cohort-hashing): other tools (Unleash's `flexibleRollout`, the chat app,
//! the browser preview) must put a user on the same side as the worker does, so the hash,
//! the seed and the digit extraction are fixed and pinned by test vectors:
//!
//! ```text
//! h   = murmur3_x86_32(utf8(salt + ":" + key), seed 0)
//! pos = (h % 100) + ((h / 100) % 100) / 100        // in [0, 100), 0.01 resolution
//! in  = pos < R                                      // compared in hundredths, as integers
//! ```
//!
//! The whole part of `pos` is Unleash's normalised bucket minus one, so whole-percent cohorts
//! agree with Unleash; the second pair of decimal digits gives sub-percent rollouts (0.25 %).
//! Comparing integers in hundredths avoids float rounding at the boundary, and `pos < R` is
//! monotone: raising R never evicts anyone.
//!
//! The hash is the `murmur3` crate's, as the formula names it. `salt:key` is assembled in a
//! 64-byte stack buffer (a heap buffer only for longer ones), so hashing normally allocates
//! nothing. The pinned vectors (`tests/vectors/cohort.json`, computed with Python's `mmh3`) and
//! the property test against the crate over the concatenated string (`tests/native/`) keep any
//! change from reshuffling users.

use serde::{Deserialize, Serialize};

/// Default salt, the seed's `LIGHTRAG_USER_HASH_SALT`.
pub const DEFAULT_SALT: &str = "cmo_lightrag_2025";

/// The cohort salt. It may come from a wrangler secret in production (whoever knows it can
/// compute every user's cohort offline), and secrets and vars look the same to a Worker, so it
/// is never shown as text: serialised (status, config documents) and debug-printed it is a
/// short SHA-256 fingerprint, enough for an operator to tell which salt is live.
#[derive(Clone, PartialEq, Eq)]
pub struct Salt(String);

impl Salt {
    pub fn new(s: impl Into<String>) -> Salt {
        Salt(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the public [`DEFAULT_SALT`].
    pub fn is_public_default(&self) -> bool {
        self.0 == DEFAULT_SALT
    }

    /// `sha256:` and the first 12 hex digits of the salt's SHA-256.
    pub fn fingerprint(&self) -> String {
        let d = crate::core::digest::sha256(self.0.as_bytes());
        format!("sha256:{}", crate::core::digest::hex(&d[..6]))
    }
}

impl Default for Salt {
    fn default() -> Salt {
        Salt::new(DEFAULT_SALT)
    }
}

impl std::fmt::Debug for Salt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.fingerprint())
    }
}

impl Serialize for Salt {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.fingerprint())
    }
}

/// A user's position on the rollout line, in hundredths of a percent: `0..=9999`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position(u16);

impl Position {
    /// Builds a position from hundredths; `None` outside `0..=9999`.
    pub fn from_hundredths(h: u16) -> Option<Position> {
        (h < 10_000).then_some(Position(h))
    }
    /// The position in hundredths of a percent (`0..=9999`).
    pub fn hundredths(self) -> u16 {
        self.0
    }
    /// The position as a percentage in `[0, 100)`, e.g. `9.77`.
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }
    /// Whole-percent bucket, `0..=99` (Unleash's normalised bucket minus one).
    pub fn bucket(self) -> u8 {
        // self.0 < 10_000, so the quotient is < 100 and fits a u8.
        (self.0 / 100) as u8
    }
}

/// A rollout percentage in hundredths of a percent: `0..=10000` (0 % ..= 100 %). Serializes as
/// the percentage number an operator writes (`0.25`, `25.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Percent(u16);

impl Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.percent())
    }
}

impl Percent {
    pub const ZERO: Percent = Percent(0);
    pub const FULL: Percent = Percent(10_000);

    /// Converts a percentage such as `0.25` or `25.0`, rounded to the nearest hundredth.
    /// `None` for NaN, infinities and values outside `[0, 100]`.
    pub fn from_percent(p: f64) -> Option<Percent> {
        if !p.is_finite() || !(0.0..=100.0).contains(&p) {
            return None;
        }
        // In range, so the rounded value is within 0..=10000.
        Some(Percent((p * 100.0).round() as u16))
    }
    /// Builds from hundredths; `None` above 10000.
    pub fn from_hundredths(h: u16) -> Option<Percent> {
        (h <= 10_000).then_some(Percent(h))
    }
    pub fn hundredths(self) -> u16 {
        self.0
    }
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

/// Longest `salt:key` hashed from the stack buffer.
const STACK_BYTES: usize = 64;

/// The raw 32-bit murmur3 (x86, seed 0) of `salt + ":" + key`. Allocates only for a
/// `salt:key` longer than [`STACK_BYTES`].
pub fn hash(salt: &str, key: &str) -> u32 {
    let (salt, key) = (salt.as_bytes(), key.as_bytes());
    let n = salt.len() + 1 + key.len();
    let mut buf = [0u8; STACK_BYTES];
    let mut long = Vec::new();
    let dst = match buf.get_mut(..n) {
        Some(dst) => dst,
        None => {
            long.resize(n, 0);
            &mut long[..]
        }
    };
    let (s, rest) = dst.split_at_mut(salt.len());
    s.copy_from_slice(salt);
    if let Some((colon, k)) = rest.split_first_mut() {
        *colon = b':';
        k.copy_from_slice(key);
    }
    // Reading from memory cannot fail; 0 would only ever stand for an impossible I/O error.
    murmur3::murmur3_32(&mut Blocks(dst), 0).unwrap_or(0)
}

/// The bytes as `murmur3_32` reads them: it asks for four bytes at a time, and a four-byte
/// request is answered with one fixed-size copy. Through `&[u8]`'s own `Read` every request is
/// a variable-length copy, which made the hash most of a decision's time through wasm (a Node
/// CPU profile of `Router.route`: 14 % of the run in `cohort::hash`, 2 % in `decide`).
struct Blocks<'a>(&'a [u8]);

impl std::io::Read for Blocks<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let (Some((block, rest)), Ok(out)) = (
            self.0.split_first_chunk::<4>(),
            <&mut [u8; 4]>::try_from(&mut *buf),
        ) {
            *out = *block;
            self.0 = rest;
            return Ok(4);
        }
        let n = buf.len().min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        if let Some(out) = buf.get_mut(..n) {
            out.copy_from_slice(head);
        }
        self.0 = rest;
        Ok(n)
    }
}

/// Maps a 32-bit hash to its position (docs/architecture.md#cohort-hashing).
pub fn position_of_hash(h: u32) -> Position {
    let whole = h % 100;
    let frac = (h / 100) % 100;
    // whole, frac < 100, so the sum is < 10_000 and fits a u16.
    Position((whole * 100 + frac) as u16)
}

/// Where `key` sits on the rollout line for `salt`.
pub fn position(salt: &str, key: &str) -> Position {
    position_of_hash(hash(salt, key))
}

/// Whether a position falls in a rollout of `pct`: `pos < R`, in integer hundredths.
pub fn in_rollout(pos: Position, pct: Percent) -> bool {
    pos.0 < pct.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Blocks` hands murmur3 the same bytes as a plain reader: every length of `salt:key` up to
    /// past the stack buffer, so every tail (0–3 bytes) and the heap path are covered.
    #[test]
    fn blocks_reader_hashes_as_a_plain_reader() {
        for n in 0..80 {
            let key: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            for salt in ["", "s", "cmo_lightrag_2025", "ünï"] {
                let joined = format!("{salt}:{key}");
                let plain =
                    murmur3::murmur3_32(&mut std::io::Cursor::new(joined.as_bytes()), 0).unwrap();
                assert_eq!(hash(salt, &key), plain, "salt {salt:?}, key of {n} bytes");
            }
        }
    }

    #[test]
    fn design_vectors() {
        assert_eq!(hash("Feature.flexibleRollout.10", "174"), 3_067_997_709);
        assert_eq!(
            position("Feature.flexibleRollout.10", "174").hundredths(),
            977
        );
        assert_eq!(hash("Feature.flexibleRollout.10", "499"), 330_494_531);
        assert_eq!(
            position("Feature.flexibleRollout.10", "499").hundredths(),
            3145
        );
        assert_eq!(hash(DEFAULT_SALT, "user-42"), 3_270_235_276);
        assert_eq!(position(DEFAULT_SALT, "user-42").hundredths(), 7652);
    }

    #[test]
    fn boundaries() {
        let p = Position::from_hundredths(977).unwrap();
        assert!(!in_rollout(p, Percent::from_percent(9.77).unwrap()));
        assert!(in_rollout(p, Percent::from_percent(9.78).unwrap()));
        assert!(in_rollout(p, Percent::from_percent(10.0).unwrap()));
        assert!(!in_rollout(p, Percent::ZERO));
        assert!(in_rollout(
            Position::from_hundredths(9999).unwrap(),
            Percent::FULL
        ));
        assert_eq!(Percent::from_percent(f64::NAN), None);
        assert_eq!(Percent::from_percent(100.01), None);
        assert_eq!(Percent::from_percent(-0.5), None);
        assert_eq!(Position::from_hundredths(10_000), None);
    }
}
