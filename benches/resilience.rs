//! Hot-path costs of the resilience core: one breaker `record` + `admit` pair per request
//! (target ≤ 50 ns median) and scoring a 2 KB answer (target ≤ 20 µs).
//!
//! Run: `cargo bench --bench resilience -- --warm-up-time 1 --measurement-time 3`.

use cmo_edge_router::core::breaker::{Breaker, BreakerPolicy};
use cmo_edge_router::core::keytag::KeyTag;
use cmo_edge_router::core::model::Upstream;
use cmo_edge_router::core::outcome::{Outcome, OutcomeKind};
use cmo_edge_router::core::quality::{DefaultScorer, ScoreInput, Scorer};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn breaker(c: &mut Criterion) {
    let mut b = Breaker::new(BreakerPolicy::default());
    let ok = Outcome::success(120);
    let fail = Outcome::new(OutcomeKind::HttpServerError(503), 120);
    let mut now = 1_700_000_000_000u64;
    let mut i = 0u64;
    c.bench_function("breaker/record_admit", |bench| {
        bench.iter(|| {
            now += 1;
            i = i.wrapping_add(1);
            // 1 failure in 8: exercises the window without tripping it.
            let o = if i.is_multiple_of(8) { &fail } else { &ok };
            let a = b.admit(black_box(now), black_box(0.37));
            // A different user every call, as in real traffic.
            let t = b.record(black_box(o), KeyTag::from_raw(i), now, 0.5);
            black_box((a, t))
        })
    });
}

fn answer_2kb() -> String {
    let para =
        "Glutathione (GSH) is the main intracellular antioxidant. In glutathione metabolism, \
                glutamate, cysteine and glycine are joined by glutamate-cysteine ligase and \
                glutathione synthetase. Under oxidative stress, glutathione peroxidase reduces \
                hydrogen peroxide and lipid peroxides, producing GSSG, recycled with NADPH [1]. ";
    let mut s = String::new();
    while s.len() < 2048 {
        s.push_str(para);
    }
    s.truncate(2048);
    s
}

fn quality(c: &mut Criterion) {
    let scorer = DefaultScorer::default();
    let answer = answer_2kb();
    let query =
        "What is the role of glutathione metabolism in oxidative stress and redox signalling?";
    c.bench_function("quality/score_2kb", |bench| {
        bench.iter(|| {
            let input = ScoreInput {
                query: black_box(query),
                answer: black_box(&answer),
                sources: 3,
                latency_ms: 2_500,
                upstream: Upstream::Lightrag,
            };
            black_box(scorer.score(&input))
        })
    });
}

criterion_group!(benches, breaker, quality);
criterion_main!(benches);
