//! Configuration: typed, validated, never fatal (DESIGN §8).
//!
//! Why this shape: the router reads wrangler `[vars]` (always strings) merged with runtime
//! overrides from the admin API (native JSON, stored in KV, versioned). A typo in either must not
//! take the router down — a panic kills the isolate — and must not be silently ignored either,
//! because a quietly wrong `LIGHTRAG_ROLLOUT_PERCENTAGE` is a wrong experiment. So [`load`]
//! always returns a usable [`Config`]: every bad field takes its safe default and adds a
//! [`Problem`] naming the variable, the value, the accepted range and where it came from; the
//! status API shows them.
//!
//! Parsing rules, the same for vars and overrides:
//! - Booleans: `true/false/1/0/yes/no/on/off`, any case, or a JSON bool. Anything else is a
//!   problem (the seed's `value.lower() == "true"` read "ture" as false without a word).
//! - Numbers: a JSON number or a numeric string; NaN, infinities and out-of-range values are
//!   problems. Integer fields reject fractions.
//! - A missing key, JSON `null` or a blank string means "unset": the default applies. In
//!   overrides, `null` therefore removes an override and exposes the var underneath.
//! - Lists (`LIGHTRAG_ALLOW_USERS`, `LIGHTRAG_DENY_USERS`): a comma-separated string, a JSON
//!   array in a string, or a native array of strings. Bad entries are reported and skipped; the
//!   good ones are kept (dropping a whole deny list over one typo would be the unsafe choice).
//! - `LIGHTRAG_ROUTING_RULES`: see [`crate::core::rules`]; each bad rule is one problem with
//!   its index.
//! - Unknown override keys are problems; unknown `LIGHTRAG_*` vars are problems (likely typos);
//!   other vars belong to other parts of the worker and are ignored. Secrets
//!   (`LIGHTRAG_API_KEY`, `PERPLEXITY_API`, `ADMIN_TOKEN`) are never configuration: an override
//!   that tries to set one is refused and its value is never echoed.
//!
//! Safe defaults are the seed's defaults: integration off, 0 % rollout, fallback on, breaker on.
//! Cross-field checks (minimum calls ≤ window size, max recovery ≥ recovery) report the
//! dependent field and fall back to a consistent value.

use crate::core::cohort::{Percent, DEFAULT_SALT};
use crate::core::rules::{self, Rule};
use crate::core::upstream::Upstream;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

pub const INTEGRATION_ENABLED: &str = "LIGHTRAG_INTEGRATION_ENABLED";
pub const ROLLOUT_PERCENTAGE: &str = "LIGHTRAG_ROLLOUT_PERCENTAGE";
pub const FALLBACK_TO_PERPLEXITY: &str = "LIGHTRAG_FALLBACK_TO_PERPLEXITY";
pub const PERPLEXITY_FALLBACK_TO_LIGHTRAG: &str = "LIGHTRAG_PERPLEXITY_FALLBACK_TO_LIGHTRAG";
pub const INTEGRATION_TIMEOUT_SECONDS: &str = "LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS";
pub const ENABLE_QUALITY_METRICS: &str = "LIGHTRAG_ENABLE_QUALITY_METRICS";
pub const MIN_QUALITY_THRESHOLD: &str = "LIGHTRAG_MIN_QUALITY_THRESHOLD";
pub const ENABLE_PERFORMANCE_COMPARISON: &str = "LIGHTRAG_ENABLE_PERFORMANCE_COMPARISON";
pub const ENABLE_CIRCUIT_BREAKER: &str = "LIGHTRAG_ENABLE_CIRCUIT_BREAKER";
pub const CB_FAILURE_THRESHOLD: &str = "LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD";
pub const CB_RECOVERY_TIMEOUT: &str = "LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT";
pub const CB_FAILURE_RATE_THRESHOLD: &str = "LIGHTRAG_CIRCUIT_BREAKER_FAILURE_RATE_THRESHOLD";
pub const CB_WINDOW_SIZE: &str = "LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE";
pub const CB_MINIMUM_CALLS: &str = "LIGHTRAG_CIRCUIT_BREAKER_MINIMUM_CALLS";
pub const CB_SLOW_CALL_MS: &str = "LIGHTRAG_CIRCUIT_BREAKER_SLOW_CALL_MS";
pub const CB_MAX_RECOVERY_TIMEOUT: &str = "LIGHTRAG_CIRCUIT_BREAKER_MAX_RECOVERY_TIMEOUT";
pub const CB_HALF_OPEN_PROBE_SHARE: &str = "LIGHTRAG_CIRCUIT_BREAKER_HALF_OPEN_PROBE_SHARE";
pub const CB_HALF_OPEN_SUCCESSES: &str = "LIGHTRAG_CIRCUIT_BREAKER_HALF_OPEN_SUCCESSES";
pub const CB_JITTER: &str = "LIGHTRAG_CIRCUIT_BREAKER_JITTER";
pub const ENABLE_AB_TESTING: &str = "LIGHTRAG_ENABLE_AB_TESTING";
pub const USER_HASH_SALT: &str = "LIGHTRAG_USER_HASH_SALT";
pub const FORCE_USER_COHORT: &str = "LIGHTRAG_FORCE_USER_COHORT";
pub const ENABLE_CONDITIONAL_ROUTING: &str = "LIGHTRAG_ENABLE_CONDITIONAL_ROUTING";
pub const ROUTING_RULES: &str = "LIGHTRAG_ROUTING_RULES";
pub const ALLOW_USERS: &str = "LIGHTRAG_ALLOW_USERS";
pub const DENY_USERS: &str = "LIGHTRAG_DENY_USERS";
pub const EMERGENCY_ROLLBACK: &str = "LIGHTRAG_EMERGENCY_ROLLBACK";
pub const QUALITY_GATE_MIN_SAMPLES: &str = "LIGHTRAG_QUALITY_GATE_MIN_SAMPLES";
pub const QUALITY_GATE_PROBE_SHARE: &str = "LIGHTRAG_QUALITY_GATE_PROBE_SHARE";
pub const QUERY_MODE: &str = "LIGHTRAG_QUERY_MODE";
pub const MAX_BODY_BYTES: &str = "LIGHTRAG_MAX_BODY_BYTES";
pub const LIGHTRAG_BASE_URL: &str = "LIGHTRAG_BASE_URL";
pub const PERPLEXITY_BASE_URL: &str = "PERPLEXITY_BASE_URL";
pub const STATE_REFRESH_SECONDS: &str = "STATE_REFRESH_SECONDS";
pub const METRICS_FLUSH_SECONDS: &str = "METRICS_FLUSH_SECONDS";

