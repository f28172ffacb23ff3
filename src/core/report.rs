//! What operators read: the `GET /admin/status` document (modelled on the seed's
//! `get_system_status`) and the `GET /metrics` Prometheus text exposition.
//!
//! Why pure: both are pure functions of the isolate's state (config, breakers, windows, the
//! controller's last aggregate, KV warnings); keeping them here makes their shape testable
//! natively and keeps the Worker a thin caller. No raw user id ever reaches these inputs.

use crate::core::answer::cache::CacheCounts;
use crate::core::answer::shadow::ShadowCounts;
use crate::core::answer::watch::WatchStatus;
use crate::core::breaker::BreakerStatus;
use crate::core::config::{Config, Problem};
use crate::core::experiment::report::ShadowSummary;
use crate::core::fleet::{KvHealth, QuotaStatus, TickNote};
use crate::core::model::Arm;
use crate::core::model::Upstream;
use crate::core::store::{per_upstream, OpCounts, RolloutDoc};
use crate::core::window::{Histogram, MetricKey, Stats};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Everything the status document and the metrics text are built from.
#[derive(Debug, Clone)]
pub struct ReportInputs<'a> {
    pub now_ms: u64,
    pub isolate: &'a str,
    pub config: &'a Config,
    pub problems: &'a [Problem],
    pub breakers: &'a [(Upstream, BreakerStatus)],
    /// This isolate's windows (last hour).
    pub local: &'a BTreeMap<MetricKey, Stats>,
    pub rollout: Option<&'a RolloutDoc>,
    pub kv_warnings: &'a [String],
    pub kv_ops: &'a OpCounts,
    pub last_refresh_ms: Option<u64>,
    pub last_flush_ms: u64,
    /// Refresh deadline and first-load facts.
    pub health: &'a KvHealth,
    /// `STATE_FIRST_LOAD_WAIT_MS`.
    pub first_load_wait_ms: u64,
    /// The last controller tick run in this isolate.
    pub last_tick: Option<&'a TickNote>,
    /// The per-key cap on metric samples.
    pub quota: &'a QuotaStatus,
    /// The answer-aware features' state.
    pub answer: &'a AnswerInputs,
}

