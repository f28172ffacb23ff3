//! Where the breaker playground's calls come from: lines an operator types or pastes, or a
//! generated scenario (a base error rate, slow calls, bursts of errors).
//!
//! Why in core: the typed lines and the generated calls are classified exactly as the edge
//! classifies a finished call ([`Outcome::from_response`] with the policy's slow-call bound), so
//! "a 200 that took 12 s" is a slow call here exactly when it would be one in production. The
//! generator is deterministic: it draws from a small counter-based generator seeded by the
//! caller, so a scenario and its seed always give the same calls (and the same page).

use super::replay::{Call, ReplayError, MAX_CALLS};
use crate::core::outcome::{Outcome, OutcomeKind};
use serde::Deserialize;

fn err(field: impl Into<String>, message: impl Into<String>) -> ReplayError {
    ReplayError {
        field: field.into(),
        message: message.into(),
    }
}

/// Parses one call per line: `<seconds> <status | kind> [latency] [probe roll]`, e.g.
/// `12.5 503`, `13 200 12s`, `14 first_byte_timeout 30000`, `20 200 80ms 0.05`. Blank lines and
/// lines starting with `#` are skipped. A latency without a unit is milliseconds. Kinds are the
/// outcome names (`success`, `rate_limited`, `request_timeout`, `network_error`,
/// `first_byte_timeout`, `total_timeout`, `slow_call`, `truncated_stream`, `context_length`,
/// `not_sent`, `no_answer`) or `timeout` for a first-byte timeout. The probe roll defaults to 0
/// (a half-open breaker admits the call as a probe whenever it has a permit).
pub fn parse_lines(text: &str, slow_call_ms: u64) -> Result<Vec<Call>, ReplayError> {
    let mut calls = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let field = format!("line {}", n + 1);
        if calls.len() >= MAX_CALLS {
            return Err(err(field, format!("at most {MAX_CALLS} calls")));
        }
        let mut parts = line.split_whitespace();
        let at_s: f64 = parts
            .next()
            .and_then(|t| t.parse().ok())
            .filter(|t: &f64| t.is_finite() && *t >= 0.0 && *t <= 1e9)
            .ok_or_else(|| {
                err(
                    &field,
                    format!("starts with the time in seconds (≥ 0), got {line:?}"),
                )
            })?;
        let what = parts
            .next()
            .ok_or_else(|| err(&field, "needs a status code or an outcome after the time"))?;
        let latency_ms = match parts.next() {
            None => 0,
            Some(l) => parse_latency(l).ok_or_else(|| {
                err(
                    &field,
                    format!("latency must look like 120, 120ms or 12s, got {l:?}"),
                )
            })?,
        };
        let probe_roll = match parts.next() {
            None => 0.0,
            Some(r) => r
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..1.0).contains(r))
                .ok_or_else(|| err(&field, format!("probe roll must be in [0, 1), got {r:?}")))?,
        };
        if let Some(extra) = parts.next() {
            return Err(err(
                &field,
                format!("unexpected {extra:?} after the probe roll"),
            ));
        }
        let outcome = match what.parse::<u16>() {
            Ok(status) if (100..=599).contains(&status) => {
                Outcome::from_response(status, latency_ms, slow_call_ms)
            }
            Ok(status) => {
                return Err(err(&field, format!("status must be 100–599, got {status}")));
            }
            Err(_) => Outcome::new(kind(what).ok_or_else(|| {
                err(&field, format!("unknown outcome {what:?}; use a status code or one of success, rate_limited, request_timeout, network_error, timeout, first_byte_timeout, total_timeout, slow_call, truncated_stream, context_length, not_sent, no_answer"))
            })?, latency_ms),
        };
        calls.push(Call {
            at_ms: (at_s * 1000.0).round() as u64,
            outcome,
            probe_roll,
        });
    }
    Ok(calls)
}

fn kind(name: &str) -> Option<OutcomeKind> {
    Some(match name {
        "success" | "ok" => OutcomeKind::Success,
        "rate_limited" => OutcomeKind::RateLimited,
        "request_timeout" => OutcomeKind::RequestTimeout,
        "network_error" => OutcomeKind::NetworkError,
        "timeout" | "first_byte_timeout" => OutcomeKind::FirstByteTimeout,
        "total_timeout" => OutcomeKind::TotalTimeout,
        "slow_call" => OutcomeKind::SlowCall,
        "truncated_stream" => OutcomeKind::TruncatedStream,
        "context_length" => OutcomeKind::ContextLength,
        "not_sent" => OutcomeKind::NotSent,
        "no_answer" => OutcomeKind::NoAnswer,
        _ => return None,
    })
}

fn parse_latency(s: &str) -> Option<u64> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().ok()?;
    (v.is_finite() && v >= 0.0 && v * scale <= 1e9).then(|| (v * scale).round() as u64)
}

