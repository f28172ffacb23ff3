//! Windowed statistics: the histogram agrees with a naive sorted-vector reference (proptest),
//! merging is associative and commutative, and the window forgets old minutes.

use cmo_edge_router::core::classify::QueryType;
use cmo_edge_router::core::model::Arm;
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::outcome::OutcomeKind;
use cmo_edge_router::core::window::{
    Histogram, MetricKey, Sample, Stats, Window, HISTOGRAM_BUCKETS,
};
use proptest::prelude::*;

const MIN: u64 = 60_000;
const T0: u64 = 1_700_000_000_000 / MIN * MIN;

/// Naive nearest-rank quantile of a sorted vector.
fn naive_quantile(sorted: &[u64], q: f64) -> u64 {
    let n = sorted.len() as u64;
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    sorted[(rank - 1) as usize]
}

fn sample(kind: OutcomeKind, latency_ms: u64, fallback: bool, quality: Option<f64>) -> Sample {
    Sample {
        kind,
        latency_ms,
        fallback,
        quality,
        no_context: false,
        query_type: None,
        total_ms: None,
    }
}

fn arb_kind() -> impl Strategy<Value = OutcomeKind> {
    prop_oneof![
        Just(OutcomeKind::Success),
        Just(OutcomeKind::HttpServerError(503)),
        Just(OutcomeKind::ClientError(404)),
        Just(OutcomeKind::Refused(401)),
        Just(OutcomeKind::NotSent),
        Just(OutcomeKind::TruncatedStream),
        Just(OutcomeKind::FirstByteTimeout),
    ]
}

fn arb_sample() -> impl Strategy<Value = Sample> {
    (
        arb_kind(),
        0u64..200_000,
        any::<bool>(),
        prop::option::of(0.0f64..=1.0),
        // The answer-aware fields: a no-context reply, the query's class, a whole-answer time.
        any::<bool>(),
        prop::option::of(prop::sample::select(QueryType::ALL.to_vec())),
        prop::option::of(0u64..300_000),
    )
        .prop_map(|(k, l, f, q, nc, t, total)| Sample {
            no_context: nc,
            query_type: t,
            total_ms: total,
            ..sample(k, l, f, q)
        })
}

/// A window built from (minute offset, sample) events.
fn arb_window() -> impl Strategy<Value = Window> {
    prop::collection::vec((0u64..30, arb_sample()), 0..40).prop_map(|events| {
        let mut w = Window::try_new(MIN, 10).unwrap();
        for (m, s) in events {
            w.record(T0 + m * MIN, &s);
        }
        w
    })
}

proptest! {
    #[test]
    fn histogram_quantiles_match_the_naive_reference(
        values in prop::collection::vec(prop_oneof![0u64..20, 0u64..5_000, 0u64..100_000_000], 1..300),
        q in 0.0f64..=1.0,
    ) {
        let mut h = Histogram::default();
        for &v in &values {
            h.record(v);
        }
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let exact = naive_quantile(&sorted, q);
        let est = h.quantile(q).unwrap();
        // Same bucket as the exact answer, hence within the bucket's relative width.
        prop_assert_eq!(Histogram::bucket_index(est), Histogram::bucket_index(exact));
        if (8..(1 << 24)).contains(&exact) {
            let err = (est as f64 - exact as f64).abs() / exact as f64;
            prop_assert!(err <= 0.25, "est {} exact {} err {}", est, exact, err);
        } else if exact < 8 {
            prop_assert_eq!(est, exact);
        }
        prop_assert_eq!(h.count(), values.len() as u64);
    }

    #[test]
    fn bucket_ranges_partition_the_line(v in 0u64..(1 << 24)) {
        let i = Histogram::bucket_index(v);
        let (lo, hi) = Histogram::bucket_range(i);
        prop_assert!(lo <= v && v < hi, "{} not in [{}, {}) of bucket {}", v, lo, hi, i);
        prop_assert!(i < HISTOGRAM_BUCKETS);
    }

    #[test]
    fn stats_merge_equals_recording_everything(a in prop::collection::vec(arb_sample(), 0..50), b in prop::collection::vec(arb_sample(), 0..50)) {
        let mut sa = Stats::default();
        a.iter().for_each(|s| sa.record(s));
        let mut sb = Stats::default();
        b.iter().for_each(|s| sb.record(s));
        let mut all = Stats::default();
        a.iter().chain(b.iter()).for_each(|s| all.record(s));
        sa.merge(&sb);
        prop_assert_eq!(sa, all);
    }

    #[test]
    fn window_merge_is_associative_and_commutative(a in arb_window(), b in arb_window(), c in arb_window()) {
        // (a ∪ b) ∪ c
        let mut left = a.clone();
        left.merge(&b).unwrap();
        left.merge(&c).unwrap();
        // a ∪ (b ∪ c)
        let mut bc = b.clone();
        bc.merge(&c).unwrap();
        let mut right = a.clone();
        right.merge(&bc).unwrap();
        prop_assert_eq!(&left, &right);
        // b ∪ a == a ∪ b
        let mut ab = a.clone();
        ab.merge(&b).unwrap();
        let mut ba = b.clone();
        ba.merge(&a).unwrap();
        prop_assert_eq!(ab, ba);
    }

    #[test]
    fn window_serde_round_trips(w in arb_window()) {
        let json = serde_json::to_string(&w).unwrap();
        let back: Window = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, w);
    }
}

