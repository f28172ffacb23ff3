//! The quality gate (docs/architecture.md#the-routing-decision, step 5): stop sending users to LightRAG while its answers are
//! measurably worse, without ever locking it out.
//!
//! Why this shape: the seed closed the gate on one bad score and never looked again, because a
//! closed gate also stopped the measurements that could reopen it. Here the gate is a pure
//! function of windowed statistics (see [`crate::core::window`]) plus its previous state:
//!
//! - **Evidence first**: with fewer than `min_samples` scored LightRAG answers in the window
//!   the gate is open (`insufficient_samples`). It never closes on anecdote, and if a closed
//!   gate's probe traffic is too thin to fill the window it reopens when the window empties,
//!   which bounds any lock-out by the window's length.
//! - **Absolute and relative**: it closes when LightRAG's mean quality is below
//!   `min_quality` (`LIGHTRAG_MIN_QUALITY_THRESHOLD`, default 0.7), or, when Perplexity has
//!   enough samples too, more than `relative_margin` below Perplexity's mean.
//! - **Hysteresis**: a closed gate reopens only once the mean clears each bound by
//!   `hysteresis`, so a mean hovering at the threshold does not flap the route every minute
//!   (the same reason Envoy's outlier detection and linkerd's failure accrual use separate
//!   eject / un-eject conditions).
//! - **Probes**: while closed, `probe_share` of the requests that would have gone to LightRAG
//!   still go there ([`GatePolicy::admits_probe`], applied by the routing decision's step 5),
//!   so its window keeps filling and the gate can reopen when LightRAG recovers.

use crate::core::policy::{Bounds, PolicyError};
use crate::core::window::Stats;
use serde::{Deserialize, Serialize};

/// `LIGHTRAG_MIN_QUALITY_THRESHOLD`.
pub const MIN_QUALITY: Bounds = Bounds::closed(0.0, 1.0);
/// `LIGHTRAG_QUALITY_GATE_MIN_SAMPLES`.
pub const MIN_SAMPLES: Bounds = Bounds::whole(1, 1_000_000);
/// `LIGHTRAG_QUALITY_GATE_PROBE_SHARE`: never 0, or a closed gate could never reopen.
pub const PROBE_SHARE: Bounds = Bounds::open_closed(0.0, 1.0);
const RELATIVE_MARGIN: Bounds = Bounds::closed(0.0, 1.0);
const HYSTERESIS: Bounds = Bounds::closed(0.0, 0.5);

/// Gate configuration (plain data); [`GatePolicy::try_new`] validates it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GateSettings {
    /// `LIGHTRAG_ENABLE_QUALITY_METRICS`: disabled → always open, and answers are not scored.
    pub enabled: bool,
    /// [`MIN_QUALITY`].
    pub min_quality: f64,
    /// Scored LightRAG answers needed before the gate may close, [`MIN_SAMPLES`].
    pub min_samples: u64,
    /// LightRAG may trail Perplexity's mean by this much, in [0, 1].
    pub relative_margin: f64,
    /// Extra margin a closed gate needs to reopen, in [0, 0.5].
    pub hysteresis: f64,
    /// Share of would-be LightRAG requests still sent while closed, [`PROBE_SHARE`].
    pub probe_share: f64,
}

impl GateSettings {
    /// The documented defaults (the seed's `LIGHTRAG_ENABLE_QUALITY_METRICS=false` and
    /// `LIGHTRAG_MIN_QUALITY_THRESHOLD=0.7`).
    pub const DEFAULT: GateSettings = GateSettings {
        enabled: false,
        min_quality: 0.7,
        min_samples: 50,
        relative_margin: 0.1,
        hysteresis: 0.05,
        probe_share: 0.05,
    };
}

impl Default for GateSettings {
    fn default() -> Self {
        GateSettings::DEFAULT
    }
}

/// Validated gate settings; only [`GatePolicy::try_new`] (or `Default`) builds one. Serializes
/// as its settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(transparent)]
pub struct GatePolicy {
    s: GateSettings,
}

impl Default for GatePolicy {
    fn default() -> Self {
        GatePolicy {
            s: GateSettings::DEFAULT,
        }
    }
}

impl GatePolicy {
    pub fn try_new(s: GateSettings) -> Result<GatePolicy, PolicyError> {
        for (bounds, field, value) in [
            (&MIN_QUALITY, "min_quality", s.min_quality),
            (&MIN_SAMPLES, "min_samples", s.min_samples as f64),
            (&RELATIVE_MARGIN, "relative_margin", s.relative_margin),
            (&HYSTERESIS, "hysteresis", s.hysteresis),
            (&PROBE_SHARE, "probe_share", s.probe_share),
        ] {
            bounds.check(field, value)?;
        }
        Ok(GatePolicy { s })
    }

    pub fn settings(&self) -> &GateSettings {
        &self.s
    }

    /// Whether a request that would go to LightRAG while the gate is closed is sent anyway as a
    /// quality probe, given its roll in [0, 1).
    pub fn admits_probe(&self, roll: f64) -> bool {
        roll < self.s.probe_share
    }
}

/// Why the gate is in its state (serde snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateReason {
    Disabled,
    InsufficientSamples,
    Healthy,
    BelowThreshold,
    BelowPerplexity,
}

/// The gate's verdict.
///
/// Serde shape: `{"closed":true,"reason":"below_threshold","lightrag_mean":0.52,
/// "perplexity_mean":0.81,"samples":120,"probe_share":0.1}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GateStatus {
    pub closed: bool,
    pub reason: GateReason,
    pub lightrag_mean: Option<f64>,
    pub perplexity_mean: Option<f64>,
    /// Scored LightRAG samples in the window.
    pub samples: u64,
    pub probe_share: f64,
}

/// Evaluates the gate. `was_closed` is the previous verdict (for hysteresis); pass `false`
/// the first time.
pub fn evaluate(
    lightrag: &Stats,
    perplexity: &Stats,
    policy: &GatePolicy,
    was_closed: bool,
) -> GateStatus {
    let settings = policy.settings();
    let lightrag_mean = lightrag.mean_quality();
    let perplexity_mean = perplexity.mean_quality();
    let samples = lightrag.quality_count;
    let status = |closed, reason| GateStatus {
        closed,
        reason,
        lightrag_mean,
        perplexity_mean,
        samples,
        probe_share: settings.probe_share,
    };
    if !settings.enabled {
        return status(false, GateReason::Disabled);
    }
    let Some(lr) = lightrag_mean.filter(|_| samples >= settings.min_samples) else {
        return status(false, GateReason::InsufficientSamples);
    };
    // A closed gate must clear each bound by the hysteresis margin to reopen.
    let extra = if was_closed { settings.hysteresis } else { 0.0 };
    if lr < settings.min_quality + extra {
        return status(true, GateReason::BelowThreshold);
    }
    if let Some(px) = perplexity_mean.filter(|_| perplexity.quality_count >= settings.min_samples) {
        if lr < px - settings.relative_margin + extra {
            return status(true, GateReason::BelowPerplexity);
        }
    }
    status(false, GateReason::Healthy)
}
