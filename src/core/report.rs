//! What operators read: the `GET /admin/status` document (modelled on the seed's
//! `get_system_status`) and the `GET /metrics` Prometheus text exposition.
//!
//! Why pure: both are pure functions of the isolate's state (config, breakers, windows, the
//! routing document) and of the controller's documents the admin API read for them; keeping
//! them here makes their shape testable natively and keeps the Worker a thin caller. No raw
//! user id ever reaches these inputs.
//!
//! `/metrics` serves two scopes. The **fleet** series are what a scraper can `rate()` and sum:
//! monotonic `_total` counters and a latency histogram from the controller's committed totals
//! (`core::controller::ledger`: every isolate's flushes, each minute counted once, never
//! shrinking when isolates die), whichever isolate the scrape lands on. The **isolate** series
//! (`cmo_router_isolate_*`, label `scope="isolate"`) are the answering isolate's own last-hour
//! gauges, breaker state and KV counters: useful for looking at one isolate, not for
//! aggregation.

use crate::core::answer::cache::CacheCounts;
use crate::core::answer::shadow::ShadowCounts;
use crate::core::answer::watch::WatchStatus;
use crate::core::breaker::BreakerStatus;
use crate::core::config::{Config, Problem};
use crate::core::controller::{ControllerDoc, RolloutView, RoutingDoc};
use crate::core::experiment::report::ShadowSummary;
use crate::core::fleet::{KvHealth, QuotaStatus, TickNote};
use crate::core::model::Arm;
use crate::core::model::Upstream;
use crate::core::store::{per_upstream, OpCounts};
use crate::core::window::{Histogram, MetricKey, Stats};

/// The rollout as `GET /admin/rollout` shows it (the stored state with the queued commands
/// applied), or why it could not be read.
pub type RolloutSummary = Result<RolloutView, String>;
use crate::core::sorted_map::SortedMap;
use serde_json::{json, Value};
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
    pub local: &'a SortedMap<MetricKey, Stats>,
    /// The routing document this isolate routes by.
    pub routing: Option<&'a RoutingDoc>,
    /// `controller/state`, when the caller read it (the admin API does; requests never do).
    pub controller: Option<&'a ControllerDoc>,
    /// The rollout's projected status, when the caller read it.
    pub rollout: Option<&'a RolloutSummary>,
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
    pub cache: SortedMap<Upstream, CacheCounts>,
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
    Value::Object(crate::core::json::object(s.by_type.iter().map(|(t, c)| {
        (
            t.as_str().to_string(),
            json!({
                "requests": c.requests,
                "no_context": c.no_context,
                "rate": c.no_context_rate().map(round3),
            }),
        )
    })))
}