/// One call as data (`breakerReplay(config, [{at_ms, status | kind, latency_ms?, probe_roll?}])`):
/// `status` is classified as the edge classifies a response; `kind` is an outcome name
/// (`"first_byte_timeout"`, `{"http_server_error": 503}`, …) taken as it is.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallDoc {
    pub at_ms: u64,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub kind: Option<OutcomeKind>,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub probe_roll: f64,
}

/// The calls of a list of [`CallDoc`]s, each with exactly one of `status` and `kind`.
pub fn calls_from_docs(docs: &[CallDoc], slow_call_ms: u64) -> Result<Vec<Call>, ReplayError> {
    if docs.len() > MAX_CALLS {
        return Err(err(
            "calls",
            format!("at most {MAX_CALLS} calls, got {}", docs.len()),
        ));
    }
    docs.iter()
        .enumerate()
        .map(|(i, d)| {
            let field = |f: &str| format!("calls[{i}].{f}");
            if !(0.0..1.0).contains(&d.probe_roll) {
                return Err(err(
                    field("probe_roll"),
                    format!("must be in [0, 1), got {}", d.probe_roll),
                ));
            }
            let outcome = match (d.status, d.kind) {
                (Some(s), None) if (100..=599).contains(&s) => {
                    Outcome::from_response(s, d.latency_ms, slow_call_ms)
                }
                (Some(s), None) => {
                    return Err(err(field("status"), format!("must be 100–599, got {s}")))
                }
                (None, Some(k)) => Outcome::new(k, d.latency_ms),
                _ => {
                    return Err(err(
                        format!("calls[{i}]"),
                        "give exactly one of status and kind",
                    ))
                }
            };
            Ok(Call {
                at_ms: d.at_ms,
                outcome,
                probe_roll: d.probe_roll,
            })
        })
        .collect()
}

/// A burst of errors inside a scenario.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    /// Seconds after the start.
    pub at_s: f64,
    pub duration_s: f64,
    pub error_rate: f64,
}

/// A generated sequence: `calls_per_minute` evenly spaced calls for `duration_s`, each an error
/// (`error_status`) with probability `error_rate` (or the burst's rate inside a burst), else
/// slow (`slow_latency_ms`) with probability `slow_rate`, else a success after `latency_ms`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    pub duration_s: f64,
    pub calls_per_minute: f64,
    pub error_rate: f64,
    pub slow_rate: f64,
    pub error_status: u16,
    pub latency_ms: u64,
    pub slow_latency_ms: u64,
    pub bursts: Vec<Burst>,
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            duration_s: 3600.0,
            calls_per_minute: 60.0,
            error_rate: 0.02,
            slow_rate: 0.0,
            error_status: 503,
            latency_ms: 800,
            slow_latency_ms: 15_000,
            bursts: Vec::new(),
            seed: 1,
        }
    }
}

fn rate(field: &str, v: f64) -> Result<(), ReplayError> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(err(field, format!("must be a number in [0, 1], got {v}")))
    }
}

