//! Inputs the fuzz targets found, kept as explicit cases where the fix has no unit test of its
//! own in `src/` (the persisted seeds in `regressions/` replay too, but a seed only reproduces
//! its input while the generators stay the same).

use crate::memory_store::MemoryStore;
use cmo_edge_router::core::config;
use cmo_edge_router::core::store::{
    self, controller_tick, MetricsFlush, PassProgress, RolloutDoc, ROLLOUT_KEY,
};

/// `kv_store_documents`: a pass in progress read from `rollout/state` with `ticks` (or
/// `isolates`, `corrupt`) at `u64::MAX` overflowed on the next controller tick (a panic in
/// debug builds, a wrap in release).
#[test]
fn pass_counters_from_kv_saturate() {
    let s = MemoryStore::new();
    let doc = RolloutDoc {
        pass: Some(PassProgress {
            ticks: u64::MAX,
            isolates: u64::MAX,
            corrupt: u64::MAX,
            ..PassProgress::default()
        }),
        ..RolloutDoc::default()
    };
    s.insert(ROLLOUT_KEY, &serde_json::to_string(&doc).unwrap());
    let flush = serde_json::to_string(&MetricsFlush::default()).unwrap();
    s.insert(&store::metrics_key("a"), &flush);
    s.insert(&store::metrics_key("b"), "{corrupt");
    let gate = config::defaults().quality_gate;
    let rep = crate::kv::block_on(controller_tick(&s, 1_000, &gate, 50));
    assert!(rep.completed);
    let out: RolloutDoc = store::parse_value(ROLLOUT_KEY, &s.value(ROLLOUT_KEY).unwrap()).unwrap();
    let agg = out.aggregate.unwrap();
    assert_eq!(
        (agg.ticks, agg.isolates, agg.corrupt),
        (u64::MAX, u64::MAX, u64::MAX)
    );
}