#[test]
fn stats_rates_and_means() {
    let mut s = Stats::default();
    assert_eq!(s.success_rate(), None);
    assert_eq!(s.mean_quality(), None);
    assert_eq!(s.p50(), None);
    s.record(&sample(OutcomeKind::Success, 100, false, Some(0.8)));
    s.record(&sample(OutcomeKind::Success, 200, true, Some(0.6)));
    s.record(&sample(OutcomeKind::HttpServerError(502), 300, false, None));
    s.record(&sample(
        OutcomeKind::TruncatedStream,
        400,
        false,
        Some(f64::NAN),
    ));
    assert_eq!(s.count, 4);
    assert_eq!(
        (s.successes, s.errors, s.fallbacks, s.truncated),
        (2, 2, 1, 1)
    );
    assert_eq!(s.success_rate(), Some(0.5));
    assert_eq!(s.error_rate(), Some(0.5));
    assert!((s.mean_quality().unwrap() - 0.7).abs() < 1e-9);
    assert_eq!(s.quality_count, 2, "NaN quality is ignored");
    let p50 = s.p50().unwrap();
    assert!((192..=223).contains(&p50), "{p50}");
}

/// Requests refused for what they asked are their own count: not successes (today's bug: a
/// LightRAG 422 answered as 502 was recorded as a success), not errors, not in the rates.
#[test]
fn request_caused_outcomes_are_counted_apart() {
    let mut s = Stats::default();
    s.record(&sample(OutcomeKind::Success, 100, false, None));
    s.record(&sample(OutcomeKind::HttpServerError(502), 100, false, None));
    for k in [
        OutcomeKind::ClientError(422),
        OutcomeKind::ContextLength,
        OutcomeKind::NotSent,
    ] {
        s.record(&sample(k, 5, false, None));
    }
    s.record(&sample(OutcomeKind::Refused(401), 100, false, None));
    assert_eq!((s.count, s.successes, s.errors, s.rejected), (3, 1, 2, 3));
    assert_eq!(s.latency.count(), 3);
    assert_eq!(
        serde_json::to_value(&s).unwrap()["rejected"],
        serde_json::json!(3)
    );
    let mut only = Stats::default();
    only.record(&sample(OutcomeKind::NotSent, 1, false, None));
    assert!(!only.is_empty());
}

