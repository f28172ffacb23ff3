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
fn constant_time_compare() {
    assert!(ct_eq(b"secret", b"secret"));
    assert!(!ct_eq(b"secret", b"secreT"));
    assert!(!ct_eq(b"secret", b"secret2"));
    assert!(!ct_eq(b"", b"x"));
    assert!(ct_eq(b"", b""));
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
}
