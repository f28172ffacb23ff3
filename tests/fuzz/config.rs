//! Configuration targets: wrangler vars + runtime overrides through `config::load`, the
//! `PUT /admin/config` body, and `LIGHTRAG_ROUTING_RULES` rule lists.
//!
//! What must hold for any input: no panic; every field of the loaded config inside the range
//! its variable documents (so a hostile value can only ever select a default); every rejected
//! value reported as a problem that names a variable and says what is accepted; secrets given
//! as overrides never echoed anywhere in the status document; a valid override set survives its
//! KV round trip (serialise → parse → load) unchanged; and a rule list yields exactly one rule or
//! one error per element.

use crate::gen::{any_json, body, close, edge_number, hostile_string, object, scalar};
use cmo_edge_router::core::breaker::BreakerPolicy;
use cmo_edge_router::core::cohort::Percent;
use cmo_edge_router::core::config::{self, Loaded, Source, KNOWN_VARIABLES, SECRET_VARIABLES};
use cmo_edge_router::core::decide::{self, RouteRequest, RouteState};
use cmo_edge_router::core::overrides;
use cmo_edge_router::core::rules::{self, Query, QueryFacts, MAX_RULES};
use cmo_edge_router::core::store::{self, OverridesDoc, CONFIG_KEY};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{json, Map, Value};

/// A marker no generated non-secret value contains, used as the value of secret overrides.
const SECRET_MARK: &str = "s3cr3t-DO-NOT-ECHO";

// ---- values ------------------------------------------------------------------------------

fn boolean_text() -> BoxedStrategy<Value> {
    prop_oneof![
        prop::sample::select(vec![
            "true", "false", "TRUE", " yes ", "no", "on", "OFF", "1", "0", "ture", "2", "",
        ])
        .prop_map(|s| json!(s)),
        any::<bool>().prop_map(Value::Bool),
        prop::sample::select(vec![json!(1), json!(0), json!(0.5), json!(1.0)]),
    ]
    .boxed()
}

fn number_text(lo: f64, hi: f64) -> BoxedStrategy<Value> {
    prop_oneof![
        3 => (lo..=hi).prop_map(|x| json!(x.to_string())),
        2 => (lo..=hi).prop_map(|x| json!(x)),
        2 => ((lo as i64)..=(hi as i64)).prop_map(|x| json!(x.to_string())),
        1 => ((lo as i64)..=(hi as i64)).prop_map(|x| json!(x)),
        1 => edge_number(),
        1 => edge_number().prop_map(|n| json!(format!(" {n} "))),
    ]
    .boxed()
}

fn url() -> BoxedStrategy<Value> {
    prop_oneof![
        prop::sample::select(vec![
            "https://api.perplexity.ai",
            "http://127.0.0.1:9621",
            "https://x.example/",
            "http://",
            "https://",
            "https:///",
            "http:////////",
            "https://a b",
            "https://a\u{0}",
            "ftp://x",
            "HTTPS://UPPER.example",
            "https://ok.example//",
            "https://ok.example:99999",
            "//no-scheme.example",
            "https://[::1]:9621",
            "http://x",
            "http://xy",
        ])
        .prop_map(|s| json!(s)),
        "https?://[a-z0-9.:/_-]{0,30}".prop_map(|s| json!(s)),
    ]
    .boxed()
}

fn list() -> BoxedStrategy<Value> {
    prop_oneof![
        prop::collection::vec("[a-z0-9@._-]{0,12}", 0..5).prop_map(|v| json!(v.join(","))),
        prop::collection::vec("[a-z0-9@._-]{0,12}", 0..5)
            .prop_map(|v| json!(serde_json::to_string(&v).unwrap_or_default())),
        prop::collection::vec(scalar(), 0..5).prop_map(Value::Array),
        Just(json!("[not json")),
        Just(json!(" [\"a\", 1, null, \"\"]")),
        ("[a-z]{1,3}", 700usize..900).prop_map(|(s, n)| json!([s.repeat(n)])),
    ]
    .boxed()
}

