//! The report: per scenario, what the issue asks to know, and the bill at 10 M requests a
//! month with Cloudflare's published prices.
//!
//! Prices (Workers Paid plan, read 2026-12 from the pages cited):
//! - Workers KV (<https://developers.cloudflare.com/kv/platform/pricing/>): 10 M reads a month
//!   included, then $0.50 per million; 1 M writes, 1 M deletes and 1 M lists included, then
//!   $5.00 per million each.
//! - Durable Objects (<https://developers.cloudflare.com/durable-objects/platform/pricing/>):
//!   1 M requests included, then $0.15 per million; 400,000 GB-s of duration included, then
//!   $12.50 per million GB-s, billed at 128 MB while the object is active; SQLite storage rows:
//!   25 billion read and 50 million written included, then $0.001 and $1.00 per million.
//!
//! The bill is the usage charge on top of the plan's $5 monthly minimum, which both designs pay
//! anyway (the Worker itself needs the paid plan for KV's and the cron's volumes).

use super::backend::Backend;
use super::run::{Outcome, HOUR, MINUTE};
use cmo_edge_router::core::window::Stats;

const M: f64 = 1_000_000.0;

/// Operations scaled to a 30-day month.
#[derive(Debug, Clone, Copy, Default)]
pub struct Month {
    pub reads: f64,
    pub writes: f64,
    pub lists: f64,
    pub do_requests: f64,
    pub do_gb_s: f64,
    pub do_rows_read: f64,
    pub do_rows_written: f64,
}

impl Month {
    pub fn bill(&self) -> f64 {
        let over = |x: f64, incl: f64, per_m: f64| ((x - incl).max(0.0) / M) * per_m;
        over(self.reads, 10.0 * M, 0.50)
            + over(self.writes, M, 5.0)
            + over(self.lists, M, 5.0)
            + over(self.do_requests, M, 0.15)
            + over(self.do_gb_s, 400_000.0, 12.50)
            + over(self.do_rows_read, 25_000.0 * M, 0.001)
            + over(self.do_rows_written, 50.0 * M, 1.0)
    }
}

/// What one run came to, in the report's terms.
#[derive(Debug, Clone)]
pub struct Row {
    pub backend: &'static str,
    pub isolates: usize,
    pub requests: u64,
    /// Seconds from LightRAG's failure to the first breaker trip.
    pub trip_s: Option<f64>,
    /// Seconds from LightRAG's failure to the last user sent to it (not a probe).
    pub converge_s: Option<f64>,
    /// The goal: one refresh interval plus KV's propagation (the hub has none).
    pub converge_bound_s: f64,
    pub wasted: u64,
    pub probes: u64,
    /// Seconds from recovery to the first LightRAG answer, and to the last request an open
    /// breaker refused.
    pub first_success_s: Option<f64>,
    pub resumed_s: Option<f64>,
    /// Over every completed pass with ≥ 100 requests per arm: the aggregate's undercount
    /// (mean, worst) and its error-rate and quality bias (worst absolute difference), per arm.
    pub undercount_mean: f64,
    pub undercount_max: f64,
    /// The same for the settled hour (`Aggregate::settled`): mean, and worst absolute.
    pub settled_mean: f64,
    pub settled_worst: f64,
    pub error_rate_bias_max: f64,
    pub quality_bias_max: f64,
    /// The controller's fleet totals (every settled minute committed once, `controller/state`
    /// `totals`) against the truth of the same minutes at the end: the worst arm's undercount
    /// (negative: counted more than happened).
    pub ledger_undercount: f64,
    /// The rollout's phase and percentage at the end.
    pub final_phase: String,
    pub passes: usize,
    pub max_pass_ticks: u64,
    pub max_tick_ops: u32,
    pub rejected_writes: u64,
    /// The keys KV refused a write to (a second write within a second), with how many each.
    pub rejected_keys: Vec<(String, u64)>,
    pub over_limit_ops: u64,
    pub max_invocation_ops: u32,
    pub decisions: usize,
    pub disagreements: Vec<(u64, String, String)>,
    /// Per minute, averaged: reads, writes, lists (KV) or requests (hub).
    pub per_minute: [f64; 3],
    pub peak_minute: [u64; 3],
    pub month: Month,
    /// Requests routed on state older than the refresh interval (+10 s deadline), share.
    pub stale_share: f64,
    pub staleness_p99_s: f64,
    pub failed_requests: u64,
    /// Flushes made after their request (`IsolateState::flush_later`).
    pub deferred_flushes: u64,
    pub write_retries: u64,
    /// Reports to the fleet's breaker (hub), and whether the first trip was the fleet's.
    pub fleet_reports: u64,
    pub fleet_trip: bool,
    pub controller_doc_bytes: usize,
    /// Requests that waited for a refresh before routing: share, mean wait (ms).
    pub wait_share: f64,
    pub wait_mean_ms: f64,
    /// The real controller's transitions: (minutes from start, outcome).
    pub transitions: Vec<(u64, String)>,
}

