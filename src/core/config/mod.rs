//! Configuration: typed, validated once, never fatal (docs/architecture.md#configuration).
//!
//! Why this shape: the router reads wrangler `[vars]` (strings, or JSON values for TOML
//! tables) merged with runtime overrides from the admin API (native JSON, stored in KV,
//! versioned). A typo in either must not take the router down — a panic kills the isolate — and
//! must not be silently ignored either, because a quietly wrong `LIGHTRAG_ROLLOUT_PERCENTAGE` is
//! a wrong experiment. So [`load`] always returns a usable [`Config`]: every bad value takes its
//! safe default and adds a [`Problem`] naming the variable, the value, the accepted range and
//! where it came from; the status API shows them, and the admin API refuses (422) an override
//! set that has any.
//!
//! Every variable is one row of the table below: its name constant, [`KNOWN_VARIABLES`], the
//! typed field, the default and the parser are all generated from that row. The resilience
//! policies (breaker, fallback, quality gate) are then built from their rows through their own
//! `try_new`, with the bounds those policies declare — so a value the loader accepts is one the
//! policy accepts, and a refused value is reported against its variable instead of silently
//! resetting the whole policy.
//!
//! Parsing rules, the same for vars and overrides:
//! - Booleans: `true/false/1/0/yes/no/on/off/t/f`, any case, or a JSON bool. Anything else is a
//!   problem (the seed's `value.lower() == "true"` read "ture" as false without a word).
//! - Numbers: a JSON number or a numeric string; NaN, infinities and out-of-range values are
//!   problems. Integer fields reject fractions.
//! - A missing key, JSON `null` or a blank string means "unset": the default applies. In
//!   overrides, `null` therefore removes an override and exposes the var underneath.
//! - Lists (`LIGHTRAG_ALLOW_USERS`, `LIGHTRAG_DENY_USERS`): a comma-separated string, a JSON
//!   array in a string, or a native array of strings. Bad entries are reported and skipped; the
//!   good ones are kept (dropping a whole deny list over one typo would be the unsafe choice).
//! - `LIGHTRAG_ROUTING_RULES`: see [`crate::core::rules`]; each bad rule is one problem with
//!   its index. The previous service's object form is translated ([`legacy`]) with a note.
//! - Unknown override keys are problems; unknown `LIGHTRAG_*` vars are problems (likely typos);
//!   other vars belong to other parts of the worker and are ignored. Secrets
//!   (`LIGHTRAG_API_KEY`, `PERPLEXITY_API`, `ADMIN_TOKEN`) are never configuration: an override
//!   that tries to set one is refused and its value is never echoed.
//!
//! Safe defaults are the seed's defaults: integration off, 0 % rollout, fallback on, breaker on.
//! Cross-field checks (minimum calls ≤ window size, max recovery ≥ recovery) report the
//! dependent variable and fall back to a consistent value.

pub mod legacy;
mod parse;
pub mod problem;

pub use parse::parse_bool;
pub use problem::{Problem, Severity, Source};

use crate::core::answer::{cache, shadow};
use crate::core::backend::StateBackend;
use crate::core::breaker::settings as cb;
use crate::core::breaker::{BreakerPolicy, BreakerSettings};
use crate::core::cohort::{Percent, Salt};
use crate::core::exchange::policy as exchange;
use crate::core::fallback::{FallbackPolicy, FallbackSettings};
use crate::core::gate::{self, GatePolicy, GateSettings};
use crate::core::guard::cors::AllowedOrigins;
use crate::core::guard::deployment::Deployment;
use crate::core::guard::models;
use crate::core::model::Upstream;
use crate::core::policy::{Bounds, PolicyError};
use crate::core::rules::Rule;
use crate::core::wire::lightrag::QueryMode;
use crate::core::wire::perplexity_query as pq;
use parse::Loader;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Secret names: never configuration, never echoed.
pub const SECRET_VARIABLES: &[&str] = &[
    "LIGHTRAG_API_KEY",
    "PERPLEXITY_API",
    "ADMIN_TOKEN",
    "ROUTER_CLIENT_TOKEN",
];

