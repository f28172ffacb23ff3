//! The front-door guard's pure rules (core::guard): body budget, media type, client token,
//! CORS, models, rate-limit keys, deployment checks, and the config rows behind them.

use cmo_edge_router::core::config::{self, Source};
use cmo_edge_router::core::digest::{hex, sha256, sha256_parts};
use cmo_edge_router::core::guard::body::BodyLimit;
use cmo_edge_router::core::guard::client::{check_client, ClientAuth, ClientCheck};
use cmo_edge_router::core::guard::cors::{self, AllowedOrigins};
use cmo_edge_router::core::guard::deployment::{
    config_problems, setup_problems, Deployment, SetupFacts, UrlPolicy,
};
use cmo_edge_router::core::guard::exposure::RoutingDetail;
use cmo_edge_router::core::guard::{media, models, ratelimit};
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::overrides::{apply_put, Put, PutOutcome};
use cmo_edge_router::core::store::OverridesDoc;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

fn map(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

proptest! {
    /// The small SHA-256 agrees with the RustCrypto `sha2` crate on any input, however split.
    #[test]
    fn sha256_agrees_with_the_sha2_crate(data in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..300) {
        use sha2::Digest;
        let want: [u8; 32] = sha2::Sha256::digest(&data).into();
        prop_assert_eq!(sha256(&data), want);
        let cut = cut.min(data.len());
        prop_assert_eq!(sha256_parts(&[&data[..cut], &data[cut..]]), want);
    }
}

#[test]
fn sha256_block_boundaries() {
    use sha2::Digest;
    for n in [55, 56, 57, 63, 64, 65, 119, 120, 128, 1000] {
        let data = vec![b'a'; n];
        let want: [u8; 32] = sha2::Sha256::digest(&data).into();
        assert_eq!(hex(&sha256(&data)), hex(&want), "length {n}");
    }
}

#[test]
fn body_budget_is_spent_while_reading() {
    let mut b = BodyLimit::new(10);
    assert!(b.declared(Some("10")).is_ok());
    assert_eq!(b.declared(Some(" 11 ")).unwrap_err().limit, 10);
    assert!(b.declared(None).is_ok(), "chunked: no length declared");
    assert!(
        b.declared(Some("lots")).is_ok(),
        "unparsable: the reading decides"
    );
    assert!(b.take(4).is_ok());
    assert!(b.take(6).is_ok(), "exactly the limit is fine");
    let e = b.take(1).unwrap_err();
    assert_eq!(b.read(), 11);
    assert!(e
        .to_string()
        .contains("limit of 10 bytes (LIGHTRAG_MAX_BODY_BYTES)"));
    let mut huge = BodyLimit::new(u64::MAX);
    assert!(huge.take(usize::MAX).is_ok());
}

#[test]
fn only_application_json_is_read() {
    for ok in [
        "application/json",
        "Application/JSON",
        "application/json; charset=utf-8",
        " application/json ;charset=UTF-8",
    ] {
        assert!(media::is_json(Some(ok)), "{ok}");
    }
    for bad in [
        None,
        Some(""),
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
        Some("application/json-seq"),
        Some("text/json"),
    ] {
        assert!(!media::is_json(bad), "{bad:?}");
    }
    let m = media::refusal("POST /query", Some("text/plain\u{0}\u{202e}"));
    assert!(m.contains("`text/plain\\u{0}\\u{202e}`"), "{m}");
    assert!(media::refusal("POST /query", None).contains("no Content-Type"));
}

fn client(d: Deployment, client_token: Option<&str>, auth: Option<&str>) -> ClientAuth {
    check_client(&ClientCheck {
        deployment: d,
        client_token,
        admin_token: Some("admin-tok"),
        authorization: auth,
    })
}

#[test]
fn client_token_verdicts() {
    use ClientAuth::*;
    use Deployment::*;
    let long = format!("Bearer {}", "x".repeat(100_000));
    for d in [Development, Staging, Production] {
        assert_eq!(client(d, Some("cli"), Some("Bearer cli")), Client);
        assert_eq!(
            client(d, Some("cli\n"), Some("Bearer cli")),
            Client,
            "stored newline"
        );
        assert_eq!(client(d, Some("cli"), Some("Bearer admin-tok")), Admin);
        assert_eq!(client(d, Some("cli"), None), Missing);
        assert_eq!(client(d, Some("cli"), Some("Bearer ")), Missing);
        assert_eq!(client(d, Some("cli"), Some("Basic Y2xp")), Missing);
        assert_eq!(client(d, Some("cli"), Some("Bearer clI")), Invalid);
        assert_eq!(client(d, Some("cli"), Some(&long)), Invalid);
        assert_eq!(client(d, Some("cli"), Some("Bearer clí")), Invalid);
    }
    // No client token: development is open (the admin token still marks an operator) …
    assert_eq!(client(Development, None, None), Open);
    assert_eq!(client(Development, Some(" \n"), Some("Bearer junk")), Open);
    assert_eq!(client(Development, None, Some("Bearer admin-tok")), Admin);
    // … production and staging refuse every chat request, the admin's too.
    for d in [Staging, Production] {
        assert_eq!(client(d, None, Some("Bearer admin-tok")), Unconfigured);
        assert_eq!(client(d, Some(""), None), Unconfigured);
    }
    assert!(Open.admitted() && Admin.admitted() && Client.admitted());
    let (status, code, msg) = Unconfigured.refusal().unwrap();
    assert_eq!((status, code), (503, "client_auth_unconfigured"));
    assert!(msg.contains("ROUTER_CLIENT_TOKEN"));
    assert_eq!(Missing.refusal().unwrap().0, 401);
    assert_eq!(Invalid.refusal().unwrap().0, 401);
    assert_eq!(Client.refusal(), None);
}

#[test]
fn origins_are_exact_and_normalised() {
    assert_eq!(
        cors::parse_origin("https://Chat.Example.org/").unwrap(),
        "https://chat.example.org"
    );
    assert_eq!(
        cors::parse_origin("http://127.0.0.1:5173").unwrap(),
        "http://127.0.0.1:5173"
    );
    for bad in [
        "*",
        "null",
        "chat.example.org",
        "https://",
        "https://chat.example.org/path",
        "https://u:p@chat.example.org",
        "https://*.example.org",
        "ftp://x.org",
        "https://a.org?x=1",
        "https://ex ample.org",
    ] {
        assert!(cors::parse_origin(bad).is_err(), "{bad}");
    }
    let o = AllowedOrigins::new(BTreeSet::from(["https://chat.example.org".to_string()]));
    assert!(o.allows("https://chat.example.org"));
    assert!(o.allows("https://CHAT.example.org"));
    assert!(!o.allows("https://chat.example.org.evil.com"));
    assert!(!o.allows("http://chat.example.org"));
    assert!(!o.allows("null"));
    let pre = cors::preflight_headers(&o, Some("https://chat.example.org")).unwrap();
    let get = |h: &str| pre.iter().find(|(k, _)| *k == h).map(|(_, v)| v.as_str());
    assert_eq!(
        get("access-control-allow-origin"),
        Some("https://chat.example.org")
    );
    assert_eq!(get("access-control-allow-methods"), Some("POST, OPTIONS"));
    assert!(get("access-control-allow-headers")
        .unwrap()
        .contains("content-type"));
    assert_eq!(get("access-control-max-age"), Some("600"));
    assert_eq!(get("vary"), Some("Origin"));
    assert!(cors::preflight_headers(&o, Some("https://evil.example")).is_none());
    assert!(cors::preflight_headers(&o, None).is_none());
    assert!(cors::response_headers(&o, Some("https://evil.example")).is_none());
    let r = cors::response_headers(&o, Some("https://chat.example.org")).unwrap();
    assert!(r[1].1.contains("etag"));
}

#[test]
fn origins_variable_reports_bad_entries_and_keeps_good_ones() {
    let l = config::load(
        &map(
            json!({"ROUTER_ALLOWED_ORIGINS": "https://a.example.org, *, https://b.example.org/x"}),
        ),
        None,
        0,
    );
    assert!(l.config.allowed_origins.allows("https://a.example.org"));
    assert_eq!(
        l.problems
            .iter()
            .map(|p| p.variable.as_str())
            .collect::<Vec<_>>(),
        ["ROUTER_ALLOWED_ORIGINS", "ROUTER_ALLOWED_ORIGINS"]
    );
    assert!(config::load(&Map::new(), None, 0)
        .config
        .allowed_origins
        .is_empty());
}

#[test]
fn models_are_an_allow_list() {
    let allowed = models::default_allowed();
    assert_eq!(allowed.iter().collect::<Vec<_>>(), ["sonar"]);
    assert_eq!(models::resolve(&allowed, Some("sonar")).unwrap(), "sonar");
    assert_eq!(models::resolve(&allowed, None).unwrap(), "sonar");
    assert_eq!(models::resolve(&allowed, Some("  ")).unwrap(), "sonar");
    let e = models::resolve(&allowed, Some("sonar-deep-research")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "model `sonar-deep-research` is not allowed; use one of: sonar (LIGHTRAG_ALLOWED_MODELS)"
    );
    assert!(
        models::resolve(&allowed, Some("SONAR")).is_err(),
        "exact names"
    );
    let pro = BTreeSet::from(["sonar-pro".to_string(), "sonar-reasoning".to_string()]);
    assert_eq!(models::resolve(&pro, None).unwrap(), "sonar-pro");
    let l = config::load(
        &map(json!({"LIGHTRAG_ALLOWED_MODELS": "sonar, sonar-pro"})),
        None,
        0,
    );
    assert_eq!(l.config.allowed_models.len(), 2);
    let hostile = models::resolve(&allowed, Some("x\u{202e}\n\u{0}"))
        .unwrap_err()
        .to_string();
    assert!(
        !hostile.contains('\n') && !hostile.contains('\u{202e}'),
        "{hostile}"
    );
}

#[test]
fn rate_limit_keys_are_opaque_and_per_subject() {
    let a = ratelimit::limit_key("salt", ratelimit::Subject::Key("user-42"));
    let b = ratelimit::limit_key("salt", ratelimit::Subject::Key("user-43"));
    let ip = ratelimit::limit_key("salt", ratelimit::Subject::Address(Some("203.0.113.9")));
    assert!(a.starts_with("k:") && a.len() == 34, "{a}");
    assert!(ip.starts_with("ip:"));
    assert_ne!(a, b);
    assert_eq!(
        a,
        ratelimit::limit_key("salt", ratelimit::Subject::Key("user-42"))
    );
    assert_ne!(
        a,
        ratelimit::limit_key("other", ratelimit::Subject::Key("user-42"))
    );
    assert!(!a.contains("user") && !ip.contains("203"));
    // A key that looks like an address is not the address's bucket.
    assert_ne!(
        ratelimit::limit_key("s", ratelimit::Subject::Key("1.2.3.4")),
        ratelimit::limit_key("s", ratelimit::Subject::Address(Some("1.2.3.4")))
    );
    assert_eq!(ratelimit::retry_after_s(0), 60);
    assert_eq!(ratelimit::retry_after_s(59_001), 1);
    assert_eq!(ratelimit::retry_after_s(59_999), 1);
    assert_eq!(ratelimit::retry_after_s(60_000), 60);
    assert_eq!(ratelimit::retry_after_s(30_500), 30);
}

#[test]
fn routing_detail_is_for_operators() {
    assert!(RoutingDetail::for_request(true, false).shown());
    assert!(RoutingDetail::for_request(false, true).shown());
    assert!(!RoutingDetail::for_request(false, false).shown());
}

#[test]
fn deployment_and_upstream_urls() {
    // Unset is production: a forgotten variable fails closed.
    let l = config::load(&Map::new(), None, 0);
    assert_eq!(l.config.deployment, Deployment::Production);
    let l = config::load(&map(json!({"ROUTER_ENV": "Development"})), None, 0);
    assert_eq!(l.config.deployment, Deployment::Development);
    let l = config::load(&map(json!({"ROUTER_ENV": "qa"})), None, 0);
    assert_eq!(l.config.deployment, Deployment::Production);
    assert_eq!(l.problems[0].variable, "ROUTER_ENV");

    let https = UrlPolicy::HttpsOnly;
    assert!(https
        .check(Upstream::Perplexity, "https://api.perplexity.ai")
        .is_ok());
    assert!(https
        .check(Upstream::Perplexity, "HTTPS://api.perplexity.ai")
        .is_ok());
    let e = https
        .check(Upstream::Lightrag, "http://rag.internal")
        .unwrap_err();
    assert!(e.starts_with("LIGHTRAG_BASE_URL is not https"), "{e}");
    assert!(UrlPolicy::AllowInsecure
        .check(Upstream::Lightrag, "http://127.0.0.1:9")
        .is_ok());

    // The config's own problems: http upstreams and the public salt outside development.
    let prod = config::load(
        &map(json!({"LIGHTRAG_BASE_URL": "http://rag.internal", "ROUTER_ENV": "production"})),
        None,
        0,
    );
    let p = config_problems(&prod.config);
    assert_eq!(
        p.iter().map(|p| p.variable.as_str()).collect::<Vec<_>>(),
        ["LIGHTRAG_BASE_URL", "LIGHTRAG_USER_HASH_SALT"]
    );
    assert!(p[0].is_error() && !p[1].is_error());
    let dev = config::load(
        &map(json!({"LIGHTRAG_BASE_URL": "http://rag.internal", "ROUTER_ENV": "development"})),
        None,
        0,
    );
    assert!(config_problems(&dev.config).is_empty());
    let secret_salt = config::load(
        &map(
            json!({"LIGHTRAG_BASE_URL": "https://rag.example.org", "LIGHTRAG_USER_HASH_SALT": "s3cr3t-salt"}),
        ),
        None,
        0,
    );
    assert!(config_problems(&secret_salt.config).is_empty());

    let none = SetupFacts {
        client_token: false,
        rate_limiter: false,
    };
    let p = setup_problems(Deployment::Production, &none);
    assert_eq!(
        p.iter().map(|p| p.variable.as_str()).collect::<Vec<_>>(),
        ["ROUTER_CLIENT_TOKEN", "ROUTER_RATE_LIMIT"]
    );
    assert_eq!(p[0].source, Source::Secrets);
    assert!(setup_problems(Deployment::Development, &none).is_empty());
    let all = SetupFacts {
        client_token: true,
        rate_limiter: true,
    };
    assert!(setup_problems(Deployment::Production, &all).is_empty());
}

#[test]
fn base_urls_and_router_env_are_never_runtime_overrides() {
    let vars = map(json!({"PERPLEXITY_BASE_URL": "https://api.perplexity.ai"}));
    let current = OverridesDoc::default();
    for (k, v) in [
        ("PERPLEXITY_BASE_URL", json!("https://attacker.example")),
        ("LIGHTRAG_BASE_URL", json!("https://attacker.example")),
        ("ROUTER_ENV", json!("development")),
        ("ROUTER_CLIENT_TOKEN", json!("x")),
    ] {
        let ov = map(json!({ k: v }));
        match apply_put(&Put {
            vars: &vars,
            current: &current,
            if_match: "*",
            overrides: &ov,
            now_ms: 1,
        }) {
            PutOutcome::Rejected(p) => {
                assert_eq!(p.len(), 1, "{p:?}");
                assert_eq!(p[0].variable, k);
                assert_eq!(p[0].source, Source::Override);
            }
            other => panic!("{k}: {other:?}"),
        }
        // An override already stored (before this rule) is ignored, with a problem.
        let l = config::load(&vars, Some(&ov), 3);
        assert_eq!(l.config.perplexity_base_url, "https://api.perplexity.ai");
        assert_eq!(l.config.deployment, Deployment::Production);
    }
}

#[test]
fn the_salt_is_shown_only_as_a_fingerprint() {
    let l = config::load(
        &map(json!({"LIGHTRAG_USER_HASH_SALT": "very-secret-salt"})),
        None,
        0,
    );
    assert_eq!(l.config.user_hash_salt.as_str(), "very-secret-salt");
    let shown = serde_json::to_string(&l.config).unwrap();
    assert!(!shown.contains("very-secret-salt"), "{shown}");
    let fp = l.config.user_hash_salt.fingerprint();
    assert!(fp.starts_with("sha256:") && fp.len() == 19, "{fp}");
    assert!(shown.contains(&fp));
    assert!(!format!("{:?}", l.config).contains("very-secret-salt"));
    // A refused salt is not echoed in its problem either.
    let long = "s".repeat(5000);
    let l = config::load(&map(json!({"LIGHTRAG_USER_HASH_SALT": long})), None, 0);
    assert!(!serde_json::to_string(&l.problems)
        .unwrap()
        .contains("sssss"));
}

#[test]
fn the_salt_is_never_a_runtime_override() {
    // The salt is a secret in production (knowing it, anyone can choose ids in the LightRAG
    // cohort): an override would store it in KV and GET /admin/config would echo it. Found by
    // the secrets test (tests/node/secrets.test.mjs): PUT /admin/config accepted it.
    let vars = map(json!({"LIGHTRAG_USER_HASH_SALT": "vars-salt"}));
    let ov = map(json!({"LIGHTRAG_USER_HASH_SALT": "override-salt-Xy7"}));
    match apply_put(&Put {
        vars: &vars,
        current: &OverridesDoc::default(),
        if_match: "*",
        overrides: &ov,
        now_ms: 1,
    }) {
        PutOutcome::Rejected(p) => {
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(p[0].variable, "LIGHTRAG_USER_HASH_SALT");
            assert_eq!(p[0].source, Source::Override);
            let shown = serde_json::to_string(&p).unwrap();
            assert!(!shown.contains("override-salt"), "{shown}");
        }
        other => panic!("{other:?}"),
    }
    // An override stored before this rule is ignored (with a problem that does not echo it).
    let l = config::load(&vars, Some(&ov), 3);
    assert_eq!(l.config.user_hash_salt.as_str(), "vars-salt");
    let shown = serde_json::to_string(&l.problems).unwrap();
    assert!(
        shown.contains("LIGHTRAG_USER_HASH_SALT") && !shown.contains("override-salt"),
        "{shown}"
    );
}