#[test]
fn stats_serde_shape_is_compact() {
    assert_eq!(serde_json::to_string(&Stats::default()).unwrap(), "{}");
    let mut s = Stats::default();
    s.record(&sample(OutcomeKind::Success, 5, false, Some(0.5)));
    s.record(&sample(OutcomeKind::Success, 5, false, None));
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        serde_json::json!({"count":2,"successes":2,"quality_sum":500000,"quality_count":1,"latency":[[5,2]],
                           "latency_sum":10,"latency_sum_sq":50,"quality_sum_sq":250000000000u64})
    );
    let back: Stats = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
    assert_eq!(back, s);
    // An out-of-range bucket is a parse error, not a panic.
    assert!(serde_json::from_str::<Stats>(r#"{"latency":[[200,1]]}"#).is_err());
}

#[test]
fn window_forgets_minutes_older_than_its_length() {
    // A 10-minute window.
    let mut w = Window::try_new(MIN, 10).unwrap();
    let ok = sample(OutcomeKind::Success, 100, false, Some(1.0));
    // t=0: 3 requests; t=5min: 2 requests.
    for _ in 0..3 {
        w.record(T0, &ok);
    }
    w.record(T0 + 5 * MIN, &ok);
    w.record(T0 + 5 * MIN + 59_999, &ok);
    assert_eq!(w.total(T0 + 5 * MIN).count, 5);
    // t=9min59s: minute 0 is still inside the 10-minute window.
    assert_eq!(w.total(T0 + 10 * MIN - 1).count, 5);
    // t=10min: minute 0 falls out.
    assert_eq!(w.total(T0 + 10 * MIN).count, 2);
    // t=10min: recording reuses minute 0's ring slot.
    w.record(T0 + 10 * MIN, &ok);
    assert_eq!(w.total(T0 + 10 * MIN).count, 3);
    // t=20min: everything is gone; prune empties the ring for serialisation.
    assert_eq!(w.total(T0 + 20 * MIN).count, 0);
    w.prune(T0 + 20 * MIN);
    assert!(w.is_empty());
    // Geometry mismatch is an error, not silent corruption.
    let other = Window::try_new(MIN, 60).unwrap();
    assert!(w.merge(&other).is_err());
    assert!(Window::try_new(0, 10).is_err());
    assert!(Window::try_new(MIN, 0).is_err());
}

#[test]
fn window_serde_shape() {
    let mut w = Window::try_new(MIN, 3).unwrap();
    w.record(T0, &sample(OutcomeKind::Success, 1, false, None));
    let v = serde_json::to_value(&w).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"bucket_ms":60000,"len":3,"slots":[{"t":T0 / MIN,"s":{"count":1,"successes":1,"latency":[[1,1]],"latency_sum":1,"latency_sum_sq":1}}]})
    );
}

#[test]
fn metric_keys_are_strings() {
    let k = MetricKey::new(Upstream::Lightrag, Arm::Treatment);
    assert_eq!(serde_json::to_string(&k).unwrap(), "\"lightrag.treatment\"");
    assert_eq!(
        MetricKey::parse("perplexity.none"),
        Some(MetricKey::new(Upstream::Perplexity, Arm::None))
    );
    assert_eq!(MetricKey::parse("perplexity.other"), None);
    assert_eq!(MetricKey::all().count(), 6);
    let map: cmo_edge_router::core::sorted_map::SortedMap<MetricKey, u32> =
        [(k, 1)].into_iter().collect();
    assert_eq!(
        serde_json::to_string(&map).unwrap(),
        r#"{"lightrag.treatment":1}"#
    );
}

/// The exact integer sums the A/B statistics read (`Moments::from_integer_sums`) merge
/// associatively, and give the same moments as the samples themselves.
#[test]
fn sums_of_squares_merge_exactly_and_give_the_samples_moments() {
    use cmo_edge_router::core::experiment::Moments;
    let lat = [120u64, 95, 3_000, 410, 77, 1_250];
    let qual = [0.8, 0.61, 0.95, 0.5];
    let (mut a, mut b, mut all) = (Stats::default(), Stats::default(), Stats::default());
    for (i, ms) in lat.iter().enumerate() {
        let q = qual.get(i).copied();
        let s = sample(OutcomeKind::Success, *ms, false, q);
        if i % 2 == 0 {
            a.record(&s)
        } else {
            b.record(&s)
        }
        all.record(&s);
    }
    let mut merged = a.clone();
    merged.merge(&b);
    assert_eq!(merged, all);
    let m = Moments::from_integer_sums(
        all.count,
        u128::from(all.latency_sum),
        all.latency_sum_sq,
        1.0,
    )
    .unwrap();
    let direct = Moments::from_values(&lat.map(|v| v as f64));
    assert!((m.mean().unwrap() - direct.mean().unwrap()).abs() < 1e-9);
    assert!((m.m2() - direct.m2()).abs() < 1e-6 * direct.m2());
    let q = Moments::from_integer_sums(
        all.quality_count,
        u128::from(all.quality_sum),
        all.quality_sum_sq,
        1e6,
    )
    .unwrap();
    let direct = Moments::from_values(&qual);
    assert!((q.mean().unwrap() - direct.mean().unwrap()).abs() < 1e-9);
    assert!((q.m2() - direct.m2()).abs() < 1e-9);
    // A square sum past u64 survives JSON.
    let big = Stats {
        quality_sum_sq: u128::from(u64::MAX) * 3,
        ..Stats::default()
    };
    let back: Stats = serde_json::from_str(&serde_json::to_string(&big).unwrap()).unwrap();
    assert_eq!(back.quality_sum_sq, u128::from(u64::MAX) * 3);
}