fn rel(agg: &Stats, truth: &Stats) -> f64 {
    1.0 - agg.count as f64 / truth.count.max(1) as f64
}

pub fn row(o: &Outcome) -> Row {
    let (from, until) = o.lightrag_down;
    let secs = |ms: u64| ms as f64 / 1000.0;
    let months = (30.0 * 24.0 * HOUR as f64) / o.sim_ms as f64;
    let mut undercounts = Vec::new();
    let (mut eb, mut qb) = (0.0f64, 0.0f64);
    for p in &o.passes {
        for (_, agg, truth) in &p.arms {
            if truth.count < 100 {
                continue;
            }
            undercounts.push(rel(agg, truth));
            if let (Some(a), Some(t)) = (agg.error_rate(), truth.error_rate()) {
                eb = eb.max((a - t).abs());
            }
            if let (Some(a), Some(t)) = (agg.mean_quality(), truth.mean_quality()) {
                qb = qb.max((a - t).abs());
            }
        }
    }
    let n = undercounts.len().max(1) as f64;
    let settled: Vec<f64> = o
        .passes
        .iter()
        .flat_map(|p| &p.settled)
        .filter(|(_, _, truth)| truth.count >= 100)
        .map(|(_, agg, truth)| rel(agg, truth))
        .collect();
    let mut staleness = o.obs.staleness_ms.clone();
    staleness.sort_unstable();
    let p99 = staleness
        .get((staleness.len() as f64 * 0.99) as usize)
        .copied()
        .unwrap_or(0);
    let minutes = (o.sim_ms / MINUTE) as f64;
    let (per_minute, peak_minute, month, rejected, rejected_keys, over, max_inv) = match &o.backend
    {
        Backend::Kv(kv) => {
            let c = kv.counts();
            let mut peak = [0u64; 3];
            for m in &c.per_minute {
                for i in 0..3 {
                    peak[i] = peak[i].max(m[i]);
                }
            }
            (
                [
                    c.reads as f64 / minutes,
                    c.writes as f64 / minutes,
                    c.lists as f64 / minutes,
                ],
                peak,
                Month {
                    reads: c.reads as f64 * months,
                    writes: c.writes as f64 * months,
                    lists: c.lists as f64 * months,
                    ..Month::default()
                },
                c.rejected_writes,
                c.rejected_keys.into_iter().collect(),
                c.over_limit_ops,
                c.max_ops_in_invocation,
            )
        }
        Backend::Hub(h) => {
            let c = h.counts();
            let peak = c.per_minute.iter().copied().max().unwrap_or(0);
            (
                [c.requests as f64 / minutes, 0.0, 0.0],
                [peak, 0, 0],
                Month {
                    do_requests: c.requests as f64 * months,
                    do_gb_s: c.active_ms / 1000.0 * 0.125 * months,
                    do_rows_read: c.rows_read as f64 * months,
                    do_rows_written: c.rows_written as f64 * months,
                    ..Month::default()
                },
                0,
                Vec::new(),
                0,
                0,
            )
        }
    };
    let propagation = match o.backend {
        Backend::Kv(_) => super::kv::MAX_PROPAGATION_MS,
        Backend::Hub(_) => 0,
    };
    Row {
        backend: o.scenario.backend.name(),
        isolates: o.scenario.isolates,
        requests: o.obs.requests,
        trip_s: o.obs.first_trip_ms.map(|t| secs(t - from)),
        converge_s: o.obs.last_wasted_ms.map(|t| secs(t - from)),
        converge_bound_s: secs(o.refresh_ms + propagation),
        wasted: o.obs.wasted,
        probes: o.obs.probes,
        first_success_s: o.obs.first_success_after_ms.map(|t| secs(t - until)),
        resumed_s: o.obs.last_circuit_open_after_ms.map(|t| secs(t - until)),
        undercount_mean: undercounts.iter().sum::<f64>() / n,
        undercount_max: undercounts.iter().copied().fold(0.0, f64::max),
        settled_mean: settled.iter().sum::<f64>() / settled.len().max(1) as f64,
        settled_worst: settled.iter().map(|x| x.abs()).fold(0.0, f64::max),
        error_rate_bias_max: eb,
        quality_bias_max: qb,
        ledger_undercount: o
            .ledger
            .iter()
            .map(|(_, agg, truth)| rel(agg, truth))
            .fold(0.0, |w: f64, x| if x.abs() > w.abs() { x } else { w }),
        final_phase: o.final_phase.clone(),
        passes: o.passes.len(),
        max_pass_ticks: o.passes.iter().map(|p| p.ticks).max().unwrap_or(0),
        max_tick_ops: o.max_tick_ops,
        rejected_writes: rejected,
        rejected_keys,
        over_limit_ops: over,
        max_invocation_ops: max_inv,
        decisions: o.decisions.len(),
        disagreements: o
            .decisions
            .iter()
            .filter(|(_, a, b)| a != b)
            .cloned()
            .collect(),
        per_minute,
        peak_minute,
        month,
        stale_share: o.obs.stale_routes as f64 / o.obs.requests.max(1) as f64,
        staleness_p99_s: secs(p99),
        failed_requests: o.obs.failed_requests,
        deferred_flushes: o.obs.deferred_flushes,
        write_retries: o.obs.write_retries,
        fleet_reports: o.obs.fleet_reports,
        fleet_trip: o.obs.fleet_trip,
        controller_doc_bytes: o.controller_doc_bytes,
        wait_share: o.obs.waits as f64 / o.obs.requests.max(1) as f64,
        wait_mean_ms: o.obs.waited_ms as f64 / o.obs.waits.max(1) as f64,
        transitions: o
            .transitions
            .iter()
            .map(|(t, a)| ((t - super::run::START_MS) / MINUTE, a.clone()))
            .collect(),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or("—".into(), |x| format!("{x:.0}"))
}

/// The markdown table of the report.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str("| backend | isolates | requests | trip / converge s (goal) | wasted / probes | resume s: first / all | last hour undercount mean / worst | settled hour mean / worst | totals undercount | bias err / quality | tick ops (pass ticks) | limits: 429 / >1000 | decisions ≠ perfect | ops per min | month: ops | $/month |\n");
    s.push_str("|---|---:|---:|---|---|---|---|---|---|---|---|---|---|---|---|---:|\n");
    for r in rows {
        let ops = if r.backend.starts_with("KV") {
            format!(
                "{:.0} r / {:.1} w / {:.2} l",
                r.per_minute[0], r.per_minute[1], r.per_minute[2]
            )
        } else {
            format!("{:.0} req", r.per_minute[0])
        };
        let month = if r.backend.starts_with("KV") {
            format!(
                "{:.1} M r, {:.2} M w, {:.2} M l",
                r.month.reads / M,
                r.month.writes / M,
                r.month.lists / M
            )
        } else {
            format!(
                "{:.2} M req, {:.0} k GB-s, {:.1} M rows w",
                r.month.do_requests / M,
                r.month.do_gb_s / 1000.0,
                r.month.do_rows_written / M
            )
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} / {} ({:.0}) | {} / {} | {} / {} | {:.2} % / {:.2} % | {:.2} % / {:.2} % | {:.2} % | {:.3} / {:.3} | {} ({}) | {} / {} | {} of {} | {} | {} | {:.2} |\n",
            r.backend,
            r.isolates,
            r.requests,
            opt(r.trip_s),
            opt(r.converge_s),
            r.converge_bound_s,
            r.wasted,
            r.probes,
            opt(r.first_success_s),
            opt(r.resumed_s),
            r.undercount_mean * 100.0,
            r.undercount_max * 100.0,
            r.settled_mean * 100.0,
            r.settled_worst * 100.0,
            r.ledger_undercount * 100.0,
            r.error_rate_bias_max,
            r.quality_bias_max,
            r.max_tick_ops,
            r.max_pass_ticks,
            r.rejected_writes,
            r.over_limit_ops,
            r.disagreements.len(),
            r.decisions,
            ops,
            month,
            r.month.bill(),
        ));
    }
    s
}

