//! Stickiness keys, the anonymous-id cookie and the admin token check.

use cmo_edge_router::core::identity::*;

fn r() -> [u8; 16] {
    [0xab; 16]
}

#[test]
fn key_order_user_session_cookie_issued() {
    let c = "cmo_rid=0123456789abcdef0123456789abcdef";
    let i = identify(Some("u1"), Some("s1"), Some(c), r);
    assert_eq!((i.key.as_str(), i.source), ("u1", KeySource::User));
    let i = identify(Some("  "), Some("s1"), Some(c), r);
    assert_eq!((i.key.as_str(), i.source), ("s1", KeySource::Session));
    let i = identify(None, None, Some(c), r);
    assert_eq!(i.source, KeySource::Cookie);
    assert_eq!(i.key, "0123456789abcdef0123456789abcdef");
    assert!(i.set_cookie().is_none());
    let i = identify(None, None, None, r);
    assert_eq!(i.source, KeySource::Issued);
    assert_eq!(i.key, "ab".repeat(16));
    let sc = i.set_cookie().unwrap();
    assert!(sc.starts_with(&format!(
        "cmo_rid={}; Path=/; Max-Age=31536000",
        "ab".repeat(16)
    )));
    assert!(sc.contains("HttpOnly") && sc.contains("Secure") && sc.contains("SameSite=Lax"));
}

#[test]
fn cookie_parsing_accepts_only_router_style_ids() {
    assert_eq!(
        cookie_value("a=1; cmo_rid=abcdefABCDEF0123_-xy; b=2", "cmo_rid").as_deref(),
        Some("abcdefABCDEF0123_-xy")
    );
    assert_eq!(cookie_value("cmo_rid=short", "cmo_rid"), None);
    assert_eq!(
        cookie_value("cmo_rid=has space in it 0123456", "cmo_rid"),
        None
    );
    assert_eq!(
        cookie_value("cmo_rid=<script>alert(1)</script>xx", "cmo_rid"),
        None
    );
    assert_eq!(cookie_value("other=0123456789abcdef", "cmo_rid"), None);
    assert_eq!(cookie_value("", "cmo_rid"), None);
    let long = "a".repeat(65);
    assert_eq!(cookie_value(&format!("cmo_rid={long}"), "cmo_rid"), None);
}

#[test]
fn tokens_compare_by_fixed_size_digest_trimmed_on_both_sides() {
    assert!(tokens_match("secret", "secret"));
    assert!(!tokens_match("secret", "secreT"));
    assert!(!tokens_match("secret", "secret2"));
    assert!(!tokens_match("", "x"));
    // A stored token with a trailing newline (`echo tok | wrangler secret put`) still matches.
    assert!(tokens_match("secret", "secret\n"));
    assert!(tokens_match(" secret\t", "secret\r\n"));
    // Over-long and non-ASCII presented tokens are simply wrong, never a panic.
    assert!(!tokens_match(&"s".repeat(100_000), "secret"));
    assert!(!tokens_match("sécret", "secret"));
    // What is compared has one size whatever the token's length.
    assert_eq!(
        token_digest("a").len(),
        token_digest(&"a".repeat(4096)).len()
    );
    assert_eq!(token_digest("tok\n"), token_digest("tok"));
}

#[test]
fn admin_check() {
    assert_eq!(check_admin(None, Some("Bearer x")), AdminAuth::Disabled);
    assert_eq!(check_admin(Some(""), Some("Bearer ")), AdminAuth::Disabled);
    assert_eq!(check_admin(Some("tok"), None), AdminAuth::Missing);
    assert_eq!(
        check_admin(Some("tok"), Some("Basic dG9r")),
        AdminAuth::Missing
    );
    assert_eq!(
        check_admin(Some("tok"), Some("Bearer nope")),
        AdminAuth::Invalid
    );
    assert_eq!(check_admin(Some("tok"), Some("Bearer tok")), AdminAuth::Ok);
    assert_eq!(
        check_admin(Some("tok"), Some("bearer  tok ")),
        AdminAuth::Ok
    );
    // A stored token with a trailing newline or spaces does not lock everyone out; a stored
    // token of only whitespace is no token.
    assert_eq!(
        check_admin(Some("tok\n"), Some("Bearer tok")),
        AdminAuth::Ok
    );
    assert_eq!(
        check_admin(Some(" \n"), Some("Bearer x")),
        AdminAuth::Disabled
    );
    assert_eq!(
        check_admin(Some("tok"), Some("Bearer ")),
        AdminAuth::Missing
    );
    let long = format!("Bearer {}", "t".repeat(64 * 1024));
    assert_eq!(check_admin(Some("tok"), Some(&long)), AdminAuth::Invalid);
}

#[test]
fn new_id_is_the_bytes_in_lowercase_hex() {
    let bytes: [u8; 16] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(5));
    let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(new_id(&bytes), expected);
    assert_eq!(new_id(&[0xff; 16]), "f".repeat(32));
    assert_eq!(new_id(&[0; 16]), "0".repeat(32));
}