/// Every variable [`load`] reads.
pub const KNOWN_VARIABLES: &[&str] = &[
    INTEGRATION_ENABLED,
    ROLLOUT_PERCENTAGE,
    FALLBACK_TO_PERPLEXITY,
    PERPLEXITY_FALLBACK_TO_LIGHTRAG,
    INTEGRATION_TIMEOUT_SECONDS,
    ENABLE_QUALITY_METRICS,
    MIN_QUALITY_THRESHOLD,
    ENABLE_PERFORMANCE_COMPARISON,
    ENABLE_CIRCUIT_BREAKER,
    CB_FAILURE_THRESHOLD,
    CB_RECOVERY_TIMEOUT,
    CB_FAILURE_RATE_THRESHOLD,
    CB_WINDOW_SIZE,
    CB_MINIMUM_CALLS,
    CB_SLOW_CALL_MS,
    CB_MAX_RECOVERY_TIMEOUT,
    CB_HALF_OPEN_PROBE_SHARE,
    CB_HALF_OPEN_SUCCESSES,
    CB_JITTER,
    ENABLE_AB_TESTING,
    USER_HASH_SALT,
    FORCE_USER_COHORT,
    ENABLE_CONDITIONAL_ROUTING,
    ROUTING_RULES,
    ALLOW_USERS,
    DENY_USERS,
    EMERGENCY_ROLLBACK,
    QUALITY_GATE_MIN_SAMPLES,
    QUALITY_GATE_PROBE_SHARE,
    QUERY_MODE,
    MAX_BODY_BYTES,
    LIGHTRAG_BASE_URL,
    PERPLEXITY_BASE_URL,
    STATE_REFRESH_SECONDS,
    METRICS_FLUSH_SECONDS,
];

/// Secret names: never configuration, never echoed.
pub const SECRET_VARIABLES: &[&str] = &["LIGHTRAG_API_KEY", "PERPLEXITY_API", "ADMIN_TOKEN"];

/// Longest value echoed back in a problem.
const ECHO_MAX: usize = 120;
/// Longest salt, list entry or URL accepted.
const TEXT_MAX: usize = 2048;

/// The LightRAG query mode sent upstream (`{"query", "mode"}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueryMode {
    Local,
    Global,
    Hybrid,
    Naive,
    Mix,
    Bypass,
}

impl QueryMode {
    pub const ALL: [QueryMode; 6] = [
        QueryMode::Local,
        QueryMode::Global,
        QueryMode::Hybrid,
        QueryMode::Naive,
        QueryMode::Mix,
        QueryMode::Bypass,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            QueryMode::Local => "local",
            QueryMode::Global => "global",
            QueryMode::Hybrid => "hybrid",
            QueryMode::Naive => "naive",
            QueryMode::Mix => "mix",
            QueryMode::Bypass => "bypass",
        }
    }
}

