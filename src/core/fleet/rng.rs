//! The isolate's source of rolls: SplitMix64 from one seed the driver draws.
//!
//! Why a generator in the core instead of `Math.random` at each call site: a simulation of many
//! isolates (issue 14) must be reproducible from one seed, and the Worker needs nothing better
//! than uniform rolls for probe admission and jitter (nothing secret depends on them). quinn
//! injects its randomness the same way.

/// SplitMix64 (Steele, Lea, Flood 2014): 64 bits of state, full period, passes BigCrush.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A roll uniform in [0, 1) (53 random bits).
    pub fn roll(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}