/// Lines that explain a row beyond the table.
pub fn notes(r: &Row) -> String {
    let mut s = format!(
        "{} × {}: waited for a refresh before routing: {:.1} % of requests, {:.0} ms on average; routed on state older than the refresh interval: {:.1} % (p99 age {:.0} s); requests failed for the user: {}; deferred flushes: {}; controller/state {} bytes; completed aggregation passes: {}; peak minute {:?}; worst invocation {} ops; writes KV refused (429): {:?}, retried: {}; reports to the fleet breaker: {} (first trip the fleet's: {})\n  rollout at the end: {}; (minute: transition): {:?}",
        r.backend,
        r.isolates,
        r.wait_share * 100.0,
        r.wait_mean_ms,
        r.stale_share * 100.0,
        r.staleness_p99_s,
        r.failed_requests,
        r.deferred_flushes,
        r.controller_doc_bytes,
        r.passes,
        r.peak_minute,
        r.max_invocation_ops,
        r.rejected_keys,
        r.write_retries,
        r.fleet_reports,
        r.fleet_trip,
        r.final_phase,
        r.transitions,
    );
    for (t, a, b) in r.disagreements.iter().take(5) {
        s.push_str(&format!(
            "\n  decision at +{:.0} min: controller {a}, perfect data {b}",
            (*t - super::run::START_MS) as f64 / MINUTE as f64
        ));
    }
    s
}
