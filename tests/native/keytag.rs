//! Keyed tags (`core::keytag`): SipHash-2-4 against the reference vectors and against the std
//! implementation, and the properties the breaker and the quotas rely on.

use cmo_edge_router::core::keytag::{siphash24, TagSecret};
use proptest::prelude::*;
#[allow(deprecated)]
use std::hash::{Hasher, SipHasher};

fn reference_key() -> [u8; 16] {
    std::array::from_fn(|i| i as u8)
}

#[test]
fn siphash_matches_the_papers_vectors() {
    // Aumasson & Bernstein, "SipHash: a fast short-input PRF", appendix A: key 00..0f,
    // message 00..0e (15 bytes) → a129ca6149be45e5; the reference implementation's vectors.h
    // gives 726fdb47dd0e0e31 for the empty message.
    let k = reference_key();
    let msg: Vec<u8> = (0u8..15).collect();
    assert_eq!(siphash24(&k, &msg), 0xa129_ca61_49be_45e5);
    assert_eq!(siphash24(&k, &[]), 0x726f_db47_dd0e_0e31);
}

#[allow(deprecated)]
fn std_siphash(key: &[u8; 16], data: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes(key[..8].try_into().unwrap());
    let k1 = u64::from_le_bytes(key[8..].try_into().unwrap());
    let mut h = SipHasher::new_with_keys(k0, k1);
    h.write(data);
    h.finish()
}

proptest! {
    /// Every length (the tail handling) and key agrees with std's SipHash-2-4.
    #[test]
    fn siphash_agrees_with_std(key in any::<[u8; 16]>(), data in proptest::collection::vec(any::<u8>(), 0..80)) {
        prop_assert_eq!(siphash24(&key, &data), std_siphash(&key, &data));
    }
}

#[test]
fn tags_are_stable_per_secret_and_differ_across_secrets() {
    let a = TagSecret::new([1; 16]);
    let b = TagSecret::new([2; 16]);
    assert_eq!(a.tag("user-42"), a.tag("user-42"));
    assert_ne!(a.tag("user-42"), a.tag("user-43"));
    assert_ne!(a.tag("user-42"), b.tag("user-42"));
    // Neither the secret nor a key is printed.
    assert_eq!(format!("{a:?}"), "TagSecret(..)");
    assert!(!format!("{:?}", a.tag("user-42")).contains("user"));
}

#[test]
fn a_derived_secret_is_the_same_in_every_isolate_and_names_nothing_of_its_source() {
    // Two isolates of one deployment derive it from the same admin token: equal tags.
    let a = TagSecret::derive("admin-token-of-the-deployment");
    let b = TagSecret::derive("admin-token-of-the-deployment");
    assert_eq!(a, b);
    assert_eq!(a.tag("user-42"), b.tag("user-42"));
    // Another token (a rotation, another deployment): other tags.
    let c = TagSecret::derive("admin-token-rotated");
    assert_ne!(a.tag("user-42"), c.tag("user-42"));
    // Not the token's bytes themselves (a label is hashed with it).
    let mut raw = [0u8; 16];
    raw.copy_from_slice(&b"admin-token-of-the-deployment"[..16]);
    assert_ne!(a, TagSecret::new(raw));
}
