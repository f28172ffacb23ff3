//! The quality gate (DESIGN §3 step 5): stop sending users to LightRAG while its answers are
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
//!   still go there ([`GateStatus::admit`]), so its window keeps filling and the gate can
//!   reopen when LightRAG recovers.

use crate::core::outcome::{check_f64, check_min, check_share, PolicyError};
use crate::core::window::Stats;
use serde::{Deserialize, Serialize};

/// Gate configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GateSettings {
    /// `LIGHTRAG_ENABLE_QUALITY_METRICS`: disabled → always open.
    pub enabled: bool,
    /// `LIGHTRAG_MIN_QUALITY_THRESHOLD`, in [0, 1].
    pub min_quality: f64,
    /// Scored LightRAG answers needed before the gate may close, ≥ 1.
    pub min_samples: u64,
    /// LightRAG may trail Perplexity's mean by this much, in [0, 1].
    pub relative_margin: f64,
    /// Extra margin a closed gate needs to reopen, in [0, 0.5].
    pub hysteresis: f64,
    /// Share of would-be LightRAG requests still sent while closed, in (0, 1].
    pub probe_share: f64,
}

impl Default for GateSettings {
    fn default() -> Self {
        GateSettings {
            enabled: true,
            min_quality: 0.7,
            min_samples: 30,
            relative_margin: 0.1,
            hysteresis: 0.05,
            probe_share: 0.1,
        }
    }
}

impl GateSettings {
    /// Validates the settings (returns them unchanged when valid).
    pub fn try_new(s: GateSettings) -> Result<GateSettings, PolicyError> {
        check_f64("min_quality", s.min_quality, 0.0, 1.0)?;
        check_min("min_samples", s.min_samples, 1)?;
        check_f64("relative_margin", s.relative_margin, 0.0, 1.0)?;
        check_f64("hysteresis", s.hysteresis, 0.0, 0.5)?;
        check_share("probe_share", s.probe_share)?;
        Ok(s)
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

impl GateReason {
    pub fn as_str(self) -> &'static str {
        match self {
            GateReason::Disabled => "disabled",
            GateReason::InsufficientSamples => "insufficient_samples",
            GateReason::Healthy => "healthy",
            GateReason::BelowThreshold => "below_threshold",
            GateReason::BelowPerplexity => "below_perplexity",
        }
    }
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

impl GateStatus {
    /// Whether a request that would go to LightRAG may, given a roll in [0, 1): always when
    /// open, with probability `probe_share` when closed.
    pub fn admit(&self, roll: f64) -> bool {
        !self.closed || roll < self.probe_share
    }
}

/// Evaluates the gate. `was_closed` is the previous verdict (for hysteresis); pass `false`
/// the first time.
pub fn evaluate(
    lightrag: &Stats,
    perplexity: &Stats,
    settings: &GateSettings,
    was_closed: bool,
) -> GateStatus {
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

/// The gate with its memory: [`evaluate`] plus the previous verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityGate {
    settings: GateSettings,
    last: Option<GateStatus>,
}

impl QualityGate {
    pub fn new(settings: GateSettings) -> QualityGate {
        QualityGate {
            settings,
            last: None,
        }
    }

    pub fn settings(&self) -> &GateSettings {
        &self.settings
    }

    /// Whether the last verdict was closed.
    pub fn is_closed(&self) -> bool {
        self.last.is_some_and(|s| s.closed)
    }

    /// The last verdict, if any.
    pub fn status(&self) -> Option<GateStatus> {
        self.last
    }

    /// Re-evaluates on fresh window totals and remembers the verdict.
    pub fn update(&mut self, lightrag: &Stats, perplexity: &Stats) -> GateStatus {
        let s = evaluate(lightrag, perplexity, &self.settings, self.is_closed());
        self.last = Some(s);
        s
    }

    /// Whether a would-be LightRAG request may go there (see [`GateStatus::admit`]).
    pub fn admit(&self, roll: f64) -> bool {
        self.last.is_none_or(|s| s.admit(roll))
    }
}