/// The LightRAG circuit breaker's policy (DESIGN §4).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerConfig {
    pub enabled: bool,
    /// Consecutive failures that trip the breaker.
    pub failure_threshold: u32,
    /// Failure rate in the window (0 < r ≤ 1) that trips it once `minimum_calls` are seen.
    pub failure_rate_threshold: f64,
    /// Sliding window length, in calls.
    pub window_size: u32,
    pub minimum_calls: u32,
    /// Calls slower than this count as failures.
    pub slow_call_ms: u64,
    /// First open period.
    pub recovery_timeout_ms: u64,
    /// Cap for the open period as it grows on repeated trips.
    pub max_recovery_timeout_ms: u64,
    /// Share of requests admitted as probes while half-open.
    pub half_open_probe_share: f64,
    pub half_open_successes_to_close: u32,
    /// Relative jitter on the open period (0 ≤ j ≤ 1).
    pub jitter: f64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            enabled: true,
            failure_threshold: 3,
            failure_rate_threshold: 0.5,
            window_size: 20,
            minimum_calls: 10,
            slow_call_ms: 10_000,
            recovery_timeout_ms: 300_000,
            max_recovery_timeout_ms: 8 * 300_000,
            half_open_probe_share: 0.1,
            half_open_successes_to_close: 3,
            jitter: 0.1,
        }
    }
}

/// The router's configuration. Serializable for the status API (holds no secrets).
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Version of the override set this config was built from (0: vars only).
    pub version: u64,
    pub integration_enabled: bool,
    /// Serialized as a percentage number, e.g. `0.25`.
    #[serde(serialize_with = "ser_percent")]
    pub rollout_percentage: Percent,
    pub fallback_to_perplexity: bool,
    pub perplexity_fallback_to_lightrag: bool,
    pub integration_timeout_seconds: f64,
    pub enable_quality_metrics: bool,
    pub min_quality_threshold: f64,
    pub enable_performance_comparison: bool,
    pub breaker: BreakerConfig,
    pub enable_ab_testing: bool,
    pub user_hash_salt: String,
    pub force_user_cohort: Option<Upstream>,
    pub enable_conditional_routing: bool,
    pub routing_rules: Vec<Rule>,
    pub allow_users: BTreeSet<String>,
    pub deny_users: BTreeSet<String>,
    pub emergency_rollback: bool,
    pub quality_gate_min_samples: u32,
    pub quality_gate_probe_share: f64,
    pub query_mode: QueryMode,
    pub max_body_bytes: u64,
    pub lightrag_base_url: String,
    pub perplexity_base_url: String,
    pub state_refresh_seconds: u64,
    pub metrics_flush_seconds: u64,
}

fn ser_percent<S: Serializer>(p: &Percent, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(p.percent())
}

impl Default for Config {
    fn default() -> Self {
        defaults()
    }
}

/// The seed's defaults: integration off, nothing routed to LightRAG.
pub fn defaults() -> Config {
    Config {
        version: 0,
        integration_enabled: false,
        rollout_percentage: Percent::ZERO,
        fallback_to_perplexity: true,
        perplexity_fallback_to_lightrag: false,
        integration_timeout_seconds: 30.0,
        enable_quality_metrics: false,
        min_quality_threshold: 0.7,
        enable_performance_comparison: false,
        breaker: BreakerConfig::default(),
        enable_ab_testing: false,
        user_hash_salt: DEFAULT_SALT.to_string(),
        force_user_cohort: None,
        enable_conditional_routing: false,
        routing_rules: Vec::new(),
        allow_users: BTreeSet::new(),
        deny_users: BTreeSet::new(),
        emergency_rollback: false,
        quality_gate_min_samples: 50,
        quality_gate_probe_share: 0.05,
        query_mode: QueryMode::Hybrid,
        max_body_bytes: 65_536,
        lightrag_base_url: "http://localhost:9621".to_string(),
        perplexity_base_url: "https://api.perplexity.ai".to_string(),
        state_refresh_seconds: 30,
        metrics_flush_seconds: 60,
    }
}

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Vars,
    Override,
}

/// One rejected value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub variable: String,
    /// The offending value as text (truncated; secrets redacted).
    pub value: String,
    /// What was wrong and what is accepted.
    pub message: String,
    pub source: Source,
    /// For `LIGHTRAG_ROUTING_RULES`: the index of the rejected rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

impl Problem {
    /// `VARIABLE` or `VARIABLE[index]`: a short key used by spec files and logs.
    pub fn key(&self) -> String {
        match self.index {
            Some(i) => format!("{}[{i}]", self.variable),
            None => self.variable.clone(),
        }
    }
}

/// A config and everything that was wrong with its inputs.
#[derive(Debug, Clone, Serialize)]
pub struct Loaded {
    pub config: Config,
    pub problems: Vec<Problem>,
}

