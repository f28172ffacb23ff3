//! The plain-language lines of the experiment report.
//!
//! Why they quote the sequential numbers: an operator reads the report whenever they like, so
//! the interval and p-value in the sentence must be the always-valid ones; a fixed-horizon
//! interval next to a sequential verdict would contradict it at the margin. Treatment is
//! called "LightRAG" and control "Perplexity" because that is what the cohorts are routed to.

use super::insufficient::Insufficient;
use super::report::{Comparison, ExperimentReport, Metric, MetricReport, SampleRatioReport};
use super::settings::Alpha;

const MINUS: char = '\u{2212}';

fn metric_name(metric: Metric) -> &'static str {
    match metric {
        Metric::SuccessRate => "success rate",
        Metric::LatencyMs => "mean latency",
        Metric::Quality => "mean quality",
        Metric::NoContextRate => "no-context rate",
    }
}

/// A difference in the metric's display units (points, ms, score) and its decimals.
fn display(metric: Metric, value: f64) -> (f64, usize) {
    match metric {
        Metric::SuccessRate | Metric::NoContextRate => (value * 100.0, 1),
        Metric::LatencyMs => (value, 0),
        Metric::Quality => (value, 3),
    }
}

/// `v` with `decimals`, a Unicode minus, and no "−0.0".
fn number(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v.abs());
    let zero = s.chars().all(|c| c == '0' || c == '.');
    if v < 0.0 && !zero {
        format!("{MINUS}{s}")
    } else {
        s
    }
}

/// Like [`number`] with an explicit "+" on positive values.
fn signed(v: f64, decimals: usize) -> String {
    let s = number(v, decimals);
    if v > 0.0 && !s.chars().all(|c| c == '0' || c == '.') {
        format!("+{s}")
    } else {
        s
    }
}

fn with_unit(metric: Metric, s: String) -> String {
    match metric {
        Metric::SuccessRate | Metric::NoContextRate => format!("{s} points"),
        Metric::LatencyMs => format!("{s} ms"),
        Metric::Quality => s,
    }
}

/// "p = 0.0031", "p < 0.001".
pub(crate) fn p_text(p: f64) -> String {
    if !p.is_finite() {
        return "p = n/a".to_string();
    }
    if p < 0.001 {
        return "p < 0.001".to_string();
    }
    if p >= 0.995 {
        return "p = 1".to_string();
    }
    // Two significant digits.
    let decimals = (1.0 - p.log10().floor()).max(2.0) as usize;
    format!("p = {:.*}", decimals, p)
}

/// 12345 → "12,345".
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn confidence(alpha: Alpha) -> String {
    let c = alpha.confidence_percent();
    if (c - c.round()).abs() < 1e-9 {
        format!("{c:.0} %")
    } else {
        format!("{c:.1} %")
    }
}

/// "success rate: insufficient data: …".
pub(crate) fn insufficient_line(metric: Metric, why: &Insufficient) -> String {
    format!("{}: {why}", metric_name(metric))
}