/// A value of the right kind for `name` most of the time, anything otherwise.
fn value_for(name: &str) -> BoxedStrategy<Value> {
    let plausible = match name {
        config::ROLLOUT_PERCENTAGE => number_text(-1.0, 101.0),
        config::INTEGRATION_TIMEOUT_SECONDS => number_text(-1.0, 700.0),
        config::MIN_QUALITY_THRESHOLD
        | config::CB_FAILURE_RATE_THRESHOLD
        | config::CB_HALF_OPEN_PROBE_SHARE
        | config::CB_JITTER
        | config::QUALITY_GATE_PROBE_SHARE => number_text(-0.1, 1.1),
        config::CB_FAILURE_THRESHOLD
        | config::CB_HALF_OPEN_SUCCESSES
        | config::CB_WINDOW_SIZE
        | config::CB_MINIMUM_CALLS => number_text(-1.0, 300.0),
        config::CB_SLOW_CALL_MS => number_text(0.0, 700_000.0),
        config::CB_RECOVERY_TIMEOUT | config::CB_MAX_RECOVERY_TIMEOUT => {
            number_text(0.0, 800_000.0)
        }
        config::QUALITY_GATE_MIN_SAMPLES => number_text(0.0, 2_000_000.0),
        config::MAX_BODY_BYTES => number_text(0.0, 20_000_000.0),
        config::STATE_REFRESH_SECONDS | config::METRICS_FLUSH_SECONDS => {
            number_text(0.0, 100_000.0)
        }
        config::USER_HASH_SALT => hostile_string().prop_map(Value::String).boxed(),
        config::FORCE_USER_COHORT => prop::sample::select(vec![
            "lightrag",
            "perplexity",
            " LightRAG ",
            "none",
            "NONE",
            "",
            "both",
        ])
        .prop_map(|s| json!(s))
        .boxed(),
        config::QUERY_MODE => prop::sample::select(vec![
            "local", "global", "hybrid", "naive", "mix", "bypass", " MIX ", "graph",
        ])
        .prop_map(|s| json!(s))
        .boxed(),
        config::LIGHTRAG_BASE_URL | config::PERPLEXITY_BASE_URL => url(),
        config::ALLOW_USERS | config::DENY_USERS => list(),
        config::ROUTING_RULES => prop_oneof![
            rule_list(),
            rule_list().prop_map(|v| Value::String(v.to_string())),
        ]
        .boxed(),
        _ => boolean_text(),
    };
    prop_oneof![6 => plausible, 1 => scalar(), 1 => any_json()].boxed()
}

/// Variable names: the known ones, secrets, near misses and other workers' variables.
fn name() -> BoxedStrategy<String> {
    prop_oneof![
        12 => prop::sample::select(KNOWN_VARIABLES).prop_map(str::to_string),
        1 => prop::sample::select(SECRET_VARIABLES).prop_map(str::to_string),
        2 => prop::sample::select(vec![
            "LIGHTRAG_ROLLOUT_PERCENT", "lightrag_rollout_percentage", "LIGHTRAG_", "LIGHTRAG_X",
            "LIGHTRAG_ROLLOUT_PERCENTAGE ", "ADMIN_EMAIL", "ROUTER_ALLOWED_ORIGINS", "", "__proto__",
        ])
        .prop_map(str::to_string),
    ]
    .boxed()
}

/// A variable map: a few entries, each with a value suited to its name (secrets get a marked
/// value so the test can tell whether it leaked). `strings` makes every value a string, as
/// wrangler `[vars]` are.
fn var_map(max: usize, strings: bool) -> BoxedStrategy<Map<String, Value>> {
    prop::collection::vec(
        name().prop_flat_map(|n| {
            let v = if SECRET_VARIABLES.contains(&n.as_str()) {
                "[a-z]{0,6}"
                    .prop_map(|s| json!(format!("{SECRET_MARK}{s}")))
                    .boxed()
            } else {
                value_for(&n)
            };
            (Just(n), v)
        }),
        0..max,
    )
    .prop_map(move |kv| {
        kv.into_iter()
            .map(|(k, v)| match v {
                Value::String(_) => (k, v),
                other if strings => (k, Value::String(other.to_string())),
                other => (k, other),
            })
            .collect()
    })
    .boxed()
}

// ---- rule lists --------------------------------------------------------------------------