/// Builds the config from wrangler vars and optional runtime overrides (which win, key by key).
pub fn load(
    vars: &Map<String, Value>,
    overrides: Option<&Map<String, Value>>,
    version: u64,
) -> Loaded {
    let mut l = Loader {
        vars,
        overrides,
        problems: Vec::new(),
    };
    l.unknown_keys();
    let d = defaults();
    let mut c = defaults();
    c.version = version;
    c.integration_enabled = l.boolean(INTEGRATION_ENABLED, d.integration_enabled);
    c.rollout_percentage = l.percent(ROLLOUT_PERCENTAGE, d.rollout_percentage);
    c.fallback_to_perplexity = l.boolean(FALLBACK_TO_PERPLEXITY, d.fallback_to_perplexity);
    c.perplexity_fallback_to_lightrag = l.boolean(
        PERPLEXITY_FALLBACK_TO_LIGHTRAG,
        d.perplexity_fallback_to_lightrag,
    );
    c.integration_timeout_seconds = l.float(
        INTEGRATION_TIMEOUT_SECONDS,
        d.integration_timeout_seconds,
        Range::open_closed(0.0, 600.0),
    );
    c.enable_quality_metrics = l.boolean(ENABLE_QUALITY_METRICS, d.enable_quality_metrics);
    c.min_quality_threshold = l.float(
        MIN_QUALITY_THRESHOLD,
        d.min_quality_threshold,
        Range::closed(0.0, 1.0),
    );
    c.enable_performance_comparison = l.boolean(
        ENABLE_PERFORMANCE_COMPARISON,
        d.enable_performance_comparison,
    );
    c.breaker = l.breaker(&d.breaker);
    c.enable_ab_testing = l.boolean(ENABLE_AB_TESTING, d.enable_ab_testing);
    c.user_hash_salt = l.salt(d.user_hash_salt);
    c.force_user_cohort = l.cohort(FORCE_USER_COHORT);
    c.enable_conditional_routing =
        l.boolean(ENABLE_CONDITIONAL_ROUTING, d.enable_conditional_routing);
    c.routing_rules = l.rules();
    c.allow_users = l.list(ALLOW_USERS);
    c.deny_users = l.list(DENY_USERS);
    c.emergency_rollback = l.boolean(EMERGENCY_ROLLBACK, d.emergency_rollback);
    c.quality_gate_min_samples = l.uint(
        QUALITY_GATE_MIN_SAMPLES,
        d.quality_gate_min_samples.into(),
        1,
        1_000_000,
    ) as u32;
    c.quality_gate_probe_share = l.float(
        QUALITY_GATE_PROBE_SHARE,
        d.quality_gate_probe_share,
        Range::closed(0.0, 1.0),
    );
    c.query_mode = l.query_mode(d.query_mode);
    c.max_body_bytes = l.uint(MAX_BODY_BYTES, d.max_body_bytes, 1024, 10 * 1024 * 1024);
    c.lightrag_base_url = l.url(LIGHTRAG_BASE_URL, d.lightrag_base_url);
    c.perplexity_base_url = l.url(PERPLEXITY_BASE_URL, d.perplexity_base_url);
    c.state_refresh_seconds = l.uint(STATE_REFRESH_SECONDS, d.state_refresh_seconds, 1, 3600);
    c.metrics_flush_seconds = l.uint(METRICS_FLUSH_SECONDS, d.metrics_flush_seconds, 10, 86_400);
    Loaded {
        config: c,
        problems: l.problems,
    }
}

/// A numeric range with inclusive or exclusive ends, and its description for messages.
#[derive(Clone, Copy)]
struct Range {
    lo: f64,
    hi: f64,
    lo_open: bool,
}

impl Range {
    fn closed(lo: f64, hi: f64) -> Range {
        Range {
            lo,
            hi,
            lo_open: false,
        }
    }
    fn open_closed(lo: f64, hi: f64) -> Range {
        Range {
            lo,
            hi,
            lo_open: true,
        }
    }
    fn contains(self, x: f64) -> bool {
        (if self.lo_open {
            x > self.lo
        } else {
            x >= self.lo
        }) && x <= self.hi
    }
    fn describe(self) -> String {
        let lo = if self.lo_open { "greater than" } else { "from" };
        format!("a number {lo} {} to {}", self.lo, self.hi)
    }
}

struct Loader<'a> {
    vars: &'a Map<String, Value>,
    overrides: Option<&'a Map<String, Value>>,
    problems: Vec<Problem>,
}

/// A blank string or `null` is "unset".
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

fn echo(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.chars().count() > ECHO_MAX {
        let mut t: String = s.chars().take(ECHO_MAX).collect();
        t.push('…');
        t
    } else {
        s
    }
}

