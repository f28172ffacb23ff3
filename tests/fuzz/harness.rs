//! The runner every target shares: how many inputs, which seed, where a failure is kept, and the
//! one line each target prints.
//!
//! Why proptest's `TestRunner` and not a fuzzing engine: cargo-fuzz and libFuzzer need a nightly
//! toolchain, and a fresh CI machine has only the pinned stable one. Proptest runs on stable, its
//! strategies build structured inputs (JSON that gets past the first `{`), it shrinks a failure
//! to a small input, and it persists the failing seed so the next run replays it first. What it
//! lacks is coverage feedback, which is why the generators carry the domain knowledge instead.
//!
//! Environment:
//! - `FUZZ_CASES`: inputs per target (default [`DEFAULT_CASES`], the short run `cargo test` does).
//! - `FUZZ_SEED`: a u64 (decimal); each target derives its own stream from it and its name.
//!   Default 0, so `cargo test` is deterministic; `make fuzz` passes a fresh one and prints it.

use proptest::strategy::Strategy;
use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};
// The run's own duration, for the report: timing the harness, not the core (which stays pure).
#[allow(clippy::disallowed_types)]
use std::time::Instant;

/// Inputs per target in the short run (`cargo test`): a few thousand, well under a minute for
/// all targets in a debug build on two cores.
pub const DEFAULT_CASES: u32 = 2_000;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// FNV-1a, to give every target its own random stream from one seed.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Runs `check` on `FUZZ_CASES` inputs drawn from `strategy`. A panic or a returned failure is
/// shrunk to a minimal input, its seed is appended to `tests/fuzz/regressions/<name>.txt` (replayed
/// first on every later run; commit it) and the test fails with the minimal input.
pub fn run<S: Strategy>(
    name: &'static str,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = env_u64("FUZZ_CASES")
        .map(|c| c.min(u64::from(u32::MAX)) as u32)
        .unwrap_or(DEFAULT_CASES);
    let seed = env_u64("FUZZ_SEED").unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..].copy_from_slice(&fnv(name).to_le_bytes());
    let path: &'static str =
        Box::leak(format!("tests/fuzz/regressions/{name}.txt").into_boxed_str());
    let config = Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(path))),
        // Generators never filter; a reject would be a generator bug, so do not tolerate many.
        max_global_rejects: 16,
        max_shrink_iters: 20_000,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::XorShift, &bytes));
    #[allow(clippy::disallowed_types)]
    let start = Instant::now();
    let calls = std::cell::Cell::new(0u64);
    let result = runner.run(&strategy, |v| {
        calls.set(calls.get() + 1);
        check(v)
    });
    let secs = start.elapsed().as_secs_f64();
    let inputs = calls.get();
    // Proptest stops at the first failure (then shrinks it), so a target reports 0 or 1.
    let failures = u32::from(result.is_err());
    println!(
        "fuzz {name:<22} {inputs:>9} inputs {secs:>8.1} s {:>8.1} µs/input {failures} failures (seed {seed}){}",
        secs * 1e6 / (inputs.max(1) as f64),
        if failures > 0 { " — stopped at the first, inputs include shrinking" } else { "" },
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, minimal)) => {
            let full = format!("{minimal:#?}");
            let dump = format!("target/fuzz-failures/{name}.txt");
            let _ = std::fs::create_dir_all("target/fuzz-failures");
            let _ = std::fs::write(&dump, format!("{reason}\n\n{full}\n"));
            let shown: String = format!("{minimal:?}").chars().take(4_000).collect();
            panic!("fuzz target {name} failed: {reason}\nminimal input: {shown}\n(whole input in {dump}; seed persisted in {path}; rerun with FUZZ_SEED={seed})");
        }
        Err(TestError::Abort(reason)) => panic!("fuzz target {name} aborted: {reason}"),
    }
}