/// Regex fragments regex-lite accepts, rejects, or finds expensive.
fn regex() -> BoxedStrategy<String> {
    let atom = prop::sample::select(vec![
        "a",
        "news",
        ".",
        "\\d",
        "\\w",
        "\\s",
        "\\b",
        "[a-z]",
        "[^0-9]",
        "(?i)x",
        "^",
        "$",
        "\\p{L}",
        "[",
        ")",
        "(",
        "*",
        "+?",
        "{2,3}",
        "{1000}",
        "(a|b)",
        "(?:ab)",
        "\\",
        "\\x{10FFFF}",
        "(?P<n>z)",
        "[[:alpha:]]",
        "中",
        "🧪",
        "a{0,65535}",
        "(a*)*",
        "((((((((((x))))))))))",
    ]);
    prop_oneof![
        4 => prop::collection::vec(atom, 1..8).prop_map(|v| v.concat()),
        1 => ("[a-z]{1,2}", 50usize..300).prop_map(|(s, n)| s.repeat(n)),
        1 => (1usize..60).prop_map(|n| format!("{}a{}", "(".repeat(n), ")".repeat(n))),
    ]
    .boxed()
}

/// Words rule keywords and queries share, so keyword conditions actually meet their words:
/// ASCII and not, glued to punctuation or other letters, in odd case.
const VOCABULARY: &[&str] = &[
    "news",
    "latest",
    "pathway",
    "mechanism",
    "what",
    "is",
    "vs",
    "NEWS",
    "newsletter",
    "mTOR",
    "2024",
    "current guidelines",
    "中文",
    "café",
    "Café",
    "ÉTAT",
    "x",
    "a-b",
    "c++",
    "",
];

fn phrase() -> BoxedStrategy<String> {
    (
        prop::collection::vec(prop::sample::select(VOCABULARY), 1..6),
        prop::sample::select(vec![" ", ", ", "-", "", ".", "\n", "_"]),
    )
        .prop_map(|(w, sep)| w.join(sep))
        .boxed()
}

fn strings(max: usize) -> BoxedStrategy<Value> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(VOCABULARY).prop_map(str::to_string),
            2 => "[a-z]{1,8}( [a-z]{1,8})?",
            1 => hostile_string()
        ],
        0..max,
    )
    .prop_map(|v| json!(v))
    .boxed()
}

fn when() -> BoxedStrategy<Value> {
    let len = prop_oneof![3 => (0u64..300).prop_map(|n| json!(n)), 1 => edge_number()].boxed();
    let query_type = prop_oneof![
        prop::sample::select(vec![
            "temporal",
            "mechanism",
            "definition",
            "comparison",
            "general",
            "other"
        ])
        .prop_map(|s| json!(s)),
        prop::collection::vec(
            prop::sample::select(vec!["temporal", "mechanism", "general", "Temporal"]),
            0..3
        )
        .prop_map(|v| json!(v)),
    ]
    .boxed();
    let header = object(vec![
        (
            "name",
            prop::sample::select(vec!["x-client", "X-Client", "", " ", "user-agent"])
                .prop_map(|s| json!(s))
                .boxed(),
        ),
        ("equals", hostile_string().prop_map(Value::String).boxed()),
        ("contains", hostile_string().prop_map(Value::String).boxed()),
    ]);
    object(vec![
        ("min_length", len.clone()),
        ("max_length", len),
        ("keywords_any", strings(4)),
        ("keywords_all", strings(3)),
        ("regex", regex().prop_map(Value::String).boxed()),
        (
            "regex_case_insensitive",
            any::<bool>().prop_map(Value::Bool).boxed(),
        ),
        ("query_type", query_type),
        (
            "headers",
            prop::collection::vec(header, 0..3)
                .prop_map(Value::Array)
                .boxed(),
        ),
        ("users", strings(3)),
    ])
}

fn rule() -> BoxedStrategy<Value> {
    object(vec![
        (
            "name",
            prop_oneof![
                4 => "[a-z0-9_.-]{1,12}".prop_map(Value::String),
                1 => hostile_string().prop_map(Value::String),
                1 => "[a-z]{65}".prop_map(Value::String),
            ]
            .boxed(),
        ),
        ("when", prop_oneof![6 => when(), 1 => any_json()].boxed()),
        (
            "action",
            prop::sample::select(vec![
                "lightrag",
                "perplexity",
                "rollout",
                "LightRAG",
                "drop",
            ])
            .prop_map(|s| json!(s))
            .boxed(),
        ),
    ])
}

