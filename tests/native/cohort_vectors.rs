//! Native checks of cohort hashing: pinned vectors (shared with the wasm suites), properties,
//! and uniformity. A refactor that reshuffles users fails here first.

use cmo_edge_router::core::cohort::{self, Percent, Position};
use cmo_edge_router::core::stats;

#[derive(serde::Deserialize)]
struct Vector {
    salt: String,
    key: String,
    hash: u32,
    position: f64,
}

fn vectors() -> Vec<Vector> {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../vectors/cohort.json")).unwrap();
    serde_json::from_value(doc["vectors"].clone()).unwrap()
}

#[test]
fn pinned_vectors() {
    let vs = vectors();
    assert!(vs.iter().any(|v| v.key.is_empty()), "empty key vector");
    assert!(vs.iter().any(|v| !v.key.is_ascii()), "non-ASCII key vector");
    for v in &vs {
        assert_eq!(
            cohort::hash(&v.salt, &v.key),
            v.hash,
            "{:?}:{:?}",
            v.salt,
            v.key
        );
        assert_eq!(cohort::position(&v.salt, &v.key).percent(), v.position);
    }
}

/// The naive reference: the documented formula on floats, compared as the spec states it.
fn naive_in(h: u32, r: f64) -> bool {
    let pos = (h % 100) as f64 + ((h / 100) % 100) as f64 / 100.0;
    (pos * 100.0).round() < (r * 100.0).round()
}

#[test]
fn deterministic_monotone_and_bounded() {
    let rates = [
        0.0, 0.01, 0.25, 1.0, 5.0, 9.77, 10.0, 25.0, 50.0, 75.0, 99.0, 99.99, 100.0,
    ];
    for i in 0..20_000 {
        let key = format!("user-{i}");
        let h = cohort::hash(cohort::DEFAULT_SALT, &key);
        let pos = cohort::position(cohort::DEFAULT_SALT, &key);
        assert_eq!(pos, cohort::position(cohort::DEFAULT_SALT, &key));
        let mut was_in = false;
        for &r in &rates {
            let now_in = cohort::in_rollout(pos, Percent::from_percent(r).unwrap());
            assert_eq!(now_in, naive_in(h, r), "{key} at {r}");
            assert!(!was_in || now_in, "{key} evicted when raising to {r}");
            was_in = now_in;
        }
        assert!(!cohort::in_rollout(pos, Percent::ZERO));
        assert!(cohort::in_rollout(pos, Percent::FULL));
    }
}

#[test]
fn every_position_is_reachable_and_in_range() {
    for h in (0u32..=u32::MAX).step_by(65_537) {
        let p = cohort::position_of_hash(h);
        assert!(p.hundredths() < 10_000);
        assert_eq!(Position::from_hundredths(p.hundredths()), Some(p));
    }
}

#[test]
fn uniform_over_100_buckets() {
    let mut counts = [0u64; 100];
    for i in 0..100_000 {
        let pos = cohort::position(cohort::DEFAULT_SALT, &format!("user-{i}"));
        counts[usize::from(pos.bucket())] += 1;
    }
    let fit = stats::chi_square_uniform(&counts).unwrap();
    assert!(
        fit.p_value > 0.001,
        "χ² = {} p = {}",
        fit.statistic,
        fit.p_value
    );
    // And the test has teeth: a skewed assignment is rejected.
    let mut skewed = counts;
    skewed[0] += 600;
    skewed[99] -= 600;
    assert!(stats::chi_square_uniform(&skewed).unwrap().p_value < 0.001);
}
