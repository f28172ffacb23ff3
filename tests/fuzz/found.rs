//! Inputs the fuzz targets found, kept as explicit cases where the fix has no unit test of its
//! own in `src/` (the persisted seeds in `regressions/` replay too, but a seed only reproduces
//! its input while the generators stay the same).

use crate::memory_store::MemoryStore;
use cmo_edge_router::core::config;
use cmo_edge_router::core::controller::{
    controller_tick, ControllerDoc, ControllerInput, PassProgress, CONTROLLER_KEY,
};
use cmo_edge_router::core::store::{self, MetricsFlush};

/// `kv_store_documents`: a pass in progress read from the controller's document with `ticks`
/// (or `isolates`, `corrupt`) at `u64::MAX` overflowed on the next controller tick (a panic in
/// debug builds, a wrap in release).
#[test]
fn pass_counters_from_kv_saturate() {
    let s = MemoryStore::new();
    let doc = ControllerDoc {
        pass: Some(PassProgress {
            ticks: u64::MAX,
            isolates: u64::MAX,
            corrupt: u64::MAX,
            ..PassProgress::default()
        }),
        ..ControllerDoc::default()
    };
    s.insert(CONTROLLER_KEY, &serde_json::to_string(&doc).unwrap());
    let flush = serde_json::to_string(&MetricsFlush::default()).unwrap();
    s.insert(&store::metrics_key("a"), &flush);
    s.insert(&store::metrics_key("b"), "{corrupt");
    let c = config::defaults();
    let rep = crate::kv::block_on(controller_tick(
        &s,
        &ControllerInput {
            now_ms: 1_000,
            config: &c,
            max_ops: 50,
        },
    ));
    assert!(rep.completed);
    let out: ControllerDoc =
        store::parse_value(CONTROLLER_KEY, &s.value(CONTROLLER_KEY).unwrap()).unwrap();
    let agg = out.aggregate.unwrap();
    assert_eq!(
        (agg.ticks, agg.isolates, agg.corrupt),
        (u64::MAX, u64::MAX, u64::MAX)
    );
}