/// A rule list: mostly a JSON array of rule-shaped objects, sometimes more than [`MAX_RULES`].
pub fn rule_list() -> BoxedStrategy<Value> {
    prop_oneof![
        8 => prop::collection::vec(prop_oneof![8 => rule(), 1 => any_json()], 0..6).prop_map(Value::Array),
        1 => (rule(), (MAX_RULES - 2)..(MAX_RULES + 3)).prop_map(|(r, n)| {
            Value::Array((0..n).map(|i| {
                let mut r = r.clone();
                if let Some(o) = r.as_object_mut() { o.insert("name".into(), json!(format!("r{i}"))); }
                r
            }).collect())
        }),
        1 => any_json(),
    ]
    .boxed()
}

// ---- checks ------------------------------------------------------------------------------

fn ensure(ok: bool, what: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if ok {
        Ok(())
    } else {
        Err(TestCaseError::fail(what()))
    }
}

/// Everything a loaded config promises, whatever went in.
fn check_loaded(
    l: &Loaded,
    vars: &Map<String, Value>,
    overrides: Option<&Map<String, Value>>,
) -> Result<(), TestCaseError> {
    let c = &l.config;
    let b = c.breaker.settings();
    let g = c.quality_gate.settings();
    let in_range = |x: f64, lo: f64, hi: f64| x.is_finite() && x >= lo && x <= hi;
    ensure(c.rollout_percentage <= Percent::FULL, || {
        "rollout above 100 %".into()
    })?;
    ensure(
        c.integration_timeout_seconds > 0.0
            && in_range(c.integration_timeout_seconds, 0.0, 600.0)
            && in_range(g.min_quality, 0.0, 1.0)
            && in_range(g.probe_share, 0.0, 1.0)
            && (1..=1_000_000).contains(&g.min_samples)
            && (1024..=10 * 1024 * 1024).contains(&c.max_body_bytes)
            && (1..=3600).contains(&c.state_refresh_seconds)
            && (10..=86_400).contains(&c.metrics_flush_seconds),
        || format!("a scalar field out of its documented range: {c:?}"),
    )?;
    ensure(
        b.minimum_calls >= 1
            && b.minimum_calls <= b.window_size
            && b.max_recovery_timeout_ms >= b.recovery_timeout_ms
            && b.recovery_timeout_ms >= 1
            && b.failure_rate_threshold > 0.0
            && b.failure_rate_threshold <= 1.0
            && b.half_open_probe_share > 0.0
            && b.half_open_probe_share <= 1.0
            && in_range(b.jitter, 0.0, 1.0),
        || format!("inconsistent breaker config: {b:?}"),
    )?;
    // The config holds the policy the breaker runs on: its settings pass the policy's own
    // validation (a value the loader accepted must not be one the breaker would refuse).
    let again = BreakerPolicy::try_new(*b);
    ensure(again.is_ok(), || {
        format!("the loaded breaker settings fail their own validation: {again:?} from {b:?}")
    })?;
    for u in [&c.lightrag_base_url, &c.perplexity_base_url] {
        let host = u
            .strip_prefix("https://")
            .or_else(|| u.strip_prefix("http://"))
            .unwrap_or_default();
        ensure(
            !host.is_empty() && !host.starts_with('/') && !u.chars().any(char::is_whitespace),
            || format!("base URL {u:?} has no host"),
        )?;
    }
    ensure(c.user_hash_salt.as_str().len() <= 2048, || {
        "salt too long".into()
    })?;
    ensure(
        c.allow_users
            .iter()
            .chain(&c.deny_users)
            .all(|u| !u.is_empty() && u.len() <= 2048 && u.trim() == u),
        || "a list entry is empty, untrimmed or too long".into(),
    )?;
    ensure(c.routing_rules.len() <= MAX_RULES, || {
        "too many rules".into()
    })?;
    for p in &l.problems {
        let given = match p.source {
            Source::Vars => vars.contains_key(&p.variable),
            Source::Override => overrides.is_some_and(|o| o.contains_key(&p.variable)),
            // A missing secret or binding is reported whatever the inputs were.
            Source::Secrets => true,
        };
        ensure(
            given || KNOWN_VARIABLES.contains(&p.variable.as_str()),
            || format!("problem names no variable that was given: {p:?}"),
        )?;
        ensure(!p.message.trim().is_empty(), || {
            format!("problem without a message: {p:?}")
        })?;
        ensure(p.value.chars().count() <= 121, || {
            format!("problem echoes a long value: {p:?}")
        })?;
    }
    // Secrets given as overrides are refused and never echoed, and never reach the config.
    // (A value under a misspelt name is echoed like any unknown variable: nothing can tell it
    // is a secret.)
    let shown = serde_json::to_string(&l.config).map_err(|e| TestCaseError::fail(e.to_string()))?;
    ensure(!shown.contains(SECRET_MARK), || {
        format!("a secret reached the config: {shown}")
    })?;
    for p in &l.problems {
        if SECRET_VARIABLES.contains(&p.variable.as_str()) {
            ensure(p.value == "<redacted>", || {
                format!("a secret was echoed: {p:?}")
            })?;
        }
    }
    if let Some(o) = overrides {
        for s in SECRET_VARIABLES {
            if o.contains_key(*s) {
                ensure(
                    l.problems
                        .iter()
                        .any(|p| p.variable == *s && p.source == Source::Override),
                    || format!("override of secret {s} not refused"),
                )?;
            }
        }
        // Overrides win: a readable boolean override is what the config says.
        if let Some(b) = o
            .get(config::INTEGRATION_ENABLED)
            .and_then(config::parse_bool)
        {
            ensure(c.integration_enabled == b, || {
                "integration override ignored".into()
            })?;
        }
        if let Some(b) = o
            .get(config::EMERGENCY_ROLLBACK)
            .and_then(config::parse_bool)
        {
            ensure(c.emergency_rollback == b, || {
                "rollback override ignored".into()
            })?;
        }
    }
    Ok(())
}

