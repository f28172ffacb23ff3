//! `core::cohort::hash` (the `murmur3` crate over `salt:key` assembled in a stack buffer, or a
//! heap buffer when longer) against the crate over the concatenated `String`, on
//! arbitrary salts and keys: empty, ASCII, non-ASCII, every length mod 4, and lengths on both
//! sides of the stack buffer. The pinned vectors (`cohort_vectors.rs`) check the crate itself
//! against Python's `mmh3`.

use cmo_edge_router::core::cohort::hash;
use proptest::prelude::*;
use std::io::Cursor;

fn reference(salt: &str, key: &str) -> u32 {
    let joined = format!("{salt}:{key}");
    murmur3::murmur3_32(&mut Cursor::new(joined.as_bytes()), 0).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn equals_reference_on_any_text(salt in any::<String>(), key in any::<String>()) {
        prop_assert_eq!(hash(&salt, &key), reference(&salt, &key));
    }

    #[test]
    fn equals_reference_across_the_stack_buffer(salt in "[a-z_]{0,24}", n in 20usize..120, c in "[a-zé]") {
        let key = c.repeat(n);
        prop_assert_eq!(hash(&salt, &key), reference(&salt, &key));
    }

    #[test]
    fn equals_reference_on_short_ascii(salt in "[a-z0-9_.]{0,9}", key in "[ -~]{0,13}") {
        prop_assert_eq!(hash(&salt, &key), reference(&salt, &key));
    }
}

#[test]
fn every_alignment() {
    let text = "abcdefghijklmnopé€𝄞";
    let cuts: Vec<usize> = (0..=text.len())
        .filter(|&i| text.is_char_boundary(i))
        .collect();
    for &a in &cuts {
        for &b in &cuts {
            let (salt, key) = (&text[..a], &text[..b]);
            assert_eq!(hash(salt, key), reference(salt, key), "{salt:?} {key:?}");
        }
    }
    assert_eq!(hash("", ""), reference("", ""));
}