/// Parses the accepted boolean spellings.
pub fn parse_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => {
            let x = n.as_f64()?;
            if x == 1.0 {
                Some(true)
            } else if x == 0.0 {
                Some(false)
            } else {
                None
            }
        }
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A finite number from a JSON number or numeric string.
fn parse_number(v: &Value) -> Option<f64> {
    let x = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    x.is_finite().then_some(x)
}

impl<'a> Loader<'a> {
    /// The effective raw value of `name` and its source; `None` when unset everywhere.
    fn raw(&self, name: &str) -> Option<(&'a Value, Source)> {
        if let Some(v) = self
            .overrides
            .and_then(|o| o.get(name))
            .filter(|v| !is_unset(v))
        {
            return Some((v, Source::Override));
        }
        self.vars
            .get(name)
            .filter(|v| !is_unset(v))
            .map(|v| (v, Source::Vars))
    }

    fn problem(&mut self, name: &str, v: &Value, src: Source, message: String) {
        self.problems.push(Problem {
            variable: name.to_string(),
            value: echo(v),
            message,
            source: src,
            index: None,
        });
    }

    fn unknown_keys(&mut self) {
        let known = |k: &str| KNOWN_VARIABLES.contains(&k);
        if let Some(o) = self.overrides {
            for (k, v) in o {
                if SECRET_VARIABLES.contains(&k.as_str()) {
                    self.problems.push(Problem {
                        variable: k.clone(),
                        value: "<redacted>".into(),
                        message: "secrets come from wrangler secrets, never from overrides".into(),
                        source: Source::Override,
                        index: None,
                    });
                } else if !known(k) {
                    self.problem(k, v, Source::Override, "unknown variable".into());
                }
            }
        }
        for (k, v) in self.vars {
            if k.starts_with("LIGHTRAG_") && !known(k) && !SECRET_VARIABLES.contains(&k.as_str()) {
                self.problem(
                    k,
                    v,
                    Source::Vars,
                    "unknown LIGHTRAG_ variable (typo?)".into(),
                );
            }
        }
    }

    fn boolean(&mut self, name: &str, default: bool) -> bool {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        parse_bool(v).unwrap_or_else(|| {
            self.problem(
                name,
                v,
                src,
                format!("expected a boolean: true/false, 1/0, yes/no or on/off; using {default}"),
            );
            default
        })
    }

    fn float(&mut self, name: &str, default: f64, range: Range) -> f64 {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        match parse_number(v) {
            Some(x) if range.contains(x) => x,
            _ => {
                self.problem(
                    name,
                    v,
                    src,
                    format!("expected {}; using {default}", range.describe()),
                );
                default
            }
        }
    }

    fn uint(&mut self, name: &str, default: u64, lo: u64, hi: u64) -> u64 {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        match parse_number(v) {
            Some(x) if x.fract() == 0.0 && x >= lo as f64 && x <= hi as f64 => x as u64,
            _ => {
                self.problem(
                    name,
                    v,
                    src,
                    format!("expected a whole number from {lo} to {hi}; using {default}"),
                );
                default
            }
        }
    }

    fn percent(&mut self, name: &str, default: Percent) -> Percent {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        match parse_number(v).and_then(Percent::from_percent) {
            Some(p) => p,
            None => {
                self.problem(
                    name,
                    v,
                    src,
                    format!(
                        "expected a percentage from 0 to 100 (0.01 resolution); using {}",
                        default.percent()
                    ),
                );
                default
            }
        }
    }

    fn salt(&mut self, default: String) -> String {
        let Some((v, src)) = self.raw(USER_HASH_SALT) else {
            return default;
        };
        match v.as_str() {
            Some(s) if s.len() <= TEXT_MAX => s.to_string(),
            _ => {
                self.problem(
                    USER_HASH_SALT,
                    v,
                    src,
                    format!(
                        "expected a non-empty string of at most {TEXT_MAX} bytes; using {default}"
                    ),
                );
                default
            }
        }
    }

    fn cohort(&mut self, name: &str) -> Option<Upstream> {
        let (v, src) = self.raw(name)?;
        let s = v.as_str().map(str::trim).unwrap_or_default();
        if s.eq_ignore_ascii_case("none") {
            return None;
        }
        let parsed = v.as_str().and_then(Upstream::parse);
        if parsed.is_none() {
            self.problem(
                name,
                v,
                src,
                "expected lightrag, perplexity, or none/empty for unset; leaving unset".into(),
            );
        }
        parsed
    }

