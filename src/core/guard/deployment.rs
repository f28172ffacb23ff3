//! `ROUTER_ENV`: which rules loosen in development, and what a deployment is missing.
//!
//! Why one variable: two protections must be on everywhere but on a developer's machine — the
//! client token on chat traffic ([`super::client`]) and https-only upstreams (a key sent over
//! plain http can be read on the way). `ROUTER_ENV=development` (set by `make dev` and the test
//! harness, never by a deployed environment) is the only value that loosens them; unset, it
//! means production, so a forgotten variable fails closed. It is read from wrangler vars only:
//! a runtime override could otherwise switch the protections off, so one is refused (422), as
//! are overrides of the upstream base URLs — an override pointing `PERPLEXITY_BASE_URL` at
//! another host would hand it the Perplexity key.

use crate::core::config::{Config, Problem, Severity, Source};
use crate::core::model::Upstream;
use serde::Serialize;

/// Where the router runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Deployment {
    Development,
    Staging,
    Production,
}

impl Deployment {
    pub fn parse(s: &str) -> Option<Deployment> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Some(Deployment::Development),
            "staging" => Some(Deployment::Staging),
            "production" | "prod" => Some(Deployment::Production),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Deployment::Development => "development",
            Deployment::Staging => "staging",
            Deployment::Production => "production",
        }
    }

    /// Whether chat traffic needs `ROUTER_CLIENT_TOKEN`.
    pub fn requires_client_token(self) -> bool {
        self != Deployment::Development
    }

    /// Which upstream URLs may receive a key.
    pub fn url_policy(self) -> UrlPolicy {
        match self {
            Deployment::Development => UrlPolicy::AllowInsecure,
            _ => UrlPolicy::HttpsOnly,
        }
    }
}

/// Which upstream base URLs the router sends keys to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlPolicy {
    HttpsOnly,
    /// Development: plain http too (local mock upstreams).
    AllowInsecure,
}

impl UrlPolicy {
    /// `Err` with the reason when the router must not call `url` (the base URL of `u`).
    pub fn check(self, u: Upstream, url: &str) -> Result<(), String> {
        let https = url
            .get(..8)
            .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
        if https || self == UrlPolicy::AllowInsecure {
            Ok(())
        } else {
            Err(format!(
                "{} is not https: the router does not send the {u} key over plain http outside ROUTER_ENV=development",
                base_url_variable(u)
            ))
        }
    }
}

/// Whether the rollout webhook may be sent to `url`: https only outside development (the
/// payload describes the rollout and its numbers; over plain http anyone on the way reads it).
pub fn webhook_allowed(d: Deployment, url: &str) -> Result<(), String> {
    let https = url
        .get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("https://"));
    if https || d.url_policy() == UrlPolicy::AllowInsecure {
        Ok(())
    } else {
        Err(format!(
            "LIGHTRAG_ROLLOUT_WEBHOOK_URL is not https: no webhook is sent over plain http outside ROUTER_ENV=development (ROUTER_ENV is {})",
            d.as_str()
        ))
    }
}

/// The variable holding `u`'s base URL.
pub fn base_url_variable(u: Upstream) -> &'static str {
    match u {
        Upstream::Lightrag => crate::core::config::LIGHTRAG_BASE_URL,
        Upstream::Perplexity => crate::core::config::PERPLEXITY_BASE_URL,
    }
}

/// Problems the config alone shows: a plain-http base URL outside development (calls to it are
/// refused), and the public default salt outside development (anyone can compute cohorts).
pub fn config_problems(c: &Config) -> Vec<Problem> {
    let mut out = Vec::new();
    let policy = c.deployment.url_policy();
    for (u, url) in [
        (Upstream::Lightrag, &c.lightrag_base_url),
        (Upstream::Perplexity, &c.perplexity_base_url),
    ] {
        if let Err(e) = policy.check(u, url) {
            out.push(Problem {
                variable: base_url_variable(u).to_string(),
                value: url.clone(),
                message: format!("{e}; requests for it are refused until it is https"),
                source: Source::Vars,
                severity: Severity::Error,
                index: None,
            });
        }
    }
    if let Some(url) = &c.rollout_webhook_url {
        if let Err(e) = webhook_allowed(c.deployment, url) {
            out.push(Problem {
                variable: crate::core::config::ROLLOUT_WEBHOOK_URL.to_string(),
                value: url.clone(),
                message: e,
                source: Source::Vars,
                severity: Severity::Error,
                index: None,
            });
        }
    }
    if c.deployment != Deployment::Development && c.user_hash_salt.is_public_default() {
        out.push(Problem {
            variable: crate::core::config::USER_HASH_SALT.to_string(),
            value: "<the public default>".into(),
            message: "the cohort salt is the public default, so anyone can compute who is in the LightRAG cohort; set it as a secret (wrangler secret put LIGHTRAG_USER_HASH_SALT) before the rollout starts — changing it reshuffles users".into(),
            source: Source::Vars,
            severity: Severity::Note,
            index: None,
        });
    }
    out
}

/// What the edge knows about the Worker's bindings and secrets (the core never sees them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupFacts {
    pub client_token: bool,
    pub rate_limiter: bool,
}

/// Set-up problems outside the config: shown in `GET /admin/status` with the config problems.
pub fn setup_problems(d: Deployment, f: &SetupFacts) -> Vec<Problem> {
    let mut out = Vec::new();
    if !f.client_token && d.requires_client_token() {
        out.push(Problem {
            variable: CLIENT_TOKEN.to_string(),
            value: "<unset>".into(),
            message: format!(
                "ROUTER_ENV is {}: chat traffic is refused (503) until the client token is set (wrangler secret put {CLIENT_TOKEN})",
                d.as_str()
            ),
            source: Source::Secrets,
            severity: Severity::Error,
            index: None,
        });
    }
    if !f.rate_limiter && d != Deployment::Development {
        out.push(Problem {
            variable: RATE_LIMIT_BINDING.to_string(),
            value: "<unbound>".into(),
            message: "no [[ratelimits]] binding of this name: chat requests are not rate-limited"
                .into(),
            source: Source::Vars,
            severity: Severity::Error,
            index: None,
        });
    }
    out
}

/// The client token secret.
pub const CLIENT_TOKEN: &str = "ROUTER_CLIENT_TOKEN";
/// The Workers Rate Limiting binding (`[[ratelimits]]` in wrangler.toml).
pub const RATE_LIMIT_BINDING: &str = "ROUTER_RATE_LIMIT";