/// One line for a compared metric.
pub(crate) fn metric_line(metric: Metric, c: &Comparison, alpha: Alpha) -> String {
    let (diff, dec) = display(metric, c.difference);
    let (lo, _) = display(metric, c.sequential.ci_low);
    let (hi, _) = display(metric, c.sequential.ci_high);
    let level = confidence(alpha);
    let name = metric_name(metric);
    if c.sequential.significant {
        // Significant means the interval excludes 0; its side gives the direction.
        let direction =
            if c.sequential.ci_low > 0.0 || (c.sequential.ci_high >= 0.0 && c.difference > 0.0) {
                "higher"
            } else {
                "lower"
            };
        let interval = match metric {
            Metric::SuccessRate | Metric::NoContextRate | Metric::Quality => {
                format!("{} to {}", signed(lo, dec), signed(hi, dec))
            }
            Metric::LatencyMs => format!("{} to {} ms", signed(lo, dec), signed(hi, dec)),
        };
        format!(
            "LightRAG's {name} is {} {direction} ({level} CI {interval}), significant under continuous monitoring ({})",
            with_unit(metric, number(diff.abs(), dec)),
            p_text(c.sequential.p_value)
        )
    } else {
        let mut line = format!(
            "LightRAG's {name}: no significant difference yet ({}, {level} CI {} to {}, {})",
            with_unit(metric, signed(diff, dec)),
            signed(lo, dec),
            signed(hi, dec),
            p_text(c.sequential.p_value)
        );
        if let Some(n) = &c.samples_needed {
            let (effect, edec) = display(metric, n.effect);
            let effect = with_unit(metric, number(effect, edec.max(1)));
            if n.treatment == 0 {
                line.push_str(&format!(
                    "; a true difference of {effect} would already be detected"
                ));
            } else {
                line.push_str(&format!(
                    "; about {} more LightRAG-arm requests ({} more Perplexity-arm) would detect a difference of {effect}",
                    grouped(n.treatment),
                    grouped(n.control)
                ));
            }
        }
        line
    }
}

/// "LightRAG had no context for 14.0 % of treatment queries (70 of 500)": the treatment arm's
/// no-context share (its upstream is LightRAG), plus the control arm's when it had any (a
/// fallback to LightRAG); `None` without treatment requests.
pub(crate) fn no_context_line(treatment: (u64, u64), control: (u64, u64)) -> Option<String> {
    let share = |(k, n): (u64, u64)| number(100.0 * k.min(n) as f64 / n.max(1) as f64, 1);
    let (k, n) = treatment;
    if n == 0 {
        return None;
    }
    let mut line = format!(
        "LightRAG had no context for {} % of treatment queries ({} of {})",
        share(treatment),
        grouped(k.min(n)),
        grouped(n)
    );
    if control.0 > 0 && control.1 > 0 {
        line.push_str(&format!(
            " and {} % of control queries ({} of {})",
            share(control),
            grouped(control.0.min(control.1)),
            grouped(control.1)
        ));
    }
    Some(line)
}

/// The report's one-line verdict: a sample-ratio mismatch first (nothing else can be trusted),
/// then every significant difference, else the success rate's state.
pub(crate) fn overall_line(r: &ExperimentReport) -> String {
    if let SampleRatioReport::Checked(s) = &r.sample_ratio {
        if s.mismatch {
            return format!(
                "Sample-ratio mismatch: {} % of requests are in the LightRAG arm, {} % expected ({}); the arms are not comparable, so hold and find the cause before reading any result",
                number(100.0 * s.observed_treatment_share, 1),
                number(100.0 * s.expected_treatment_share, 1),
                p_text(s.p_value)
            );
        }
    }
    let significant: Vec<&str> = [&r.success_rate, &r.quality, &r.latency_ms]
        .into_iter()
        .filter_map(MetricReport::comparison)
        .filter(|c| c.sequential.significant)
        .map(|c| c.summary.as_str())
        .collect();
    if !significant.is_empty() {
        return significant.join("; ");
    }
    match &r.success_rate {
        MetricReport::Compared(c) => c.summary.clone(),
        MetricReport::InsufficientData { summary, .. } => summary.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(number(-0.04, 1), "0.0");
        assert_eq!(number(-2.06, 1), "\u{2212}2.1");
        assert_eq!(signed(1.25, 2), "+1.25");
        assert_eq!(signed(0.0, 1), "0.0");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(grouped(12), "12");
        assert_eq!(p_text(0.0031), "p = 0.0031");
        assert_eq!(p_text(0.42), "p = 0.42");
        assert_eq!(p_text(0.0004), "p < 0.001");
        assert_eq!(p_text(1.0), "p = 1");
        assert_eq!(confidence(Alpha::FIVE_PERCENT), "95 %");
    }
}