    fn query_mode(&mut self, default: QueryMode) -> QueryMode {
        let Some((v, src)) = self.raw(QUERY_MODE) else {
            return default;
        };
        let s = v
            .as_str()
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match QueryMode::ALL.into_iter().find(|m| m.as_str() == s) {
            Some(m) => m,
            None => {
                self.problem(
                    QUERY_MODE,
                    v,
                    src,
                    format!(
                        "expected one of local, global, hybrid, naive, mix, bypass; using {}",
                        default.as_str()
                    ),
                );
                default
            }
        }
    }

    fn url(&mut self, name: &str, default: String) -> String {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        // Trailing slashes go before the host check: `https:////` must not become `https:`.
        let ok = v
            .as_str()
            .map(|s| s.trim().trim_end_matches('/'))
            .filter(|s| {
                let host = s
                    .strip_prefix("https://")
                    .or_else(|| s.strip_prefix("http://"))
                    .unwrap_or_default();
                !host.is_empty()
                    && !host.starts_with('/')
                    && s.len() <= TEXT_MAX
                    && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            });
        match ok {
            Some(s) => s.to_string(),
            None => {
                self.problem(
                    name,
                    v,
                    src,
                    format!("expected an http:// or https:// URL without spaces; using {default}"),
                );
                default
            }
        }
    }