/// splitmix64: a counter-based generator, so call `i` of seed `s` is always the same roll.
fn roll(seed: u64, i: u64, lane: u64) -> f64 {
    let mut z = seed
        .wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(lane.wrapping_mul(0xD1B5_4A32_D192_ED03));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

impl Scenario {
    /// The calls, classified with the policy's slow-call bound.
    pub fn calls(&self, slow_call_ms: u64) -> Result<Vec<Call>, ReplayError> {
        let d = self.duration_s;
        if !(d.is_finite() && d > 0.0 && d <= 7.0 * 86_400.0) {
            return Err(err(
                "duration_s",
                format!("must be in (0, 604800] seconds, got {d}"),
            ));
        }
        let cpm = self.calls_per_minute;
        if !(cpm.is_finite() && cpm > 0.0 && cpm <= 6000.0) {
            return Err(err(
                "calls_per_minute",
                format!("must be in (0, 6000], got {cpm}"),
            ));
        }
        rate("error_rate", self.error_rate)?;
        rate("slow_rate", self.slow_rate)?;
        if !(100..=599).contains(&self.error_status) {
            return Err(err(
                "error_status",
                format!("must be 100–599, got {}", self.error_status),
            ));
        }
        for (i, b) in self.bursts.iter().enumerate() {
            rate(&format!("bursts[{i}].error_rate"), b.error_rate)?;
            if !(b.at_s.is_finite()
                && b.at_s >= 0.0
                && b.duration_s.is_finite()
                && b.duration_s > 0.0)
            {
                return Err(err(
                    format!("bursts[{i}]"),
                    "at_s must be ≥ 0 and duration_s > 0",
                ));
            }
        }
        let n = (d * cpm / 60.0).floor();
        if n > MAX_CALLS as f64 {
            return Err(err(
                "calls_per_minute",
                format!("{n} calls in {d} s; at most {MAX_CALLS} — lower the rate or the duration"),
            ));
        }
        let step_ms = 60_000.0 / cpm;
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n as u64 {
            let t_ms = (i as f64 * step_ms).round() as u64;
            let t_s = t_ms as f64 / 1000.0;
            let error_rate = self
                .bursts
                .iter()
                .find(|b| t_s >= b.at_s && t_s < b.at_s + b.duration_s)
                .map_or(self.error_rate, |b| b.error_rate);
            let outcome = if roll(self.seed, i, 0) < error_rate {
                Outcome::from_response(self.error_status, self.latency_ms, slow_call_ms)
            } else if roll(self.seed, i, 1) < self.slow_rate {
                Outcome::from_response(200, self.slow_latency_ms, slow_call_ms)
            } else {
                Outcome::from_response(200, self.latency_ms, slow_call_ms)
            };
            out.push(Call {
                at_ms: t_ms,
                outcome,
                probe_roll: roll(self.seed, i, 2),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_and_classify_like_the_edge() {
        let calls = parse_lines(
            "# night of the 3rd\n0 200 120\n1.5 503\n2 200 12s\n3 404\n4 timeout 30000\n5 429 10ms 0.5\n",
            10_000,
        )
        .unwrap();
        let kinds: Vec<_> = calls.iter().map(|c| c.outcome.kind).collect();
        assert_eq!(
            kinds,
            [
                OutcomeKind::Success,
                OutcomeKind::HttpServerError(503),
                OutcomeKind::SlowCall,
                OutcomeKind::ClientError(404),
                OutcomeKind::FirstByteTimeout,
                OutcomeKind::RateLimited,
            ]
        );
        assert_eq!(calls[1].at_ms, 1500);
        assert_eq!(calls[2].outcome.latency_ms, 12_000);
        assert_eq!(calls[5].probe_roll, 0.5);
        let docs: Vec<CallDoc> = serde_json::from_value(serde_json::json!([
            {"at_ms": 0, "status": 200, "latency_ms": 12000},
            {"at_ms": 5, "kind": "network_error"},
            {"at_ms": 6, "kind": {"http_server_error": 502}, "probe_roll": 0.5}
        ]))
        .unwrap();
        let from_docs = calls_from_docs(&docs, 10_000).unwrap();
        assert_eq!(from_docs[0].outcome.kind, OutcomeKind::SlowCall);
        assert_eq!(from_docs[1].outcome.kind, OutcomeKind::NetworkError);
        assert_eq!(from_docs[2].outcome.kind, OutcomeKind::HttpServerError(502));
        let both: Vec<CallDoc> = serde_json::from_value(
            serde_json::json!([{"at_ms": 0, "status": 200, "kind": "success"}]),
        )
        .unwrap();
        assert_eq!(calls_from_docs(&both, 1).unwrap_err().field, "calls[0]");
        for (bad, field) in [
            ("x 200", "line 1"),
            ("1", "line 1"),
            ("\n1 700", "line 2"),
            ("1 200 fast", "line 1"),
            ("1 oops", "line 1"),
            ("1 200 5 1.5", "line 1"),
            ("1 200 5 0.1 more", "line 1"),
        ] {
            assert_eq!(parse_lines(bad, 10_000).unwrap_err().field, field, "{bad}");
        }
    }

    #[test]
    fn scenarios_are_deterministic_and_follow_their_rates() {
        let s = Scenario {
            duration_s: 600.0,
            calls_per_minute: 600.0,
            error_rate: 0.1,
            bursts: vec![Burst {
                at_s: 100.0,
                duration_s: 50.0,
                error_rate: 1.0,
            }],
            ..Scenario::default()
        };
        let a = s.calls(10_000).unwrap();
        assert_eq!(a, s.calls(10_000).unwrap());
        assert_eq!(a.len(), 6000);
        let in_burst = a
            .iter()
            .filter(|c| (100_000..150_000).contains(&c.at_ms))
            .collect::<Vec<_>>();
        assert!(in_burst.iter().all(|c| c.outcome.is_failure()));
        let errors = a.iter().filter(|c| c.outcome.is_failure()).count() - in_burst.len();
        let share = errors as f64 / (a.len() - in_burst.len()) as f64;
        assert!((share - 0.1).abs() < 0.02, "{share}");
        assert_eq!(
            Scenario {
                error_rate: 2.0,
                ..Scenario::default()
            }
            .calls(1)
            .unwrap_err()
            .field,
            "error_rate"
        );
        assert_eq!(
            Scenario {
                calls_per_minute: 6000.0,
                duration_s: 604_800.0,
                ..Scenario::default()
            }
            .calls(1)
            .unwrap_err()
            .field,
            "calls_per_minute"
        );
    }
}
