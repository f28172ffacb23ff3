//! Placeholder until the benchmark lands (see the issue tracker).
fn main() {}
