//! Reading one variable: where its value comes from (an override wins over a var), how each
//! kind of value is parsed, and the [`Problem`] a bad value leaves behind. Every parser returns
//! a usable value — the parsed one, or the default it was given — so loading never fails.

use super::legacy;
use super::problem::{Problem, Severity, Source};
use super::{KNOWN_VARIABLES, SECRET_VARIABLES, VARS_ONLY};
use crate::core::backend::StateBackend;
use crate::core::cohort::{Percent, Salt};
use crate::core::guard::cors::{self, AllowedOrigins};
use crate::core::guard::deployment::Deployment;
use crate::core::model::Upstream;
use crate::core::policy::Bounds;
use crate::core::rules::{self, Rule};
use crate::core::wire::lightrag::QueryMode;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Longest value echoed back in a problem.
const ECHO_MAX: usize = 120;
/// Longest salt, list entry or URL accepted.
pub(super) const TEXT_MAX: usize = 2048;

pub(super) struct Loader<'a> {
    vars: &'a Map<String, Value>,
    overrides: Option<&'a Map<String, Value>>,
    pub(super) problems: Vec<Problem>,
}

/// A blank string or `null` is "unset".
fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

pub(super) fn echo(v: &Value) -> String {
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

/// Parses the accepted boolean spellings: `true/false`, `1/0`, `yes/no`, `on/off` and the
/// previous service's `t/f`, any case, or a JSON bool or 0/1.
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
            "true" | "t" | "1" | "yes" | "on" => Some(true),
            "false" | "f" | "0" | "no" | "off" => Some(false),
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
    pub(super) fn new(
        vars: &'a Map<String, Value>,
        overrides: Option<&'a Map<String, Value>>,
    ) -> Loader<'a> {
        Loader {
            vars,
            overrides,
            problems: Vec::new(),
        }
    }

    /// The effective raw value of `name` and its source; `None` when unset everywhere.
    pub(super) fn raw(&self, name: &str) -> Option<(&'a Value, Source)> {
        if let Some(v) = self
            .overrides
            .filter(|_| !VARS_ONLY.contains(&name))
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

    pub(super) fn problem(&mut self, name: &str, v: &Value, src: Source, message: String) {
        self.problems.push(Problem {
            variable: name.to_string(),
            value: echo(v),
            message,
            source: src,
            severity: Severity::Error,
            index: None,
        });
    }

    pub(super) fn unknown_keys(&mut self) {
        let known = |k: &str| KNOWN_VARIABLES.contains(&k);
        if let Some(o) = self.overrides {
            for (k, v) in o {
                if SECRET_VARIABLES.contains(&k.as_str()) {
                    self.problems.push(Problem {
                        variable: k.clone(),
                        value: "<redacted>".into(),
                        message: "secrets come from wrangler secrets, never from overrides".into(),
                        source: Source::Override,
                        severity: Severity::Error,
                        index: None,
                    });
                } else if VARS_ONLY.contains(&k.as_str()) {
                    // The salt is never echoed (see `salt`); the other values help the operator.
                    let redacted = Value::String("<redacted>".into());
                    let shown = if k == super::USER_HASH_SALT {
                        &redacted
                    } else {
                        v
                    };
                    self.problem(
                        k,
                        shown,
                        Source::Override,
                        "comes from wrangler vars or secrets only; a runtime override of it is refused".into(),
                    );
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

    pub(super) fn boolean(&mut self, name: &str, default: bool) -> bool {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        parse_bool(v).unwrap_or_else(|| {
            self.problem(
                name,
                v,
                src,
                format!(
                    "expected a boolean: true/false, 1/0, yes/no, on/off or t/f; using {default}"
                ),
            );
            default
        })
    }

    /// A real number inside `bounds`.
    pub(super) fn number(&mut self, name: &str, default: f64, bounds: &Bounds) -> f64 {
        self.optional_number(name, Some(default), bounds)
            .unwrap_or(default)
    }

    /// A real number inside `bounds`, or `default` (which may be "unset") when absent or bad.
    pub(super) fn optional_number(
        &mut self,
        name: &str,
        default: Option<f64>,
        bounds: &Bounds,
    ) -> Option<f64> {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        match parse_number(v) {
            Some(x) if bounds.contains(x) => Some(x),
            _ => {
                let using = default.map_or("the default".to_string(), |d| d.to_string());
                self.problem(
                    name,
                    v,
                    src,
                    format!("expected {}; using {using}", bounds.describe()),
                );
                default
            }
        }
    }

    /// A whole number inside `bounds` (which must fit `T`).
    /// A whole number inside `bounds`.
    pub(super) fn whole(&mut self, name: &str, default: u64, bounds: &Bounds) -> u64 {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        match parse_number(v).filter(|x| x.fract() == 0.0 && bounds.contains(*x)) {
            Some(x) => x as u64,
            None => {
                self.problem(
                    name,
                    v,
                    src,
                    format!("expected {}; using {default}", bounds.describe()),
                );
                default
            }
        }
    }

    /// [`Loader::whole`] for a `u32` setting (its bounds fit a `u32`).
    pub(super) fn whole_u32(&mut self, name: &str, default: u32, bounds: &Bounds) -> u32 {
        u32::try_from(self.whole(name, default.into(), bounds)).unwrap_or(default)
    }

    pub(super) fn percent(&mut self, name: &str, default: Percent) -> Percent {
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

    /// A non-empty string of at most [`TEXT_MAX`] bytes (`POST /query`'s Perplexity model and
    /// system prompt).
    pub(super) fn text(&mut self, name: &str, default: String) -> String {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        match v.as_str() {
            Some(s) if s.len() <= TEXT_MAX => s.to_string(),
            _ => {
                self.problem(
                    name,
                    v,
                    src,
                    format!("expected a non-empty string of at most {TEXT_MAX} bytes; using the default"),
                );
                default
            }
        }
    }

    /// The cohort salt: a string of at most [`TEXT_MAX`] bytes; a refused value is never echoed.
    pub(super) fn salt(&mut self, name: &str, default: Salt) -> Salt {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        match v.as_str() {
            Some(s) if s.len() <= TEXT_MAX => Salt::new(s),
            _ => {
                self.problem(
                    name,
                    &Value::String("<redacted>".into()),
                    src,
                    format!("expected a non-empty string of at most {TEXT_MAX} bytes; using the default"),
                );
                default
            }
        }
    }

    /// A list of exact origins ([`cors::parse_origin`]); bad entries are reported and skipped.
    pub(super) fn origins(&mut self, name: &str, default: AllowedOrigins) -> AllowedOrigins {
        let Some((_, src)) = self.raw(name) else {
            return default;
        };
        let mut out = std::collections::BTreeSet::new();
        for entry in self.list(name, std::collections::BTreeSet::new()) {
            match cors::parse_origin(&entry) {
                Ok(o) => {
                    out.insert(o);
                }
                Err(e) => self.problem(
                    name,
                    &Value::String(entry),
                    src,
                    format!("{e}; entry skipped"),
                ),
            }
        }
        AllowedOrigins::new(out)
    }

    /// `kv` or `durable_object` ([`StateBackend::parse`]).
    pub(super) fn state_backend(&mut self, name: &str, default: StateBackend) -> StateBackend {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        match v.as_str().and_then(StateBackend::parse) {
            Some(b) => b,
            None => {
                self.problem(
                    name,
                    v,
                    src,
                    format!("expected kv or durable_object; using {}", default.as_str()),
                );
                default
            }
        }
    }

    /// `development`, `staging` or `production`.
    pub(super) fn deployment(&mut self, name: &str, default: Deployment) -> Deployment {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        match v.as_str().and_then(Deployment::parse) {
            Some(d) => d,
            None => {
                self.problem(
                    name,
                    v,
                    src,
                    format!(
                        "expected development, staging or production; using {}",
                        default.as_str()
                    ),
                );
                default
            }
        }
    }

    /// `lightrag`, `perplexity`, or `none` / empty for unset.
    pub(super) fn cohort(&mut self, name: &str, default: Option<Upstream>) -> Option<Upstream> {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
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

    pub(super) fn query_mode(&mut self, name: &str, default: QueryMode) -> QueryMode {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        match v.as_str().and_then(QueryMode::parse) {
            Some(m) => m,
            None => {
                self.problem(
                    name,
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

    /// An `http://` or `https://` URL without spaces; a trailing `/` is dropped.
    /// An optional http(s) URL kept as written (its path matters: a webhook's), or unset.
    pub(super) fn optional_url(&mut self, name: &str, default: Option<String>) -> Option<String> {
        let (v, src) = self.raw(name)?;
        let ok = v.as_str().map(str::trim).filter(|s| is_http_url(s));
        match ok {
            Some(s) => Some(s.to_string()),
            None => {
                self.problem(
                    name,
                    v,
                    src,
                    "expected an http:// or https:// URL without spaces; not used".to_string(),
                );
                default
            }
        }
    }

    pub(super) fn url(&mut self, name: &str, default: String) -> String {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        // Trailing slashes go before the host check: `https:////` must not become `https:`
        // (found by `make fuzz`, target `config_load`).
        let ok = v
            .as_str()
            .map(|s| s.trim().trim_end_matches('/'))
            .filter(|s| is_http_url(s));
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

    /// A comma-separated list, a JSON array in a string, or a native array of strings. Bad
    /// entries are reported and skipped; the good ones are kept.
    pub(super) fn list(&mut self, name: &str, default: BTreeSet<String>) -> BTreeSet<String> {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        let items: Vec<Value> = match v {
            Value::String(s) if s.trim_start().starts_with('[') => {
                match self.json_value(name, v, src) {
                    Some(Value::Array(a)) => a,
                    _ => return default,
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
                return default;
            }
        };
        let mut out = BTreeSet::new();
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

    /// The routing rules (see [`crate::core::rules`]): a JSON array, as a string or native;
    /// each bad rule is one problem with its index. The previous service's object form is
    /// translated ([`legacy`]) and the translation reported as a note.
    pub(super) fn rules(&mut self, name: &str, default: Vec<Rule>) -> Vec<Rule> {
        let Some((v, src)) = self.raw(name) else {
            return default;
        };
        let Some(json) = self.json_value(name, v, src) else {
            return default;
        };
        if let Some(map) = json.as_object().filter(|m| legacy::is_legacy(m)) {
            let t = legacy::translate(map);
            for p in t.problems {
                self.problems.push(Problem {
                    variable: name.to_string(),
                    value: echo(v),
                    message: p.message,
                    source: src,
                    severity: p.severity,
                    index: None,
                });
            }
            return t.rules;
        }
        let parsed = rules::parse(&json);
        for e in parsed.errors {
            let item = json.get(e.index).unwrap_or(&json);
            let label = e.name.map(|n| format!(" ({n})")).unwrap_or_default();
            self.problems.push(Problem {
                variable: name.to_string(),
                value: echo(item),
                message: format!("rule #{}{label} skipped: {}", e.index, e.reason),
                source: src,
                severity: Severity::Error,
                index: json.is_array().then_some(e.index),
            });
        }
        parsed.rules
    }
}

/// An `http://` or `https://` URL with a host, within the text limit, without spaces or
/// control characters.
fn is_http_url(s: &str) -> bool {
    let host = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or_default();
    !host.is_empty()
        && !host.starts_with('/')
        && s.len() <= TEXT_MAX
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}