    /// A JSON value that may be a string holding JSON; `None` (with a problem) on bad JSON.
    fn json_value(&mut self, name: &str, v: &Value, src: Source) -> Option<Value> {
        match v {
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(j) => Some(j),
                Err(e) => {
                    self.problem(
                        name,
                        v,
                        src,
                        format!("invalid JSON ({e}); expected a JSON array"),
                    );
                    None
                }
            },
            other => Some(other.clone()),
        }
    }

    fn list(&mut self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let Some((v, src)) = self.raw(name) else {
            return out;
        };
        let items: Vec<Value> = match v {
            Value::String(s) if s.trim_start().starts_with('[') => {
                match self.json_value(name, v, src) {
                    Some(Value::Array(a)) => a,
                    _ => return out,
                }
            }
            Value::String(s) => s.split(',').map(|p| Value::String(p.to_string())).collect(),
            Value::Array(a) => a.clone(),
            _ => {
                self.problem(
                    name,
                    v,
                    src,
                    "expected a comma-separated list or a JSON array of strings".into(),
                );
                return out;
            }
        };
        for item in items {
            match item.as_str().map(str::trim) {
                Some("") => {}
                Some(s) if s.len() <= TEXT_MAX => {
                    out.insert(s.to_string());
                }
                _ => self.problem(
                    name,
                    &item,
                    src,
                    format!(
                        "list entries must be strings of at most {TEXT_MAX} bytes; entry skipped"
                    ),
                ),
            }
        }
        out
    }

    fn rules(&mut self) -> Vec<Rule> {
        let Some((v, src)) = self.raw(ROUTING_RULES) else {
            return Vec::new();
        };
        let Some(json) = self.json_value(ROUTING_RULES, v, src) else {
            return Vec::new();
        };
        let parsed = rules::parse(&json);
        for e in parsed.errors {
            let item = json.get(e.index).unwrap_or(&json);
            let label = e.name.map(|n| format!(" ({n})")).unwrap_or_default();
            self.problems.push(Problem {
                variable: ROUTING_RULES.to_string(),
                value: echo(item),
                message: format!("rule #{}{label} skipped: {}", e.index, e.reason),
                source: src,
                index: json.is_array().then_some(e.index),
            });
        }
        parsed.rules
    }

    fn breaker(&mut self, d: &BreakerConfig) -> BreakerConfig {
        let enabled = self.boolean(ENABLE_CIRCUIT_BREAKER, d.enabled);
        let failure_threshold =
            self.uint(CB_FAILURE_THRESHOLD, d.failure_threshold.into(), 1, 1000) as u32;
        let failure_rate_threshold = self.float(
            CB_FAILURE_RATE_THRESHOLD,
            d.failure_rate_threshold,
            Range::open_closed(0.0, 1.0),
        );
        // The breaker's count window is a 128-bit mask: a larger size would pass here and then be
        // refused by `BreakerPolicy::try_new`, silently running the breaker on defaults.
        let window_size = self.uint(
            CB_WINDOW_SIZE,
            d.window_size.into(),
            1,
            crate::core::breaker::MAX_WINDOW_SIZE.into(),
        ) as u32;
        let mut minimum_calls =
            self.uint(CB_MINIMUM_CALLS, d.minimum_calls.into(), 1, 10_000) as u32;
        if minimum_calls > window_size {
            let fixed = d.minimum_calls.min(window_size);
            if let Some((v, src)) = self.raw(CB_MINIMUM_CALLS).or(self.raw(CB_WINDOW_SIZE)) {
                self.problem(
                    CB_MINIMUM_CALLS,
                    v,
                    src,
                    format!(
                        "minimum calls {minimum_calls} exceed the window size {window_size}; using {fixed}"
                    ),
                );
            }
            minimum_calls = fixed;
        }
        let slow_call_ms = self.uint(CB_SLOW_CALL_MS, d.slow_call_ms, 1, 600_000);
        let recovery_s = self.float(
            CB_RECOVERY_TIMEOUT,
            d.recovery_timeout_ms as f64 / 1000.0,
            Range::open_closed(0.0, 86_400.0),
        );
        let recovery_timeout_ms = (recovery_s * 1000.0).round().max(1.0) as u64;
        let default_max = recovery_timeout_ms.saturating_mul(8);
        let max_s = self.float(
            CB_MAX_RECOVERY_TIMEOUT,
            default_max as f64 / 1000.0,
            Range::open_closed(0.0, 8.0 * 86_400.0),
        );
        let mut max_recovery_timeout_ms = (max_s * 1000.0).round() as u64;
        if max_recovery_timeout_ms < recovery_timeout_ms {
            if let Some((v, src)) = self.raw(CB_MAX_RECOVERY_TIMEOUT) {
                self.problem(
                    CB_MAX_RECOVERY_TIMEOUT,
                    v,
                    src,
                    format!(
                        "must be at least the recovery timeout ({recovery_s} s); using {} s",
                        default_max as f64 / 1000.0
                    ),
                );
            }
            max_recovery_timeout_ms = default_max;
        }
        let half_open_probe_share = self.float(
            CB_HALF_OPEN_PROBE_SHARE,
            d.half_open_probe_share,
            Range::open_closed(0.0, 1.0),
        );
        let half_open_successes_to_close = self.uint(
            CB_HALF_OPEN_SUCCESSES,
            d.half_open_successes_to_close.into(),
            1,
            1000,
        ) as u32;
        let jitter = self.float(CB_JITTER, d.jitter, Range::closed(0.0, 1.0));
        BreakerConfig {
            enabled,
            failure_threshold,
            failure_rate_threshold,
            window_size,
            minimum_calls,
            slow_call_ms,
            recovery_timeout_ms,
            max_recovery_timeout_ms,
            half_open_probe_share,
            half_open_successes_to_close,
            jitter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn problems(l: &Loaded) -> Vec<String> {
        l.problems.iter().map(Problem::key).collect()
    }

    #[test]
    fn empty_is_defaults_without_problems() {
        let l = load(&Map::new(), None, 0);
        assert!(l.problems.is_empty());
        let d = serde_json::to_value(defaults()).unwrap();
        assert_eq!(serde_json::to_value(&l.config).unwrap(), d);
        assert_eq!(d["rollout_percentage"], json!(0.0));
        assert_eq!(d["breaker"]["recovery_timeout_ms"], json!(300_000));
        assert_eq!(d["breaker"]["max_recovery_timeout_ms"], json!(2_400_000));
    }

    #[test]
    fn every_boolean_spelling() {
        for (s, want) in [
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("yes", true),
            ("On", true),
            ("false", false),
            ("False", false),
            ("0", false),
            ("NO", false),
            ("off", false),
        ] {
            let l = load(&map(json!({INTEGRATION_ENABLED: s})), None, 0);
            assert_eq!(l.config.integration_enabled, want, "{s}");
            assert!(l.problems.is_empty());
        }
        for bad in [json!("ture"), json!("2"), json!(0.5), json!([true])] {
            let l = load(&map(json!({ENABLE_CIRCUIT_BREAKER: bad})), None, 0);
            assert!(l.config.breaker.enabled, "safe default kept");
            assert_eq!(problems(&l), [ENABLE_CIRCUIT_BREAKER]);
        }
    }

    #[test]
    fn numbers_reject_nan_inf_range_and_fractions() {
        for bad in ["NaN", "inf", "-1", "100.5", "abc"] {
            let l = load(&map(json!({ROLLOUT_PERCENTAGE: bad})), None, 0);
            assert_eq!(l.config.rollout_percentage, Percent::ZERO);
            assert_eq!(problems(&l), [ROLLOUT_PERCENTAGE], "{bad}");
            assert!(l.problems[0].message.contains("0 to 100"));
        }
        let l = load(
            &map(json!({ROLLOUT_PERCENTAGE: "0.25", CB_FAILURE_THRESHOLD: "3.5"})),
            None,
            0,
        );
        assert_eq!(l.config.rollout_percentage.hundredths(), 25);
        assert_eq!(l.config.breaker.failure_threshold, 3);
        assert_eq!(problems(&l), [CB_FAILURE_THRESHOLD]);
    }

    #[test]
    fn overrides_win_and_are_validated_and_versioned() {
        let vars = map(json!({ROLLOUT_PERCENTAGE: "10", INTEGRATION_ENABLED: "true"}));
        let ov = map(
            json!({ROLLOUT_PERCENTAGE: 25.5, "LIGHTRAG_NOPE": 1, "ADMIN_TOKEN": "s3cret",
                             INTEGRATION_ENABLED: null, MIN_QUALITY_THRESHOLD: 2}),
        );
        let l = load(&vars, Some(&ov), 7);
        assert_eq!(l.config.version, 7);
        assert_eq!(l.config.rollout_percentage.hundredths(), 2550);
        assert!(
            l.config.integration_enabled,
            "null override exposes the var"
        );
        assert_eq!(l.config.min_quality_threshold, 0.7);
        let mut p = problems(&l);
        p.sort();
        assert_eq!(
            p,
            [
                "ADMIN_TOKEN",
                "LIGHTRAG_MIN_QUALITY_THRESHOLD",
                "LIGHTRAG_NOPE"
            ]
        );
        assert!(l.problems.iter().all(|p| p.source == Source::Override));
        assert!(!serde_json::to_string(&l.problems)
            .unwrap()
            .contains("s3cret"));
    }

    #[test]
    fn lists_cohort_rules_and_cross_checks() {
        let l = load(
            &map(json!({
                ALLOW_USERS: " a, b ,,c",
                DENY_USERS: "[\"x\", 3]",
                FORCE_USER_COHORT: "LightRAG",
                ROUTING_RULES: "[{\"name\":\"a\",\"action\":\"lightrag\"},{\"name\":\"b\"}]",
                CB_WINDOW_SIZE: "5",
                CB_RECOVERY_TIMEOUT: "60",
                CB_MAX_RECOVERY_TIMEOUT: "30",
                LIGHTRAG_BASE_URL: "https://rag.example.org/",
                "LIGHTRAG_ROLOUT_PERCENTAGE": "50",
                "UNRELATED": "x",
            })),
            None,
            0,
        );
        let c = &l.config;
        assert_eq!(c.allow_users.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(c.deny_users.iter().collect::<Vec<_>>(), ["x"]);
        assert_eq!(c.force_user_cohort, Some(Upstream::Lightrag));
        assert_eq!(c.routing_rules.len(), 1);
        assert_eq!(c.breaker.minimum_calls, 5);
        assert_eq!(c.breaker.max_recovery_timeout_ms, 480_000);
        assert_eq!(c.lightrag_base_url, "https://rag.example.org");
        let mut p = problems(&l);
        p.sort();
        assert_eq!(
            p,
            [
                CB_MAX_RECOVERY_TIMEOUT,
                CB_MINIMUM_CALLS,
                DENY_USERS,
                "LIGHTRAG_ROLOUT_PERCENTAGE",
                "LIGHTRAG_ROUTING_RULES[1]",
            ]
        );
    }

    #[test]
    fn bad_rules_json_and_cohort() {
        let l = load(
            &map(json!({ROUTING_RULES: "[{", FORCE_USER_COHORT: "both"})),
            None,
            0,
        );
        assert!(l.config.routing_rules.is_empty());
        assert_eq!(l.config.force_user_cohort, None);
        assert_eq!(problems(&l), [FORCE_USER_COHORT, ROUTING_RULES]);
        let l = load(&map(json!({FORCE_USER_COHORT: "none"})), None, 0);
        assert!(l.problems.is_empty());
    }

    /// Found by `make fuzz` (target `admin_config_body`): a window of 129 was accepted, then
    /// refused by the breaker policy, which silently fell back to its defaults.
    #[test]
    fn window_sizes_the_breaker_cannot_hold_are_problems() {
        let l = load(&map(json!({CB_WINDOW_SIZE: "129"})), None, 0);
        assert_eq!(problems(&l), [CB_WINDOW_SIZE]);
        assert_eq!(l.config.breaker.window_size, 20);
        let l = load(&map(json!({CB_WINDOW_SIZE: "128"})), None, 0);
        assert!(l.problems.is_empty());
        assert!(crate::core::policies::breaker_policy(&l.config).1.is_none());
    }

    /// Found by `make fuzz` (target `config_load`): `https:////` passed the length check and
    /// then lost its slashes, leaving the base URL `https:`.
    #[test]
    fn base_urls_need_a_host() {
        for bad in ["https:////", "http:///x", "https://", "http:// "] {
            let l = load(&map(json!({LIGHTRAG_BASE_URL: bad})), None, 0);
            assert_eq!(problems(&l), [LIGHTRAG_BASE_URL], "{bad}");
            assert_eq!(l.config.lightrag_base_url, defaults().lightrag_base_url);
        }
        let l = load(&map(json!({LIGHTRAG_BASE_URL: "http://x//"})), None, 0);
        assert_eq!(l.config.lightrag_base_url, "http://x");
    }
}