/// Per arm (all upstreams of the arm added up): requests, no-context replies, their share, and
/// per query type.
fn no_context_by_arm(stats: &SortedMap<MetricKey, Stats>) -> Value {
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
        .controller
        .and_then(|r| r.aggregate.as_ref())
        .and_then(|g| g.shadow.as_ref())
        .map(shadow_series);
    let cache = crate::core::json::object(a.cache.iter().map(|(u, n)| {
        (
            u.as_str().to_string(),
            serde_json::to_value(n).unwrap_or(Value::Null),
        )
    }));
    json!({
        "no_context": {
            "fallback": c.no_context_fallback,
            "patterns": c.no_context_patterns.len(),
            "hold_back_ms": c.no_context_hold_back_ms,
            "scope": "this isolate, last hour",
            "by_arm": no_context_by_arm(i.local),
            "breaker_watch": a.watch,
            "fleet_by_arm": i.controller.and_then(|r| r.aggregate.as_ref()).map(|g| no_context_by_arm(&g.stats)),
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

fn perf_by_upstream(stats: &SortedMap<MetricKey, Stats>) -> Value {
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
    let breakers = crate::core::json::object(i.breakers.iter().map(|(u, b)| {
        (
            u.as_str().to_string(),
            serde_json::to_value(b).unwrap_or(Value::Null),
        )
    }));
    let fleet = i.controller.and_then(|r| r.aggregate.as_ref()).map(|a| {
        json!({
            "completed_ms": a.completed_ms,
            "isolates": a.isolates,
            "corrupt_flushes": a.corrupt,
            "ticks": a.ticks,
            "paged_across_ticks": a.ticks > 1,
            "performance": perf_by_upstream(&a.stats),
        })
    });
    let pass = i.controller.and_then(|r| r.pass.as_ref()).map(|p| {
        json!({
            "in_progress": true,
            "started_ms": p.started_ms,
            "isolates_so_far": p.isolates,
            "ticks_so_far": p.ticks,
            "note": "more isolate keys than one cron invocation may read; the pass continues on the next tick",
        })
    });
    let rollback = c.emergency_rollback || i.routing.is_some_and(RoutingDoc::rolled_back);
    let routes_at = i
        .routing
        .and_then(RoutingDoc::route_percentage)
        .unwrap_or(c.rollout_percentage);
    let view = i.rollout.and_then(|r| r.as_ref().ok());
    let rollout_error = i.rollout.and_then(|r| r.as_ref().err());
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
            "rollout_percentage": routes_at.percent(),
            "configured_percentage": c.rollout_percentage.percent(),
            "phase": view.map(|v| v.status.phase),
            "current_percentage": view.map(|v| v.status.current_percentage.percent()),
            "routing": view.map(|v| v.status.routing),
            "rollout_id": view.and_then(|v| v.status.rollout_id.clone()),
            "strategy": view.and_then(|v| v.status.strategy),
            "current_stage_index": view.and_then(|v| v.status.current_stage_index),
            "stage_count": view.and_then(|v| v.status.stage_count),
            "pending_commands": view.map(|v| v.pending_commands.len()),
            "rollout_error": rollout_error,
            "routing_document": i.routing.map(|r| json!({
                "revision": r.revision, "by": r.by, "phase": r.phase, "updated_ms": r.updated_ms,
            })),
            "rollback_active": rollback,
            "quality_gate_closed": i.routing.is_some_and(|r| r.quality_gate_closed),
            "quality_gate": i.controller.and_then(|r| r.gate),
            "controller_updated_ms": i.controller.map(|r| r.updated_ms),
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

/// A sample value: integers as integers, NaN as `NaN`.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// Writes one metric family: `# HELP`, `# TYPE`, then its samples (`suffix{labels} value`).
fn family(out: &mut String, name: &str, kind: &str, help: &str, rows: &[(String, String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (suffix, labels, v) in rows {
        if labels.is_empty() {
            let _ = writeln!(out, "{name}{suffix} {}", value(*v));
        } else {
            let _ = writeln!(out, "{name}{suffix}{{{labels}}} {}", value(*v));
        }
    }
}

fn key_labels(k: &MetricKey) -> String {
    format!(
        "upstream=\"{}\",arm=\"{}\"",
        k.upstream.as_str(),
        k.arm.as_str()
    )
}

/// Histogram `le` bounds in seconds: (2^k − 1) ms for k = 1..=24, the edges of the window's
/// log buckets, so every bucket count is exact for integer-millisecond latencies (a latency
/// below 2^k ms is at most 2^k − 1 ms).
fn latency_bounds() -> impl Iterator<Item = (u64, String)> {
    (1..=24u32).map(|k| {
        let ms = (1u64 << k) - 1;
        (ms, value(ms as f64 / 1000.0))
    })
}

/// Cumulative count of the histogram's values below `limit_ms` (exclusive).
fn count_below(h: &Histogram, limit_ms: u64) -> u64 {
    let pairs: Vec<(u8, u64)> = h.clone().into();
    pairs
        .iter()
        .filter(|(b, _)| Histogram::bucket_range(usize::from(*b)).1 <= limit_ms)
        .fold(0u64, |a, (_, c)| a.saturating_add(*c))
}

/// A label value as the exposition format writes it (`\\`, `\"` and `\n` escaped): the
/// reasons come from KV, so they are escaped rather than trusted.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The fleet's counters: the controller's committed totals.
fn fleet_families(out: &mut String, doc: &ControllerDoc) {
    let totals = &doc.totals.stats;
    let mut rows = Vec::new();
    for (k, s) in totals {
        for (outcome, n) in [("success", s.successes), ("error", s.errors)] {
            rows.push((
                String::new(),
                format!("{},outcome=\"{outcome}\"", key_labels(k)),
                n as f64,
            ));
        }
    }
    family(
        out,
        "cmo_router_requests_total",
        "counter",
        "Requests, fleet-wide, by the upstream that served them, the arm the user was assigned to (intention to treat) and the outcome for the user. Each minute is counted once it has settled (two flush periods), from every isolate's flushes.",
        &rows,
    );
    let mut rows = Vec::new();
    for (reason, s) in &doc.reason_totals {
        for (outcome, n) in [("success", s.successes), ("error", s.errors)] {
            rows.push((
                String::new(),
                format!("reason=\"{}\",outcome=\"{outcome}\"", escape_label(reason)),
                n as f64,
            ));
        }
    }
    family(
        out,
        "cmo_router_decisions_total",
        "counter",
        "The requests of cmo_router_requests_total by why they were routed where they were (X-Route-Reason; rules are counted as reason=\"rule\"), fleet-wide.",
        &rows,
    );
    let per_key = |f: &dyn Fn(&Stats) -> u64| -> Vec<(String, String, f64)> {
        totals
            .iter()
            .map(|(k, s)| (String::new(), key_labels(k), f(s) as f64))
            .collect()
    };
    family(
        out,
        "cmo_router_fallbacks_total",
        "counter",
        "Requests a fallback served, fleet-wide.",
        &per_key(&|s| s.fallbacks),
    );
    family(
        out,
        "cmo_router_truncated_streams_total",
        "counter",
        "Streams cut after their first byte, fleet-wide.",
        &per_key(&|s| s.truncated),
    );
    family(
        out,
        "cmo_router_rejected_total",
        "counter",
        "Requests the upstream refused for what they asked (400/404/413/422, context length), fleet-wide; not in cmo_router_requests_total.",
        &per_key(&|s| s.rejected),
    );
    let mut rows = Vec::new();
    for (k, s) in totals {
        let labels = key_labels(k);
        for (ms, le) in latency_bounds() {
            rows.push((
                "_bucket".to_string(),
                format!("{labels},le=\"{le}\""),
                count_below(&s.latency, ms.saturating_add(1)) as f64,
            ));
        }
        rows.push((
            "_bucket".to_string(),
            format!("{labels},le=\"+Inf\""),
            s.latency.count() as f64,
        ));
        rows.push((
            "_sum".to_string(),
            labels.clone(),
            s.latency_sum as f64 / 1000.0,
        ));
        rows.push(("_count".to_string(), labels, s.latency.count() as f64));
    }
    family(
        out,
        "cmo_router_latency_seconds",
        "histogram",
        "Time to the first byte of the answer (the whole answer for a complete JSON reply), fleet-wide.",
        &rows,
    );
    let mut rows = Vec::new();
    for (k, s) in totals {
        let labels = key_labels(k);
        rows.push((
            "_sum".to_string(),
            labels.clone(),
            s.quality_sum as f64 / 1_000_000.0,
        ));
        rows.push(("_count".to_string(), labels, s.quality_count as f64));
    }
    family(
        out,
        "cmo_router_quality_score",
        "summary",
        "Answer quality scores (0-1) of the scored answers, fleet-wide; unscored answers are not counted.",
        &rows,
    );
    let rows: Vec<(String, String, f64)> = doc
        .breaker_trips
        .iter()
        .map(|(u, n)| {
            (
                String::new(),
                format!("upstream=\"{}\"", u.as_str()),
                *n as f64,
            )
        })
        .collect();
    family(
        out,
        "cmo_router_breaker_trips_total",
        "counter",
        "Circuit breaker trips, fleet-wide (one outage counts once, not once per isolate).",
        &rows,
    );
    family(
        out,
        "cmo_router_fleet_counted_through_seconds",
        "gauge",
        "The fleet counters include every minute that ended at or before this time (Unix seconds).",
        &[(
            String::new(),
            String::new(),
            (doc.totals.through_ms / 1000) as f64,
        )],
    );
}

/// One isolate-local gauge: name suffix, help, value per key.
type LocalGauge<'a> = (&'a str, &'a str, &'a dyn Fn(&Stats) -> f64);

/// The `GET /metrics` text (Prometheus exposition format 0.0.4): the fleet's counters (from
/// `controller/state`, when the caller read it) and this isolate's own series, labelled
/// `scope="isolate"`.
pub fn prometheus(i: &ReportInputs<'_>) -> String {
    let mut out = String::new();
    if let Some(doc) = i.controller {
        fleet_families(&mut out, doc);
    }
    let scope = "scope=\"isolate\"";
    let by_key = |f: &dyn Fn(&Stats) -> f64| -> Vec<(String, String, f64)> {
        i.local
            .iter()
            .map(|(k, s)| (String::new(), format!("{scope},{}", key_labels(k)), f(s)))
            .collect()
    };
    let local: [LocalGauge<'_>; 8] = [
        ("requests", "Requests served in this isolate's last-hour window.", &|s| s.count as f64),
        ("errors", "Failed requests in this isolate's window.", &|s| s.errors as f64),
        ("fallbacks", "Requests served by a fallback in this isolate's window.", &|s| s.fallbacks as f64),
        ("truncated_streams", "Streams cut after the first byte in this isolate's window.", &|s| s.truncated as f64),
        ("rejected", "Requests the upstream refused for what they asked, in this isolate's window; not in cmo_router_isolate_requests.", &|s| s.rejected as f64),
        ("quality_mean", "Mean answer quality score in this isolate's window.", &|s| s.mean_quality().unwrap_or(f64::NAN)),
        ("latency_p50_ms", "Median latency (ms) in this isolate's window.", &|s| s.p50().map(|v| v as f64).unwrap_or(f64::NAN)),
        ("latency_p95_ms", "95th percentile latency (ms) in this isolate's window.", &|s| s.p95().map(|v| v as f64).unwrap_or(f64::NAN)),
    ];
    for (name, help, f) in local {
        family(
            &mut out,
            &format!("cmo_router_isolate_{name}"),
            "gauge",
            help,
            &by_key(f),
        );
    }
    family(
        &mut out,
        "cmo_router_isolate_no_context",
        "gauge",
        "Requests in this isolate's window in which an upstream's answer was a no-context reply (served by a fallback or not).",
        &by_key(&|s| s.no_context as f64),
    );
    let mut rows = Vec::new();
    for (k, s) in i.local {
        for (t, c) in &s.by_type {
            rows.push((
                String::new(),
                format!("{scope},{},query_type=\"{}\"", key_labels(k), t.as_str()),
                c.no_context as f64,
            ));
        }
    }
    family(
        &mut out,
        "cmo_router_isolate_no_context_by_type",
        "gauge",
        "No-context replies in this isolate's window, per query type.",
        &rows,
    );
    let sh = &i.answer.shadow;
    let one = |v: f64| [(String::new(), scope.to_string(), v)];
    family(
        &mut out,
        "cmo_router_isolate_shadow_calls",
        "gauge",
        "Shadow calls (LightRAG asked unseen) that reached a verdict in this isolate's window.",
        &one(sh.count as f64),
    );
    family(
        &mut out,
        "cmo_router_isolate_shadow_no_context",
        "gauge",
        "Shadow calls answered with a no-context reply in this isolate's window.",
        &one(sh.no_context as f64),
    );
    family(
        &mut out,
        "cmo_router_isolate_shadow_errors",
        "gauge",
        "Shadow calls that failed in this isolate's window.",
        &one(sh.errors as f64),
    );
    let sc = &i.answer.shadow_counts;
    family(
        &mut out,
        "cmo_router_isolate_shadow_skipped_total",
        "counter",
        "Shadow calls this isolate did not make since it started, by reason.",
        &[
            ("cap", sc.skipped_cap),
            ("breaker", sc.skipped_breaker),
            ("rollback", sc.skipped_rollback),
        ]
        .map(|(r, n)| (String::new(), format!("{scope},reason=\"{r}\""), n as f64)),
    );
    let rows: Vec<(String, String, f64)> = i
        .answer
        .cache
        .iter()
        .map(|(u, c)| {
            (
                String::new(),
                format!("{scope},upstream=\"{}\"", u.as_str()),
                c.hits as f64,
            )
        })
        .collect();
    family(
        &mut out,
        "cmo_router_isolate_cache_hits_total",
        "counter",
        "Answers this isolate served from the response cache since it started.",
        &rows,
    );
    family(
        &mut out,
        "cmo_router_isolate_no_context_escalated",
        "gauge",
        "1 while LightRAG's no-context replies count as breaker failures in this isolate (LIGHTRAG_NO_CONTEXT_BREAKER_RATE crossed).",
        &one(f64::from(u8::from(
            i.answer.watch.is_some_and(|w| w.escalated),
        ))),
    );
    let states = ["closed", "open", "half_open"];
    let mut rows = Vec::new();
    for (u, b) in i.breakers {
        for st in states {
            rows.push((
                String::new(),
                format!("{scope},upstream=\"{}\",state=\"{st}\"", u.as_str()),
                f64::from(u8::from(b.state.as_str() == st)),
            ));
        }
    }
    family(
        &mut out,
        "cmo_router_isolate_breaker_state",
        "gauge",
        "Circuit breaker state in this isolate (1 for the current state).",
        &rows,
    );
    let routes_at = i
        .routing
        .and_then(RoutingDoc::route_percentage)
        .unwrap_or(i.config.rollout_percentage);
    family(
        &mut out,
        "cmo_router_isolate_rollout_percentage",
        "gauge",
        "The LightRAG percentage this isolate routes by (the running rollout's, else the configured one).",
        &[(String::new(), scope.to_string(), routes_at.percent())],
    );
    family(
        &mut out,
        "cmo_router_isolate_rollback_active",
        "gauge",
        "1 while this isolate sends everybody to Perplexity (rollout rolled back or LIGHTRAG_EMERGENCY_ROLLBACK).",
        &[(
            String::new(),
            scope.to_string(),
            f64::from(u8::from(
                i.config.emergency_rollback || i.routing.is_some_and(RoutingDoc::rolled_back),
            )),
        )],
    );
    family(
        &mut out,
        "cmo_router_isolate_config_version",
        "gauge",
        "Version of the config overrides this isolate runs on.",
        &[(String::new(), scope.to_string(), i.config.version as f64)],
    );
    family(
        &mut out,
        "cmo_router_isolate_config_problems",
        "gauge",
        "Rejected configuration values in this isolate.",
        &[(String::new(), scope.to_string(), i.problems.len() as f64)],
    );
    family(
        &mut out,
        "cmo_router_isolate_kv_operations_total",
        "counter",
        "KV operations made by this isolate since it started.",
        &[
            (
                String::new(),
                format!("{scope},op=\"read\""),
                i.kv_ops.reads as f64,
            ),
            (
                String::new(),
                format!("{scope},op=\"write\""),
                i.kv_ops.writes as f64,
            ),
            (
                String::new(),
                format!("{scope},op=\"list\""),
                i.kv_ops.lists as f64,
            ),
        ],
    );
    family(
        &mut out,
        "cmo_router_isolate_hub_requests_total",
        "counter",
        "Requests this isolate made to the state hub (STATE_BACKEND=durable_object) since it started.",
        &[(String::new(), scope.to_string(), i.kv_ops.hub_requests as f64)],
    );
    family(
        &mut out,
        "cmo_router_isolate_kv_warnings",
        "gauge",
        "Corrupt or unreadable KV values this isolate saw at its last refresh.",
        &[(String::new(), scope.to_string(), i.kv_warnings.len() as f64)],
    );
    out
}
