//! Redaction of upstream error text before it is logged (issue 8 item 6): no key, no internal
//! path, bounded length, whatever the upstream wrote.

use cmo_edge_router::core::redact::{redact, DEFAULT_MAX_CHARS};
use proptest::prelude::*;

const KEY: &str = "pplx-9f8e7d6c5b4a39281706f5e4d3c2b1a0";

#[test]
fn the_routers_own_secrets_never_survive() {
    let text = format!("upstream said: invalid key {KEY} for org");
    let out = redact(&text, &[KEY, "lr-key-0001"], DEFAULT_MAX_CHARS);
    assert!(!out.contains(KEY), "{out}");
    assert!(out.contains("[redacted]"), "{out}");
    assert!(out.ends_with("for org"), "{out}");
    assert!(out.starts_with("upstream said: invalid key"), "{out}");
}

#[test]
fn credential_shaped_words_are_replaced() {
    for (text, gone) in [
        ("Authorization: Bearer abc.def.ghi rejected", "abc.def.ghi"),
        (
            "Incorrect API key provided: sk-proj-AbCd1234EfGh",
            "sk-proj-AbCd1234EfGh",
        ),
        ("GET /v1?api_key=s3cr3t&x=1 failed", "s3cr3t"),
        ("x-api-key: hunter2hunter2 refused", "hunter2hunter2"),
        ("token=eyJhbGciOiJIUzI1NiJ9 expired", "eyJhbGciOiJIUzI1NiJ9"),
        (
            "hash 0a1b2c3d4e5f60718293a4b5c6d7e8f9 mismatch",
            "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        ),
    ] {
        let out = redact(text, &[], DEFAULT_MAX_CHARS);
        assert!(!out.contains(gone), "{text} → {out}");
    }
    // Ordinary words and LightRAG's 12-hex error id stay readable.
    let out = redact(
        r#"{"detail":"Internal server error (error_id: 3f9a0c1b2d4e)"}"#,
        &[],
        DEFAULT_MAX_CHARS,
    );
    assert!(
        out.contains("3f9a0c1b2d4e") && out.contains("Internal server error"),
        "{out}"
    );
}

#[test]
fn paths_and_url_paths_are_removed() {
    let text = r#"Traceback: File "/app/lightrag/operate.py", line 12, in C:\srv\rag\main.py at ~/keys/prod.env see https://user:pw@internal.example:8443/admin/x?key=1"#;
    let out = redact(text, &[], DEFAULT_MAX_CHARS);
    for gone in [
        "/app/lightrag",
        "operate.py",
        "C:\\srv",
        "~/keys",
        "user:pw",
        "/admin/x",
        "key=1",
    ] {
        assert!(!out.contains(gone), "{gone} in {out}");
    }
    assert!(out.contains(r#""[path]"#), "{out}");
    assert!(out.contains("https://internal.example:8443/…"), "{out}");
}

#[test]
fn long_text_is_cut_on_a_character_boundary_and_control_characters_go() {
    let text = "é".repeat(1000);
    let out = redact(&text, &[], 10);
    assert_eq!(out.chars().count(), 11);
    assert!(out.ends_with('…'));
    assert_eq!(redact("a\r\nb\u{0}c", &[], 100), "a b c");
}

proptest! {
    /// Whatever surrounds it, a configured secret never reaches the log, and the output is
    /// bounded.
    #[test]
    fn a_secret_never_survives_and_length_is_bounded(
        before in ".{0,200}",
        after in ".{0,200}",
        secret in "[A-Za-z0-9_-]{8,40}",
        max in 1usize..400,
    ) {
        let text = format!("{before}{secret}{after}");
        let out = redact(&text, &[&secret], max);
        prop_assert!(!out.contains(&secret));
        prop_assert!(out.chars().count() <= max + 1);
    }
}