/// Variables read from wrangler vars (or secrets) only: a runtime override of one is refused
/// (422 naming it), because it would let whoever holds the admin token send the upstream keys
/// to another host or switch the development loosening on (docs/architecture.md#the-front-door-guard),
/// or, for the cohort salt (a secret in production), store it in KV and echo it in
/// `GET /admin/config`.
pub const VARS_ONLY: &[&str] = &[
    LIGHTRAG_BASE_URL,
    PERPLEXITY_BASE_URL,
    ROUTER_ENV,
    USER_HASH_SALT,
    STATE_BACKEND,
];

const CB: BreakerSettings = BreakerSettings::DEFAULT;
const GATE: GateSettings = GateSettings::DEFAULT;
const FALLBACK: FallbackSettings = FallbackSettings::DEFAULT;

/// The variable table: one row per variable,
/// `CONSTANT = "NAME" => field: Type = default, parser(args);`.
///
/// Rows in `config` become public [`Config`] fields; rows in a policy group feed that policy's
/// settings and are only kept inside the policy.
macro_rules! variables {
    (
        config { $( $(#[doc = $cdoc:literal])* $ck:ident = $cn:literal => $cf:ident: $ct:ty = $cd:expr, $cp:ident $(($($ca:expr),*))?; )* }
        $( $gty:ident { $( $(#[doc = $gdoc:literal])* $gk:ident = $gn:literal => $gf:ident: $gt:ty = $gd:expr, $gp:ident $(($($ga:expr),*))?; )* } )*
    ) => {
        $( $(#[doc = $cdoc])* pub const $ck: &str = $cn; )*
        $( $( $(#[doc = $gdoc])* pub const $gk: &str = $gn; )* )*

        /// Every variable [`load`] reads, in table order.
        pub const KNOWN_VARIABLES: &[&str] = &[$($ck,)* $($($gk,)*)*];

        /// `(Config field, variable)` for every `config` row: how a serialized [`Config`]
        /// maps back onto the variables that produce it ([`crate::core::live`]).
        pub const CONFIG_FIELDS: &[(&str, &str)] = &[$((stringify!($cf), $cn),)*];

        /// The router's configuration. Serializable for the status API (holds no secrets).
        #[derive(Debug, Clone, Serialize)]
        pub struct Config {
            /// Version of the override set this config was built from (0: vars only).
            pub version: u64,
            $( $(#[doc = $cdoc])* pub $cf: $ct, )*
            /// The LightRAG/Perplexity circuit breakers' policy (`LIGHTRAG_*CIRCUIT_BREAKER*`).
            pub breaker: BreakerPolicy,
            /// Fallback between the upstreams (`LIGHTRAG_*FALLBACK*`).
            pub fallback: FallbackPolicy,
            /// The quality gate (`LIGHTRAG_ENABLE_QUALITY_METRICS`, `*QUALITY*`).
            pub quality_gate: GatePolicy,
        }

        impl Config {
            /// Every `config` row read through its parser, around the policies.
            fn read(
                version: u64,
                breaker: BreakerPolicy,
                fallback: FallbackPolicy,
                quality_gate: GatePolicy,
                l: &mut Loader<'_>,
            ) -> Config {
                Config {
                    version,
                    $( $cf: l.$cp($ck, $cd $(, $($ca),*)?), )*
                    breaker,
                    fallback,
                    quality_gate,
                }
            }

            /// Every row at its default.
            fn defaults() -> Config {
                Config {
                    version: 0,
                    $( $cf: $cd, )*
                    breaker: BreakerPolicy::default(),
                    fallback: FallbackPolicy::default(),
                    quality_gate: GatePolicy::default(),
                }
            }
        }

        $(
            /// The parsed rows of one policy group.
            #[derive(Debug, Clone)]
            struct $gty { $( $gf: $gt, )* }

            impl $gty {
                fn read(l: &mut Loader<'_>) -> $gty {
                    $gty { $( $gf: l.$gp($gk, $gd $(, $($ga),*)?), )* }
                }
            }
        )*
    };
}

variables! {
    config {
        /// Master switch; off routes everything to Perplexity (`disabled`).
        INTEGRATION_ENABLED = "LIGHTRAG_INTEGRATION_ENABLED" => integration_enabled: bool = false, boolean;
        /// Share of users (by hash position) routed to LightRAG; serialized as e.g. `0.25`.
        ROLLOUT_PERCENTAGE = "LIGHTRAG_ROLLOUT_PERCENTAGE" => rollout_percentage: Percent = Percent::ZERO, percent;
        /// The whole request's time budget across the primary attempt and any fallback.
        INTEGRATION_TIMEOUT_SECONDS = "LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS" => integration_timeout_seconds: f64 = 30.0, number(&TIMEOUT_SECONDS);
        /// The rollout's `latency_ratio` gate (treatment p95 ÷ control p95) runs only when on.
        ENABLE_PERFORMANCE_COMPARISON = "LIGHTRAG_ENABLE_PERFORMANCE_COMPARISON" => enable_performance_comparison: bool = false, boolean;
        /// Off turns the rollout's comparison gates (control arm, quality drop, latency ratio,
        /// sample ratio) and `GET /admin/experiment` off; the absolute gates still run.
        ENABLE_AB_TESTING = "LIGHTRAG_ENABLE_AB_TESTING" => enable_ab_testing: bool = false, boolean;
        /// Where the controller POSTs every rollout transition (JSON), if anywhere; https only
        /// outside `ROUTER_ENV=development`.
        ROLLOUT_WEBHOOK_URL = "LIGHTRAG_ROLLOUT_WEBHOOK_URL" => rollout_webhook_url: Option<String> = None, optional_url;
        /// Salt of the cohort hash (docs/architecture.md#cohort-hashing).
        /// Shown only as a fingerprint ([`Salt`]); may be a wrangler secret.
        USER_HASH_SALT = "LIGHTRAG_USER_HASH_SALT" => user_hash_salt: Salt = Salt::default(), salt;
        /// Everybody to one upstream (`forced`), or unset.
        FORCE_USER_COHORT = "LIGHTRAG_FORCE_USER_COHORT" => force_user_cohort: Option<Upstream> = None, cohort;
        /// Whether [`Config::routing_rules`] apply.
        ENABLE_CONDITIONAL_ROUTING = "LIGHTRAG_ENABLE_CONDITIONAL_ROUTING" => enable_conditional_routing: bool = false, boolean;
        /// Conditional routing rules, first match wins ([`crate::core::rules`]).
        ROUTING_RULES = "LIGHTRAG_ROUTING_RULES" => routing_rules: Vec<Rule> = Vec::new(), rules;
        /// Stickiness keys always routed to LightRAG (`forced`).
        ALLOW_USERS = "LIGHTRAG_ALLOW_USERS" => allow_users: BTreeSet<String> = BTreeSet::new(), list;
        /// Stickiness keys never routed to LightRAG (`forced`, beats everything but `disabled`).
        DENY_USERS = "LIGHTRAG_DENY_USERS" => deny_users: BTreeSet<String> = BTreeSet::new(), list;
        /// Everybody to Perplexity at once (`rollback`).
        EMERGENCY_ROLLBACK = "LIGHTRAG_EMERGENCY_ROLLBACK" => emergency_rollback: bool = false, boolean;
        /// The LightRAG query mode sent upstream (`{"query", "mode"}`).
        QUERY_MODE = "LIGHTRAG_QUERY_MODE" => query_mode: QueryMode = QueryMode::Hybrid, query_mode;
        /// Longest silence between two chunks of a stream after its first byte reached the
        /// client (s); longer is cut and marked truncated ([`crate::core::exchange`]).
        STREAM_IDLE_TIMEOUT_SECONDS = "LIGHTRAG_STREAM_IDLE_TIMEOUT_SECONDS" => stream_idle_timeout_seconds: f64 = exchange::DEFAULT_STREAM_IDLE_SECONDS, number(&exchange::STREAM_IDLE_SECONDS);
        /// Longest stream from its first byte to its end (s); longer is cut and marked.
        STREAM_MAX_SECONDS = "LIGHTRAG_STREAM_MAX_SECONDS" => stream_max_seconds: f64 = exchange::DEFAULT_STREAM_MAX_SECONDS, number(&exchange::STREAM_MAX_SECONDS);
        /// Largest accepted request body (413 above).
        MAX_BODY_BYTES = "LIGHTRAG_MAX_BODY_BYTES" => max_body_bytes: u64 = 65_536, whole(&Bounds::whole(1024, 10 * 1024 * 1024));
        LIGHTRAG_BASE_URL = "LIGHTRAG_BASE_URL" => lightrag_base_url: String = "http://localhost:9621".to_string(), url;
        PERPLEXITY_BASE_URL = "PERPLEXITY_BASE_URL" => perplexity_base_url: String = "https://api.perplexity.ai".to_string(), url;
        /// How often an isolate re-reads KV in the background.
        STATE_REFRESH_SECONDS = "STATE_REFRESH_SECONDS" => state_refresh_seconds: u64 = 30, whole(&Bounds::whole(1, 3600));
        /// Samples one stickiness key may add to the metric windows (the A/B metrics and the
        /// quality gate) per hour in one isolate; more are answered but not counted.
        METRICS_MAX_SAMPLES_PER_KEY = "LIGHTRAG_METRICS_MAX_SAMPLES_PER_KEY" => metrics_max_samples_per_key: u64 = 20, whole(&Bounds::whole(1, 1_000_000));
        /// How long a cold isolate's first requests wait for its first KV load (ms) before
        /// routing on the vars alone (counted in the status as `routed_before_kv`).
        FIRST_LOAD_WAIT_MS = "STATE_FIRST_LOAD_WAIT_MS" => first_load_wait_ms: u64 = 50, whole(&Bounds::whole(0, 10_000));
        /// How often an isolate flushes its metric windows to KV.
        METRICS_FLUSH_SECONDS = "METRICS_FLUSH_SECONDS" => metrics_flush_seconds: u64 = 60, whole(&Bounds::whole(10, 86_400));
        /// Answer-aware routing (docs/answer-aware.md): judge answers before they reach the
        /// client and let Perplexity answer instead of a no-context reply. Off: answers are
        /// released as they come and not judged (nor counted as no-context).
        NO_CONTEXT_FALLBACK = "LIGHTRAG_NO_CONTEXT_FALLBACK" => no_context_fallback: bool = true, boolean;
        /// Operator patterns of no-context replies: case-insensitive substrings looked for in
        /// an answer's first 256 characters (besides the built-in marker and canned texts).
        NO_CONTEXT_PATTERNS = "LIGHTRAG_NO_CONTEXT_PATTERNS" => no_context_patterns: BTreeSet<String> = BTreeSet::new(), list;
        /// Longest a stream's first text is held back for the no-context check (ms).
        NO_CONTEXT_HOLD_BACK_MS = "LIGHTRAG_NO_CONTEXT_HOLD_BACK_MS" => no_context_hold_back_ms: u64 = answer_defaults::HOLD_BACK_MS, whole(&answer_defaults::HOLD_BACK_BOUNDS);
        /// No-context share of LightRAG's recent replies from which they count as breaker
        /// failures (unset: never).
        NO_CONTEXT_BREAKER_RATE = "LIGHTRAG_NO_CONTEXT_BREAKER_RATE" => no_context_breaker_rate: Option<f64> = None, optional_number(&Bounds::open_closed(0.0, 1.0));
        /// Distinct callers the no-context replies must come from for that.
        NO_CONTEXT_BREAKER_MIN_KEYS = "LIGHTRAG_NO_CONTEXT_BREAKER_MIN_KEYS" => no_context_breaker_min_keys: u32 = 3, whole_u32(&Bounds::whole(1, 128));
        /// Share of requests Perplexity served that LightRAG also answers, unseen (dark launch).
        SHADOW_PERCENTAGE = "LIGHTRAG_SHADOW_PERCENTAGE" => shadow_percentage: Percent = Percent::ZERO, percent;
        /// Most shadow calls one isolate starts per minute.
        SHADOW_MAX_PER_MINUTE = "LIGHTRAG_SHADOW_MAX_PER_MINUTE" => shadow_max_per_minute: u64 = shadow::DEFAULT_MAX_PER_MINUTE, whole(&shadow::MAX_PER_MINUTE);
        /// Seconds a successful complete answer is cached (0: no cache).
        RESPONSE_CACHE_SECONDS = "LIGHTRAG_RESPONSE_CACHE_SECONDS" => response_cache_seconds: u64 = 0, whole(&Bounds::whole(0, cache::MAX_TTL_SECONDS));
        /// `POST /query`'s Perplexity model (the previous service's).
        PERPLEXITY_QUERY_MODEL = "PERPLEXITY_QUERY_MODEL" => perplexity_query_model: String = pq::DEFAULT_MODEL.to_string(), text;
        /// `POST /query`'s Perplexity temperature.
        PERPLEXITY_QUERY_TEMPERATURE = "PERPLEXITY_QUERY_TEMPERATURE" => perplexity_query_temperature: f64 = pq::DEFAULT_TEMPERATURE, number(&pq::TEMPERATURE);
        /// `POST /query`'s Perplexity `search_domain_filter` (`[]` for none).
        PERPLEXITY_QUERY_SEARCH_DOMAIN_FILTER = "PERPLEXITY_QUERY_SEARCH_DOMAIN_FILTER" => perplexity_query_search_domain_filter: BTreeSet<String> = pq::default_domain_filter(), list;
        /// `POST /query`'s Perplexity system prompt (asks for `(confidence score: X.X)`).
        PERPLEXITY_QUERY_SYSTEM_PROMPT = "PERPLEXITY_QUERY_SYSTEM_PROMPT" => perplexity_query_system_prompt: String = pq::SYSTEM_PROMPT.to_string(), text;
        /// Perplexity models a chat request may name (400 otherwise); none named → the default.
        ALLOWED_MODELS = "LIGHTRAG_ALLOWED_MODELS" => allowed_models: BTreeSet<String> = models::default_allowed(), list;
        /// Origins whose pages may call the chat and OFREP routes (CORS); none by default.
        ALLOWED_ORIGINS = "ROUTER_ALLOWED_ORIGINS" => allowed_origins: AllowedOrigins = AllowedOrigins::default(), origins;
        /// `development` loosens the client token and https-only upstreams; unset is production.
        ROUTER_ENV = "ROUTER_ENV" => deployment: Deployment = Deployment::Production, deployment;
        /// Where the shared state lives: `kv` (Workers KV, binding `ROUTER_STATE`) or
        /// `durable_object` (the state hub, binding `STATE_HUB`; docs/architecture.md#state-backends).
        /// Deployment-only; an invalid value or a missing binding falls back to KV with a warning.
        STATE_BACKEND = "STATE_BACKEND" => state_backend: StateBackend = StateBackend::Kv, state_backend;
        /// Cohort, position, arm and config version to every client, not only to admin-token requests.
        EXPOSE_ROUTING_DETAIL = "ROUTER_EXPOSE_ROUTING_DETAIL" => expose_routing_detail: bool = false, boolean;
    }
    BreakerVars {
        ENABLE_CIRCUIT_BREAKER = "LIGHTRAG_ENABLE_CIRCUIT_BREAKER" => enabled: bool = CB.enabled, boolean;
        CB_FAILURE_THRESHOLD = "LIGHTRAG_CIRCUIT_BREAKER_FAILURE_THRESHOLD" => failure_threshold: u32 = CB.failure_threshold, whole_u32(&cb::FAILURE_THRESHOLD);
        /// Seconds.
        CB_RECOVERY_TIMEOUT = "LIGHTRAG_CIRCUIT_BREAKER_RECOVERY_TIMEOUT" => recovery_timeout_s: f64 = CB.recovery_timeout_ms as f64 / 1000.0, number(&cb::RECOVERY_TIMEOUT_S);
        CB_FAILURE_RATE_THRESHOLD = "LIGHTRAG_CIRCUIT_BREAKER_FAILURE_RATE_THRESHOLD" => failure_rate_threshold: f64 = CB.failure_rate_threshold, number(&cb::FAILURE_RATE_THRESHOLD);
        CB_WINDOW_SIZE = "LIGHTRAG_CIRCUIT_BREAKER_WINDOW_SIZE" => window_size: u32 = CB.window_size, whole_u32(&cb::WINDOW_SIZE);
        CB_MINIMUM_CALLS = "LIGHTRAG_CIRCUIT_BREAKER_MINIMUM_CALLS" => minimum_calls: u32 = CB.minimum_calls, whole_u32(&cb::MINIMUM_CALLS);
        CB_SLOW_CALL_MS = "LIGHTRAG_CIRCUIT_BREAKER_SLOW_CALL_MS" => slow_call_ms: u64 = CB.slow_call_ms, whole(&cb::SLOW_CALL_MS);
        /// Seconds; unset means eight times the recovery timeout.
        CB_MAX_RECOVERY_TIMEOUT = "LIGHTRAG_CIRCUIT_BREAKER_MAX_RECOVERY_TIMEOUT" => max_recovery_timeout_s: Option<f64> = None, optional_number(&cb::MAX_RECOVERY_TIMEOUT_S);
        CB_HALF_OPEN_PROBE_SHARE = "LIGHTRAG_CIRCUIT_BREAKER_HALF_OPEN_PROBE_SHARE" => half_open_probe_share: f64 = CB.half_open_probe_share, number(&cb::HALF_OPEN_PROBE_SHARE);
        CB_HALF_OPEN_SUCCESSES = "LIGHTRAG_CIRCUIT_BREAKER_HALF_OPEN_SUCCESSES" => half_open_successes_to_close: u32 = CB.half_open_successes_to_close, whole_u32(&cb::HALF_OPEN_SUCCESSES);
        CB_JITTER = "LIGHTRAG_CIRCUIT_BREAKER_JITTER" => jitter: f64 = CB.jitter, number(&cb::JITTER);
        /// A trip needs failures from this many distinct stickiness keys.
        CB_MIN_DISTINCT_KEYS = "LIGHTRAG_CIRCUIT_BREAKER_MIN_DISTINCT_KEYS" => min_distinct_keys: u32 = CB.min_distinct_keys, whole_u32(&cb::MIN_DISTINCT_KEYS);
        /// Outcomes one stickiness key may hold in the breaker's count window.
        CB_MAX_CALLS_PER_KEY = "LIGHTRAG_CIRCUIT_BREAKER_MAX_CALLS_PER_KEY" => max_calls_per_key: u32 = CB.max_calls_per_key, whole_u32(&cb::MAX_CALLS_PER_KEY);
    }
    FallbackVars {
        FALLBACK_TO_PERPLEXITY = "LIGHTRAG_FALLBACK_TO_PERPLEXITY" => lightrag_to_perplexity: bool = FALLBACK.lightrag_to_perplexity, boolean;
        PERPLEXITY_FALLBACK_TO_LIGHTRAG = "LIGHTRAG_PERPLEXITY_FALLBACK_TO_LIGHTRAG" => perplexity_to_lightrag: bool = FALLBACK.perplexity_to_lightrag, boolean;
    }
    GateVars {
        ENABLE_QUALITY_METRICS = "LIGHTRAG_ENABLE_QUALITY_METRICS" => enabled: bool = GATE.enabled, boolean;
        MIN_QUALITY_THRESHOLD = "LIGHTRAG_MIN_QUALITY_THRESHOLD" => min_quality: f64 = GATE.min_quality, number(&gate::MIN_QUALITY);
        QUALITY_GATE_MIN_SAMPLES = "LIGHTRAG_QUALITY_GATE_MIN_SAMPLES" => min_samples: u64 = GATE.min_samples, whole(&gate::MIN_SAMPLES);
        QUALITY_GATE_PROBE_SHARE = "LIGHTRAG_QUALITY_GATE_PROBE_SHARE" => probe_share: f64 = GATE.probe_share, number(&gate::PROBE_SHARE);
    }
}

/// `LIGHTRAG_INTEGRATION_TIMEOUT_SECONDS`.
pub const TIMEOUT_SECONDS: Bounds = Bounds::open_closed(0.0, 600.0);

/// Defaults and bounds of the answer-aware variables.
pub mod answer_defaults {
    use crate::core::policy::Bounds;

    /// `LIGHTRAG_NO_CONTEXT_HOLD_BACK_MS`: measured in docs/answer-aware.md — a real answer
    /// commits on its first chunk, so the limit only matters for a stream that keeps looking
    /// like a no-context reply (or, with operator patterns, until 256 characters arrived).
    pub const HOLD_BACK_MS: u64 = 1_500;
    pub const HOLD_BACK_BOUNDS: Bounds = Bounds::whole(0, 10_000);
}

impl Default for Config {
    fn default() -> Self {
        defaults()
    }
}

/// The seed's defaults: integration off, nothing routed to LightRAG.
pub fn defaults() -> Config {
    Config::defaults()
}

/// A config and everything that was wrong with its inputs.
#[derive(Debug, Clone, Serialize)]
pub struct Loaded {
    pub config: Config,
    pub problems: Vec<Problem>,
}

impl Loaded {
    /// The refused values that came from runtime overrides: what makes `PUT /admin/config`
    /// answer 422 (notes and problems in the vars underneath do not).
    pub fn override_errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.source == Source::Override && p.is_error())
    }
}

/// Builds the config from wrangler vars and optional runtime overrides (which win, key by key).
pub fn load(
    vars: &Map<String, Value>,
    overrides: Option<&Map<String, Value>>,
    version: u64,
) -> Loaded {
    let mut l = Loader::new(vars, overrides);
    l.unknown_keys();
    let breaker = breaker_policy(&mut l);
    let fallback = fallback_policy(&mut l);
    let quality_gate = gate_policy(&mut l);
    let config = Config::read(version, breaker, fallback, quality_gate, &mut l);
    Loaded {
        config,
        problems: l.problems,
    }
}

/// A policy's `try_new` result, or its default and a problem against `group`, the variable
/// that switches the policy (the message names the refused setting). The per-variable bounds
/// and the cross-field checks above make this unreachable in practice; it keeps loading total.
fn or_default<P: Default>(l: &mut Loader<'_>, group: &'static str, r: Result<P, PolicyError>) -> P {
    r.unwrap_or_else(|e| {
        refused(l, group, &e);
        P::default()
    })
}

fn refused(l: &mut Loader<'_>, group: &'static str, e: &PolicyError) {
    let (v, src) = l
        .raw(group)
        .map_or((Value::Null, Source::Vars), |(v, s)| (v.clone(), s));
    l.problem(group, &v, src, format!("{e}; using the default policy"));
}

fn breaker_policy(l: &mut Loader<'_>) -> BreakerPolicy {
    let v = BreakerVars::read(l);
    let mut minimum_calls = v.minimum_calls;
    if minimum_calls > v.window_size {
        let fixed = CB.minimum_calls.min(v.window_size);
        if let Some((raw, src)) = l.raw(CB_MINIMUM_CALLS).or(l.raw(CB_WINDOW_SIZE)) {
            l.problem(
                CB_MINIMUM_CALLS,
                raw,
                src,
                format!(
                    "minimum calls {minimum_calls} exceed the window size {}; using {fixed}",
                    v.window_size
                ),
            );
        }
        minimum_calls = fixed;
    }
    let recovery_timeout_ms = (v.recovery_timeout_s * 1000.0).round().max(1.0) as u64;
    let default_max = recovery_timeout_ms.saturating_mul(8);
    let mut max_recovery_timeout_ms = v
        .max_recovery_timeout_s
        .map_or(default_max, |s| (s * 1000.0).round() as u64);
    if max_recovery_timeout_ms < recovery_timeout_ms {
        if let Some((raw, src)) = l.raw(CB_MAX_RECOVERY_TIMEOUT) {
            l.problem(
                CB_MAX_RECOVERY_TIMEOUT,
                raw,
                src,
                format!(
                    "must be at least the recovery timeout ({} s); using {} s",
                    v.recovery_timeout_s,
                    default_max as f64 / 1000.0
                ),
            );
        }
        max_recovery_timeout_ms = default_max;
    }
    let settings = BreakerSettings {
        enabled: v.enabled,
        failure_threshold: v.failure_threshold,
        failure_rate_threshold: v.failure_rate_threshold,
        window_size: v.window_size,
        minimum_calls,
        slow_call_ms: v.slow_call_ms,
        recovery_timeout_ms,
        max_recovery_timeout_ms,
        half_open_probe_share: v.half_open_probe_share,
        half_open_successes_to_close: v.half_open_successes_to_close,
        jitter: v.jitter,
        min_distinct_keys: v.min_distinct_keys,
        max_calls_per_key: v.max_calls_per_key,
        ..CB
    };
    or_default(l, ENABLE_CIRCUIT_BREAKER, BreakerPolicy::try_new(settings))
}

fn fallback_policy(l: &mut Loader<'_>) -> FallbackPolicy {
    let v = FallbackVars::read(l);
    let settings = FallbackSettings {
        lightrag_to_perplexity: v.lightrag_to_perplexity,
        perplexity_to_lightrag: v.perplexity_to_lightrag,
        ..FALLBACK
    };
    or_default(l, FALLBACK_TO_PERPLEXITY, FallbackPolicy::try_new(settings))
}

fn gate_policy(l: &mut Loader<'_>) -> GatePolicy {
    let v = GateVars::read(l);
    let settings = GateSettings {
        enabled: v.enabled,
        min_quality: v.min_quality,
        min_samples: v.min_samples,
        probe_share: v.probe_share,
        ..GATE
    };
    or_default(l, ENABLE_QUALITY_METRICS, GatePolicy::try_new(settings))
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
            assert!(l.config.breaker.settings().enabled, "safe default kept");
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
        assert_eq!(l.config.breaker.settings().failure_threshold, 3);
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
        assert_eq!(l.config.quality_gate.settings().min_quality, 0.7);
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
        assert_eq!(c.breaker.settings().minimum_calls, 5);
        assert_eq!(c.breaker.settings().max_recovery_timeout_ms, 480_000);
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

    /// The issue-9 case: a window the breaker cannot hold is refused against its variable, and
    /// the operator's other breaker settings stay as given (no silent reset to defaults).
    #[test]
    fn a_value_the_policy_refuses_names_its_variable_and_keeps_the_rest() {
        let ov = map(json!({
            CB_WINDOW_SIZE: "200",
            CB_FAILURE_THRESHOLD: "7",
            CB_RECOVERY_TIMEOUT: "120",
        }));
        let l = load(&Map::new(), Some(&ov), 1);
        assert_eq!(problems(&l), [CB_WINDOW_SIZE]);
        assert!(
            l.problems[0].message.contains("from 1 to 128"),
            "{}",
            l.problems[0].message
        );
        assert_eq!(l.override_errors().count(), 1);
        let b = l.config.breaker.settings();
        assert_eq!(b.window_size, 20);
        assert_eq!(b.failure_threshold, 7);
        assert_eq!(b.recovery_timeout_ms, 120_000);
        // Jitter and the gate's probe share are refused, not clamped.
        let l = load(
            &map(json!({CB_JITTER: "0.8", QUALITY_GATE_PROBE_SHARE: "0"})),
            None,
            0,
        );
        let mut p = problems(&l);
        p.sort();
        assert_eq!(p, [CB_JITTER, QUALITY_GATE_PROBE_SHARE]);
        assert_eq!(l.config.breaker.settings().jitter, 0.1);
        assert_eq!(l.config.quality_gate.settings().probe_share, 0.05);
        // One default for the gate's sample minimum.
        assert_eq!(defaults().quality_gate.settings().min_samples, 50);
    }

    #[test]
    fn previous_service_booleans_and_rule_object_carry_over() {
        let l = load(
            &map(json!({
                INTEGRATION_ENABLED: "t",
                ENABLE_CONDITIONAL_ROUTING: "T",
                FALLBACK_TO_PERPLEXITY: "f",
                ROUTING_RULES: "{\"long queries\": {\"type\": \"query_length\", \"min_length\": 100, \"max_length\": 1000}, \"typed\": {\"type\": \"query_type\", \"allowed_types\": [\"metabolomics\"]}}",
            })),
            None,
            0,
        );
        let c = &l.config;
        assert!(c.integration_enabled && c.enable_conditional_routing);
        assert!(!c.fallback.settings().lightrag_to_perplexity);
        let names: Vec<&str> = c.routing_rules.iter().map(Rule::name).collect();
        assert_eq!(names, ["long-queries", legacy::NO_MATCH_RULE]);
        let spec = serde_json::to_value(&c.routing_rules).unwrap();
        assert_eq!(
            spec[0],
            json!({"name": "long-queries", "when": {"min_length": 100, "max_length": 1000}, "action": "rollout"})
        );
        assert_eq!(spec[1]["action"], "perplexity");
        let notes: Vec<_> = l.problems.iter().filter(|p| !p.is_error()).collect();
        assert_eq!(notes.len(), 1);
        assert!(notes[0].message.contains("translated into 1"));
        let errors: Vec<_> = l.problems.iter().filter(|p| p.is_error()).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("`typed` left out"));
        // The old default, an empty object, is simply no rules.
        let l = load(&map(json!({ROUTING_RULES: "{}"})), None, 0);
        assert!(l.problems.is_empty() && l.config.routing_rules.is_empty());
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
