//! Keyed tags of stickiness keys: what the breaker and the metric quotas count instead of the
//! raw user id.
//!
//! Why: the breaker must see that failures come from several distinct users, and the metrics
//! must cap one user's share, so both need to tell keys apart — but a raw user id must never be
//! kept beyond the request (docs/architecture.md#invariants). A tag is SipHash-2-4 of the key
//! under a secret the isolate draws at start ([`TagSecret`]): equal keys give equal tags inside
//! one isolate, and without the secret a tag says nothing about the key (SipHash is a PRF, the
//! property it was designed for; a plain salted murmur3 is invertible). The Worker derives the
//! secret from the deployment's `ADMIN_TOKEN` ([`TagSecret::derive`]), so tags agree across
//! isolates: the state hub's fleet breaker counts distinct users over the whole fleet
//! (`core::breaker::fleet`). Tags are never stored: they live in isolates' and the hub's
//! memory. Without an admin token each isolate draws its own secret at start.
//!
//! SipHash-2-4 is implemented here (forty lines) rather than taken from `std::hash::SipHasher`,
//! which is deprecated; the tests pin the reference vectors of Aumasson and Bernstein and
//! compare with the std implementation on random inputs.

use std::fmt;

/// A 64-bit keyed tag of one stickiness key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyTag(u64);

impl KeyTag {
    /// A tag from its value (tests and simulations that invent keys without a secret).
    pub const fn from_raw(v: u64) -> KeyTag {
        KeyTag(v)
    }

    pub fn value(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for KeyTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyTag({:016x})", self.0)
    }
}

/// The isolate's secret for [`KeyTag`]s: 16 random bytes drawn at start. Its `Debug` never
/// prints the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct TagSecret([u8; 16]);

impl fmt::Debug for TagSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TagSecret(..)")
    }
}

impl TagSecret {
    pub fn new(bytes: [u8; 16]) -> TagSecret {
        TagSecret(bytes)
    }

    /// The deployment's secret, derived from one of its wrangler secrets (the Worker passes
    /// `ADMIN_TOKEN`): every isolate of the deployment derives the same one, so a user has the
    /// same tag in every isolate and the state hub's fleet breaker can count distinct users
    /// across isolates (`core::breaker::fleet`). SHA-256 of a label and the secret, so a tag
    /// says nothing about the secret it came from, and rotating it only renames the tags.
    pub fn derive(deployment_secret: &str) -> TagSecret {
        let d = crate::core::digest::sha256_parts(&[
            b"cmo-edge-router key tags v1\0",
            deployment_secret.as_bytes(),
        ]);
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        TagSecret(b)
    }

    /// The tag of a stickiness key.
    pub fn tag(&self, key: &str) -> KeyTag {
        KeyTag(siphash24(&self.0, key.as_bytes()))
    }
}

const fn le_u64(b: [u8; 8]) -> u64 {
    u64::from_le_bytes(b)
}

struct Sip {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
}

impl Sip {
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    fn compress(&mut self, m: u64) {
        self.v3 ^= m;
        self.round();
        self.round();
        self.v0 ^= m;
    }
}

/// SipHash-2-4 of `data` under the 128-bit `key` (little-endian k0 ‖ k1, as in the paper).
pub fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    let mut k = [0u8; 8];
    k.copy_from_slice(&key[..8]);
    let k0 = le_u64(k);
    k.copy_from_slice(&key[8..]);
    let k1 = le_u64(k);
    let mut s = Sip {
        v0: k0 ^ 0x736f_6d65_7073_6575,
        v1: k1 ^ 0x646f_7261_6e64_6f6d,
        v2: k0 ^ 0x6c79_6765_6e65_7261,
        v3: k1 ^ 0x7465_6462_7974_6573,
    };
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        s.compress(le_u64(b));
    }
    let mut last = [0u8; 8];
    let rest = chunks.remainder();
    last[..rest.len()].copy_from_slice(rest);
    last[7] = data.len() as u8;
    s.compress(le_u64(last));
    s.v2 ^= 0xff;
    for _ in 0..4 {
        s.round();
    }
    s.v0 ^ s.v1 ^ s.v2 ^ s.v3
}