/// The status API shows the config; two loads of the same input must show the same thing.
fn shown(l: &Loaded) -> String {
    serde_json::to_string(l).unwrap_or_default()
}

/// Vars (strings, as wrangler gives them) and overrides (native JSON) through `config::load`.
pub fn load_vars_and_overrides() {
    crate::harness::run(
        "config_load",
        (
            var_map(10, true),
            prop::option::of(var_map(10, false)),
            any::<u64>(),
        ),
        |(vars, overrides, version)| {
            let l = config::load(&vars, overrides.as_ref(), version);
            check_loaded(&l, &vars, overrides.as_ref())?;
            prop_assert_eq!(l.config.version, version);
            let again = config::load(&vars, overrides.as_ref(), version);
            prop_assert_eq!(shown(&l), shown(&again));
            Ok(())
        },
    );
}

/// `PUT /admin/config` bodies, damaged or not: parse, validate against the vars, and when the
/// admin API would store the set, its KV document must round-trip to the same config.
pub fn admin_config_body() {
    let doc = var_map(8, false)
        .prop_flat_map(|m| {
            prop_oneof![
                Just(Value::Object(m.clone())),
                Just(json!({ "overrides": m })),
            ]
        })
        .boxed();
    let version = prop_oneof![4 => 0u64..100, 1 => Just(u64::MAX), 1 => any::<u64>()];
    let if_match = prop_oneof![
        4 => Just(None),
        1 => prop::sample::select(vec!["*", "W/\"v1\"", "\"v0\", \"v1\"", "", "v1"])
            .prop_map(|s| Some(s.to_string())),
        1 => hostile_string().prop_map(Some),
    ];
    crate::harness::run(
        "admin_config_body",
        (var_map(6, true), body(doc), version, if_match, any::<u64>()),
        |(vars, bytes, version, if_match, now)| {
            let overrides = match overrides::parse_body(&bytes) {
                Ok(o) => o,
                Err(e) => {
                    prop_assert!(!e.to_string().is_empty() && !e.code().is_empty());
                    return Ok(());
                }
            };
            // The stored set's version comes from KV; the header is the operator's (None: the
            // ETag they just read).
            let current = OverridesDoc {
                version,
                ..OverridesDoc::default()
            };
            let header = if_match.unwrap_or_else(|| overrides::etag(version));
            let put = overrides::Put {
                vars: &vars,
                current: &current,
                if_match: &header,
                overrides: &overrides,
                now_ms: now,
            };
            let (stored, l) = match overrides::apply_put(&put) {
                overrides::PutOutcome::Stale { current_etag } => {
                    prop_assert_eq!(current_etag, overrides::etag(version));
                    prop_assert!(!overrides::if_match_allows(&header, version));
                    return Ok(());
                }
                overrides::PutOutcome::Rejected(problems) => {
                    prop_assert!(!problems.is_empty());
                    for p in &problems {
                        prop_assert_eq!(p.source, Source::Override);
                        prop_assert!(!p.message.trim().is_empty());
                    }
                    let l = config::load(&vars, Some(&overrides), version);
                    check_loaded(&l, &vars, Some(&overrides))?;
                    return Ok(());
                }
                overrides::PutOutcome::Stored { doc, loaded } => (doc, loaded),
            };
            check_loaded(&l, &vars, Some(&overrides))?;
            prop_assert!(
                stored.version > version || version == u64::MAX,
                "the stored version did not move past {}",
                version
            );
            let text =
                serde_json::to_string(&stored).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let read: OverridesDoc = store::parse_value(CONFIG_KEY, &text)
                .map_err(|e| TestCaseError::fail(format!("stored overrides do not parse: {e}")))?;
            let reloaded = config::load(&vars, Some(&read.overrides), read.version);
            // Other isolates load the set from the KV text, the one that took the PUT from the
            // body: the same config (floats to within serde_json's last-place rounding).
            let (a, b) = (
                serde_json::to_value(&*l).map_err(|e| TestCaseError::fail(e.to_string()))?,
                serde_json::to_value(&reloaded).map_err(|e| TestCaseError::fail(e.to_string()))?,
            );
            prop_assert!(close(&a, &b), "config changed through KV:\n{a}\n{b}");
            Ok(())
        },
    );
}

