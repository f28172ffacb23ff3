//! How the upstreams answer in the simulation: LightRAG and Perplexity with log-normal
//! latencies, a small background error rate and an answer quality each, and LightRAG down
//! (503 within 50 ms, what its load balancer answers with no healthy backend) between the
//! scenario's failure and recovery times. Assumptions, not measurements: what matters to the
//! fleet is when calls fail, not their exact latency.

use cmo_edge_router::core::exchange::{AttemptResult, Fault};
use cmo_edge_router::core::fleet::Rng;
use cmo_edge_router::core::model::Upstream;

/// One call's result, how long it took, and the answer's quality when there was one.
#[derive(Debug, Clone, Copy)]
pub struct CallResult {
    pub result: AttemptResult,
    pub latency_ms: u64,
    pub quality: Option<f64>,
}

/// The upstreams' behaviour.
pub struct Upstreams {
    pub rng: Rng,
    /// LightRAG fails in `[from, until)` (epoch ms).
    pub lightrag_down: (u64, u64),
}

struct Profile {
    median_ms: f64,
    sigma: f64,
    error_rate: f64,
    quality_mean: f64,
}

const LIGHTRAG: Profile = Profile {
    median_ms: 1_200.0,
    sigma: 0.5,
    error_rate: 0.003,
    quality_mean: 0.80,
};
const PERPLEXITY: Profile = Profile {
    median_ms: 1_800.0,
    sigma: 0.4,
    error_rate: 0.002,
    quality_mean: 0.76,
};

impl Upstreams {
    fn normal(&mut self) -> f64 {
        // Box–Muller.
        let (u1, u2) = (1.0 - self.rng.roll(), self.rng.roll());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Whether LightRAG is down at `now_ms`.
    pub fn lightrag_is_down(&self, now_ms: u64) -> bool {
        (self.lightrag_down.0..self.lightrag_down.1).contains(&now_ms)
    }

    /// `u` called at `now_ms`.
    pub fn call(&mut self, u: Upstream, now_ms: u64) -> CallResult {
        if u == Upstream::Lightrag && self.lightrag_is_down(now_ms) {
            return CallResult {
                result: AttemptResult::Failed(Fault::Status(503)),
                latency_ms: 50,
                quality: None,
            };
        }
        let p = match u {
            Upstream::Lightrag => &LIGHTRAG,
            Upstream::Perplexity => &PERPLEXITY,
        };
        let latency_ms = (p.median_ms * (p.sigma * self.normal()).exp()).round() as u64;
        if self.rng.roll() < p.error_rate {
            return CallResult {
                result: AttemptResult::Failed(Fault::Status(502)),
                latency_ms: latency_ms.min(3_000),
                quality: None,
            };
        }
        let quality = (p.quality_mean + 0.08 * self.normal()).clamp(0.0, 1.0);
        CallResult {
            result: AttemptResult::Answered {
                head_ms: now_ms + latency_ms,
            },
            latency_ms,
            quality: Some(quality),
        }
    }
}
