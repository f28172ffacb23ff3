//! Cohort hashing: where a user sits on the 0–100 % rollout line.
//!
//! Why this exact formula (DESIGN §2): other tools (Unleash's `flexibleRollout`, the chat app,
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
//! Why a hand-written murmur3: this runs on every request. Concatenating `salt + ":" + key`
//! into a buffer costs an allocation, and the `murmur3` crate reads through `std::io::Read`,
//! which together cost more than the hash itself. [`hash`] streams the three parts through the
//! block function with a 4-byte carry between them instead: no allocation, one pass. The
//! `murmur3` crate stays as the reference the native property test compares against
//! (`tests/cohort_props.rs`), next to the pinned vectors computed with Python's `mmh3`.

use serde::{Deserialize, Serialize};

/// Default salt, the seed's `LIGHTRAG_USER_HASH_SALT`.
pub const DEFAULT_SALT: &str = "cmo_lightrag_2025";

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

/// The raw 32-bit murmur3 (x86, seed 0) of `salt + ":" + key`, without building that string.
pub fn hash(salt: &str, key: &str) -> u32 {
    let mut m = Murmur3::new();
    m.write(salt.as_bytes());
    m.write(b":");
    m.write(key.as_bytes());
    m.finish()
}

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// Streaming murmur3_x86_32 (seed 0): blocks of 4 little-endian bytes, with the bytes that do
/// not complete a block carried over to the next [`Murmur3::write`].
struct Murmur3 {
    h: u32,
    /// Carried bytes, little-endian in the low `carried * 8` bits.
    carry: u32,
    carried: u32,
    len: u32,
}

impl Murmur3 {
    fn new() -> Murmur3 {
        Murmur3 {
            h: 0,
            carry: 0,
            carried: 0,
            len: 0,
        }
    }

    #[inline(always)]
    fn mix_k(k: u32) -> u32 {
        k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
    }

    #[inline(always)]
    fn block(&mut self, k: u32) {
        self.h ^= Self::mix_k(k);
        self.h = self
            .h
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }

    #[inline(always)]
    fn write(&mut self, mut bytes: &[u8]) {
        // murmur3_x86_32 hashes the length modulo 2^32, so wrapping is the reference behaviour.
        self.len = self.len.wrapping_add(bytes.len() as u32);
        // Top up a partial block first.
        while self.carried != 0 {
            let Some((&b, rest)) = bytes.split_first() else {
                return;
            };
            self.carry |= u32::from(b) << (8 * self.carried);
            self.carried += 1;
            bytes = rest;
            if self.carried == 4 {
                let k = self.carry;
                self.block(k);
                self.carry = 0;
                self.carried = 0;
            }
        }
        let mut chunks = bytes.chunks_exact(4);
        for c in &mut chunks {
            if let [a, b, c, d] = *c {
                self.block(u32::from_le_bytes([a, b, c, d]));
            }
        }
        for (i, &b) in chunks.remainder().iter().enumerate() {
            self.carry |= u32::from(b) << (8 * i);
        }
        self.carried = chunks.remainder().len() as u32;
    }

    #[inline(always)]
    fn finish(self) -> u32 {
        let mut h = self.h;
        if self.carried != 0 {
            h ^= Self::mix_k(self.carry);
        }
        h ^= self.len;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

/// Maps a 32-bit hash to its position (DESIGN §2 formula).
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