/// Rule lists straight into `rules::parse`, then matched against hostile queries and headers.
pub fn routing_rules() {
    let headers = prop::collection::vec(
        (
            prop::sample::select(vec!["x-client", "X-CLIENT", "user-agent", ""])
                .prop_map(str::to_string),
            hostile_string(),
        ),
        0..3,
    );
    crate::harness::run(
        "routing_rules",
        (
            rule_list(),
            prop_oneof![2 => phrase(), 1 => hostile_string()],
            prop::option::of(hostile_string()),
            headers,
        ),
        |(list, query, key, headers)| {
            let parsed = rules::parse(&list);
            match list.as_array() {
                Some(items) => prop_assert_eq!(
                    parsed.rules.len() + parsed.errors.len(),
                    items.len(),
                    "every element is a rule or an error"
                ),
                None => prop_assert!(parsed.rules.is_empty() && parsed.errors.len() == 1),
            }
            prop_assert!(parsed.rules.len() <= MAX_RULES);
            for e in &parsed.errors {
                prop_assert!(!e.reason.to_string().trim().is_empty());
            }
            let mut names: Vec<&str> = parsed.rules.iter().map(|r| r.name()).collect();
            names.sort_unstable();
            names.dedup();
            prop_assert_eq!(names.len(), parsed.rules.len(), "duplicate rule names");
            let q = Query::new(&query, None, key.as_deref(), &headers);
            let first = rules::first_match(&parsed.rules, &q).map(|r| r.name().to_string());
            // A rule shows as what the operator wrote; reading that back gives the same rules,
            // matching the same query.
            let shown = serde_json::to_value(&parsed.rules)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let again = rules::parse(&shown);
            prop_assert!(
                again.errors.is_empty(),
                "shown rules do not parse back: {:?}",
                again.errors
            );
            prop_assert_eq!(again.rules.len(), parsed.rules.len());
            let q2 = Query::new(&query, None, key.as_deref(), &headers);
            let first2 = rules::first_match(&again.rules, &q2).map(|r| r.name().to_string());
            prop_assert_eq!(&first, &first2);
            // The fast path (facts computed once: a sorted word list for single-word keywords)
            // picks the same rule as the plain search of the text.
            let facts = QueryFacts::new(&query);
            let q3 = Query::new(&query, Some(&facts), key.as_deref(), &headers);
            let fast = rules::first_match(&parsed.rules, &q3).map(|r| r.name().to_string());
            prop_assert_eq!(
                &fast,
                &first,
                "fast path and plain text disagree on {:?}",
                query
            );
            // And so does the router's own decision.
            let cfg = config::Config {
                integration_enabled: true,
                enable_conditional_routing: true,
                routing_rules: parsed.rules.clone(),
                ..config::defaults()
            };
            let lower: Vec<(String, String)> = headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                .collect();
            let req = RouteRequest {
                headers: &lower,
                ..RouteRequest::new(key.as_deref(), query.as_str())
            };
            let d = decide::decide(&cfg, &RouteState::default(), &req);
            prop_assert_eq!(
                d.rule,
                first,
                "decide and first_match disagree on {:?}",
                query
            );
            Ok(())
        },
    );
}