/// What the answer-aware features report (docs/answer-aware.md): the no-context watch, the
/// shadow gate and this isolate's shadow series, the response cache's counts.
#[derive(Debug, Clone, Default)]
pub struct AnswerInputs {
    /// `None` before the isolate kept any.
    pub watch: Option<WatchStatus>,
    pub shadow_counts: ShadowCounts,
    /// This isolate's shadow window (last hour).
    pub shadow: Stats,
    pub cache: BTreeMap<Upstream, CacheCounts>,
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn performance(s: &Stats) -> Value {
    // The window keeps a mergeable histogram, not a sum: the mean is taken over bucket values
    // (within one bucket width of the true mean).
    let n = s.latency.count();
    let avg = (n > 0).then(|| {
        let pairs: Vec<(u8, u64)> = s.latency.clone().into();
        let sum: f64 = pairs
            .iter()
            .map(|(b, c)| Histogram::bucket_value(usize::from(*b)) as f64 * *c as f64)
            .sum();
        round3(sum / n as f64)
    });
    json!({
        "total_requests": s.count,
        "success_count": s.successes,
        "error_count": s.errors,
        "fallback_count": s.fallbacks,
        "truncated_count": s.truncated,
        "rejected_count": s.rejected,
        "success_rate": s.success_rate().map(round3),
        "avg_response_time": avg,
        "p50_response_time": s.p50(),
        "p95_response_time": s.p95(),
        "avg_quality_score": s.mean_quality().map(round3),
        "quality_samples": s.quality_count,
        "no_context_count": s.no_context,
        "no_context_rate": s.no_context_rate().map(round3),
    })
}

/// `{"mechanism": {"requests": 40, "no_context": 2, "rate": 0.05}, …}`.
fn by_type(s: &Stats) -> Value {
    Value::Object(
        s.by_type
            .iter()
            .map(|(t, c)| {
                (
                    t.as_str().to_string(),
                    json!({
                        "requests": c.requests,
                        "no_context": c.no_context,
                        "rate": c.no_context_rate().map(round3),
                    }),
                )
            })
            .collect(),
    )
}

/// Per arm (all upstreams of the arm added up): requests, no-context replies, their share, and
/// per query type.
fn no_context_by_arm(stats: &BTreeMap<MetricKey, Stats>) -> Value {
    let mut m = serde_json::Map::new();
    for a in Arm::ALL {
        let mut s = Stats::default();
        for (k, v) in stats {
            if k.arm == a {
                s.merge(v);
            }
        }
        m.insert(
            a.as_str().to_string(),
            json!({
                "requests": s.count,
                "no_context": s.no_context,
                "rate": s.no_context_rate().map(round3),
                "by_query_type": by_type(&s),
            }),
        );
    }
    Value::Object(m)
}

fn shadow_series(s: &Stats) -> Value {
    let sum = ShadowSummary::from_stats(s);
    let mut v = serde_json::to_value(&sum).unwrap_or(Value::Null);
    if let Value::Object(o) = &mut v {
        o.insert(
            "no_context_rate".into(),
            json!(sum.no_context_rate().map(round3)),
        );
        o.insert("errors".into(), json!(s.errors));
        o.insert("rejected".into(), json!(s.rejected));
    }
    v
}

/// The `answer_aware` section of the status document.
fn answer_section(i: &ReportInputs<'_>) -> Value {
    let c = i.config;
    let a = i.answer;
    let fleet_shadow = i
        .rollout
        .and_then(|r| r.aggregate.as_ref())
        .and_then(|g| g.shadow.as_ref())
        .map(shadow_series);
    let cache: serde_json::Map<String, Value> = a
        .cache
        .iter()
        .map(|(u, n)| {
            (
                u.as_str().to_string(),
                serde_json::to_value(n).unwrap_or(Value::Null),
            )
        })
        .collect();
    json!({
        "no_context": {
            "fallback": c.no_context_fallback,
            "patterns": c.no_context_patterns.len(),
            "hold_back_ms": c.no_context_hold_back_ms,
            "scope": "this isolate, last hour",
            "by_arm": no_context_by_arm(i.local),
            "breaker_watch": a.watch,
            "fleet_by_arm": i.rollout.and_then(|r| r.aggregate.as_ref()).map(|g| no_context_by_arm(&g.stats)),
        },
        "shadow": {
            "percentage": c.shadow_percentage.percent(),
            "max_per_minute": c.shadow_max_per_minute,
            "gate": a.shadow_counts,
            "series": shadow_series(&a.shadow),
            "scope": "this isolate, last hour",
            "fleet_series": fleet_shadow,
        },
        "response_cache": {
            "ttl_seconds": c.response_cache_seconds,
            "enabled": c.response_cache_seconds > 0,
            "counts": cache,
        },
    })
}

fn perf_by_upstream(stats: &BTreeMap<MetricKey, Stats>) -> Value {
    let per = per_upstream(stats);
    let mut m = serde_json::Map::new();
    for u in Upstream::ALL {
        let s = per.get(&u).cloned().unwrap_or_default();
        m.insert(u.as_str().to_string(), performance(&s));
    }
    Value::Object(m)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for epoch milliseconds (proleptic Gregorian, UTC).
pub fn iso8601(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        ms % 1000
    )
}

/// The `GET /admin/status` document.
pub fn status_document(i: &ReportInputs<'_>) -> Value {
    let c = i.config;
    let lightrag_breaker = i
        .breakers
        .iter()
        .find(|(u, _)| *u == Upstream::Lightrag)
        .map(|(_, b)| b);
    let breakers: serde_json::Map<String, Value> = i
        .breakers
        .iter()
        .map(|(u, b)| {
            (
                u.as_str().to_string(),
                serde_json::to_value(b).unwrap_or(Value::Null),
            )
        })
        .collect();
    let fleet = i.rollout.and_then(|r| r.aggregate.as_ref()).map(|a| {
        json!({
            "completed_ms": a.completed_ms,
            "isolates": a.isolates,
            "corrupt_flushes": a.corrupt,
            "ticks": a.ticks,
            "paged_across_ticks": a.ticks > 1,
            "performance": perf_by_upstream(&a.stats),
        })
    });
    let pass = i.rollout.and_then(|r| r.pass.as_ref()).map(|p| {
        json!({
            "in_progress": true,
            "started_ms": p.started_ms,
            "isolates_so_far": p.isolates,
            "ticks_so_far": p.ticks,
            "note": "more isolate keys than one cron invocation may read; the pass continues on the next tick",
        })
    });
    let rollback = c.emergency_rollback || i.rollout.is_some_and(|r| r.rollback_active);
    json!({
        "timestamp": i.now_ms as f64 / 1000.0,
        "timestamp_ms": i.now_ms,
        "timestamp_iso": iso8601(i.now_ms),
        "isolate": i.isolate,
        "integration_enabled": c.integration_enabled,
        "config_summary": {
            "config_version": c.version,
            "rollout_percentage": c.rollout_percentage.percent(),
            "fallback_to_perplexity": c.fallback.settings().lightrag_to_perplexity,
            "timeout_seconds": c.integration_timeout_seconds,
            "quality_metrics_enabled": c.quality_gate.settings().enabled,
            "min_quality_threshold": c.quality_gate.settings().min_quality,
            "circuit_breaker_enabled": c.breaker.settings().enabled,
            "ab_testing_enabled": c.enable_ab_testing,
            "conditional_routing_enabled": c.enable_conditional_routing,
            "routing_rules": c.routing_rules.len(),
            "force_user_cohort": c.force_user_cohort,
            "emergency_rollback": c.emergency_rollback,
            "query_mode": c.query_mode.as_str(),
            "lightrag_base_url": c.lightrag_base_url,
            "perplexity_base_url": c.perplexity_base_url,
            "no_context_fallback": c.no_context_fallback,
            "shadow_percentage": c.shadow_percentage.percent(),
            "response_cache_seconds": c.response_cache_seconds,
        },
        "service_performance": {
            "circuit_breaker": lightrag_breaker.map(|b| json!({
                "is_open": b.is_open,
                "state": b.state.as_str(),
                "failure_rate": round3(b.failure_rate),
                "total_requests": b.total_requests,
                "consecutive_failures": b.consecutive_failures,
                "last_failure_ms": b.last_failure_ms,
                "open_until_ms": b.open_until_ms,
                "trips": b.trips,
                "generation": b.generation,
            })),
            "circuit_breakers": breakers,
            "performance": perf_by_upstream(i.local),
            "scope": "this isolate, last hour",
            "fleet": fleet,
        },
        "rollout_status": {
            "rollout_percentage": c.rollout_percentage.percent(),
            "rollback_active": rollback,
            "quality_gate_closed": i.rollout.is_some_and(|r| r.quality_gate_closed),
            "quality_gate": i.rollout.and_then(|r| r.gate),
            "controller_updated_ms": i.rollout.map(|r| r.updated_ms),
            "aggregation_pass": pass,
            "controller_last_tick": i.last_tick,
        },
        "key_limits": {
            "breaker_min_distinct_keys": c.breaker.settings().min_distinct_keys,
            "breaker_max_calls_per_key": c.breaker.settings().max_calls_per_key,
            "metrics_max_samples_per_key_per_hour": c.metrics_max_samples_per_key,
            "capped_samples": i.quota.capped_samples,
            "untracked_samples": i.quota.untracked_samples,
            "keys_this_hour": i.quota.keys_this_period,
        },
        "answer_aware": answer_section(i),
        "config_problems": i.problems,
        "kv": {
            "warnings": i.kv_warnings,
            "ops": i.kv_ops,
            "last_refresh_ms": i.last_refresh_ms,
            "last_flush_ms": i.last_flush_ms,
            "refresh": {
                "in_flight_since_ms": i.health.refresh_in_flight_since_ms,
                "stalled": i.health.stalled_refreshes,
                "stale_routes": i.health.stale_routes,
                "deadline_ms": crate::core::fleet::REFRESH_DEADLINE_MS,
            },
            "first_load": {
                "arrived_ms": i.health.first_load_ms,
                "wait_ms": i.first_load_wait_ms,
                "routed_before_kv": i.health.cold_routes,
            },
        },
    })
}

/// The `GET /metrics` text (Prometheus exposition format 0.0.4). Counters are this isolate's
/// last-hour window, labelled by upstream and arm.
pub fn prometheus(i: &ReportInputs<'_>) -> String {
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, v) in rows {
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {v}");
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {v}");
            }
        }
    };
    let by_key = |f: &dyn Fn(&Stats) -> f64| -> Vec<(String, f64)> {
        i.local
            .iter()
            .map(|(k, s)| {
                (
                    format!(
                        "upstream=\"{}\",arm=\"{}\"",
                        k.upstream.as_str(),
                        k.arm.as_str()
                    ),
                    f(s),
                )
            })
            .collect()
    };
    family(
        "cmo_router_requests",
        "gauge",
        "Requests served in this isolate's last-hour window.",
        by_key(&|s| s.count as f64),
    );
    family(
        "cmo_router_errors",
        "gauge",
        "Failed requests in the window.",
        by_key(&|s| s.errors as f64),
    );
    family(
        "cmo_router_fallbacks",
        "gauge",
        "Requests served by a fallback in the window.",
        by_key(&|s| s.fallbacks as f64),
    );
    family(
        "cmo_router_truncated_streams",
        "gauge",
        "Streams cut after the first byte in the window.",
        by_key(&|s| s.truncated as f64),
    );
    family(
        "cmo_router_rejected",
        "gauge",
        "Requests the upstream refused for what they asked (400/404/413/422, context length, too short for LightRAG), in the window; not in cmo_router_requests.",
        by_key(&|s| s.rejected as f64),
    );
    family(
        "cmo_router_quality_mean",
        "gauge",
        "Mean answer quality score in the window.",
        by_key(&|s| s.mean_quality().unwrap_or(f64::NAN)),
    );
    family(
        "cmo_router_latency_p50_ms",
        "gauge",
        "Median latency (ms) in the window.",
        by_key(&|s| s.p50().map(|v| v as f64).unwrap_or(f64::NAN)),
    );
    family(
        "cmo_router_latency_p95_ms",
        "gauge",
        "95th percentile latency (ms) in the window.",
        by_key(&|s| s.p95().map(|v| v as f64).unwrap_or(f64::NAN)),
    );
    family(
        "cmo_router_no_context",
        "gauge",
        "Requests in the window in which an upstream's answer was a no-context reply (served by a fallback or not).",
        by_key(&|s| s.no_context as f64),
    );
    let mut rows = Vec::new();
    for (k, s) in i.local {
        for (t, c) in &s.by_type {
            rows.push((
                format!(
                    "upstream=\"{}\",arm=\"{}\",query_type=\"{}\"",
                    k.upstream.as_str(),
                    k.arm.as_str(),
                    t.as_str()
                ),
                c.no_context as f64,
            ));
        }
    }
    family(
        "cmo_router_no_context_by_type",
        "gauge",
        "No-context replies in the window, per query type.",
        rows,
    );
    let sh = &i.answer.shadow;
    family(
        "cmo_router_shadow_calls",
        "gauge",
        "Shadow calls (LightRAG asked unseen) that reached a verdict in the window.",
        vec![(String::new(), sh.count as f64)],
    );
    family(
        "cmo_router_shadow_no_context",
        "gauge",
        "Shadow calls answered with a no-context reply in the window.",
        vec![(String::new(), sh.no_context as f64)],
    );
    family(
        "cmo_router_shadow_errors",
        "gauge",
        "Shadow calls that failed in the window.",
        vec![(String::new(), sh.errors as f64)],
    );
    family(
        "cmo_router_shadow_skipped_total",
        "counter",
        "Shadow calls not made, by reason.",
        vec![
            (
                "reason=\"cap\"".to_string(),
                i.answer.shadow_counts.skipped_cap as f64,
            ),
            (
                "reason=\"breaker\"".to_string(),
                i.answer.shadow_counts.skipped_breaker as f64,
            ),
            (
                "reason=\"rollback\"".to_string(),
                i.answer.shadow_counts.skipped_rollback as f64,
            ),
        ],
    );
    family(
        "cmo_router_cache_hits_total",
        "counter",
        "Answers served from the response cache.",
        i.answer
            .cache
            .iter()
            .map(|(u, c)| (format!("upstream=\"{}\"", u.as_str()), c.hits as f64))
            .collect(),
    );
    family(
        "cmo_router_no_context_escalated",
        "gauge",
        "1 while LightRAG's no-context replies count as breaker failures (LIGHTRAG_NO_CONTEXT_BREAKER_RATE crossed).",
        vec![(
            String::new(),
            f64::from(u8::from(i.answer.watch.is_some_and(|w| w.escalated))),
        )],
    );
    let states = ["closed", "open", "half_open"];
    let mut rows = Vec::new();
    for (u, b) in i.breakers {
        for st in states {
            rows.push((
                format!("upstream=\"{}\",state=\"{st}\"", u.as_str()),
                f64::from(u8::from(b.state.as_str() == st)),
            ));
        }
    }
    family(
        "cmo_router_breaker_state",
        "gauge",
        "Circuit breaker state (1 for the current state).",
        rows,
    );
    family(
        "cmo_router_rollout_percentage",
        "gauge",
        "Configured LightRAG rollout percentage.",
        vec![(String::new(), i.config.rollout_percentage.percent())],
    );
    family(
        "cmo_router_config_version",
        "gauge",
        "Version of the config overrides in use.",
        vec![(String::new(), i.config.version as f64)],
    );
    family(
        "cmo_router_config_problems",
        "gauge",
        "Rejected configuration values.",
        vec![(String::new(), i.problems.len() as f64)],
    );
    family(
        "cmo_router_kv_operations_total",
        "counter",
        "KV operations made by this isolate.",
        vec![
            ("op=\"read\"".to_string(), i.kv_ops.reads as f64),
            ("op=\"write\"".to_string(), i.kv_ops.writes as f64),
            ("op=\"list\"".to_string(), i.kv_ops.lists as f64),
        ],
    );
    family(
        "cmo_router_kv_warnings",
        "gauge",
        "Corrupt or unreadable KV values seen at the last refresh.",
        vec![(String::new(), i.kv_warnings.len() as f64)],
    );
    out
}
