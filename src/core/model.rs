//! The router's small shared vocabulary: which upstream, which A/B arm, why a request was
//! routed the way it was, and what the LightRAG breaker says about a request.
//!
//! Why one module: these words cross every layer — the decision produces them, the breaker and
//! the metrics key on them, the wire formats, the admin API, the preview page and the spec files
//! spell them out. Each is defined once here, travels as an enum to the serde boundary, and gets
//! its JSON / header spelling from `rename` (or, for [`Reason`], from one `Display`), so no
//! layer turns them into strings by hand and no spelling can drift.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// The two upstreams the router chooses between (`"lightrag"`, `"perplexity"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Upstream {
    Lightrag,
    Perplexity,
}

impl Upstream {
    pub const ALL: [Upstream; 2] = [Upstream::Lightrag, Upstream::Perplexity];

    pub fn as_str(self) -> &'static str {
        match self {
            Upstream::Lightrag => "lightrag",
            Upstream::Perplexity => "perplexity",
        }
    }

    /// Parses `lightrag` / `perplexity`, case-insensitively and ignoring surrounding spaces.
    pub fn parse(s: &str) -> Option<Upstream> {
        let s = s.trim();
        Upstream::ALL
            .into_iter()
            .find(|u| u.as_str().eq_ignore_ascii_case(s))
    }

    /// The other side, for fallback.
    pub fn other(self) -> Upstream {
        match self {
            Upstream::Lightrag => Upstream::Perplexity,
            Upstream::Perplexity => Upstream::Lightrag,
        }
    }
}

impl fmt::Display for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The A/B arm of a request (`"treatment"`, `"control"`, `"none"`).
///
/// Treatment is the user's assignment by hash when `pos < R`, control otherwise; `None` is
/// traffic kept out of the experiment (disabled, forced, rule-routed, no stickiness key). A
/// request keeps its assigned arm even when a safety step or a fallback changed who served it
/// (intention to treat, see [`crate::core::decide`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arm {
    Treatment,
    Control,
    None,
}

impl Arm {
    pub const ALL: [Arm; 3] = [Arm::Treatment, Arm::Control, Arm::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Treatment => "treatment",
            Arm::Control => "control",
            Arm::None => "none",
        }
    }

    /// Parses the serialized name exactly.
    pub fn parse(s: &str) -> Option<Arm> {
        Arm::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Arm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the decision went the way it did. Serializes as `disabled`, `forced`, `rollback`,
/// `circuit_open`, `quality_gate`, `rule:<name>`, `rollout_in`, `rollout_out` (the
/// `X-Route-Reason` header carries the same text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Disabled,
    Forced,
    Rollback,
    CircuitOpen,
    QualityGate,
    Rule(String),
    RolloutIn,
    RolloutOut,
}

impl Reason {
    /// The reason's name; for rules, `rule` (use `Display` for `rule:<name>`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Disabled => "disabled",
            Reason::Forced => "forced",
            Reason::Rollback => "rollback",
            Reason::CircuitOpen => "circuit_open",
            Reason::QualityGate => "quality_gate",
            Reason::Rule(_) => "rule",
            Reason::RolloutIn => "rollout_in",
            Reason::RolloutOut => "rollout_out",
        }
    }

    /// Parses the serialized form.
    pub fn parse(s: &str) -> Option<Reason> {
        Some(match s {
            "disabled" => Reason::Disabled,
            "forced" => Reason::Forced,
            "rollback" => Reason::Rollback,
            "circuit_open" => Reason::CircuitOpen,
            "quality_gate" => Reason::QualityGate,
            "rollout_in" => Reason::RolloutIn,
            "rollout_out" => Reason::RolloutOut,
            _ => Reason::Rule(s.strip_prefix("rule:")?.to_string()),
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Rule(name) => write!(f, "rule:{name}"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Reason, D::Error> {
        let s = String::deserialize(d)?;
        Reason::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("unknown reason {s:?}")))
    }
}

/// What LightRAG's breaker says about one request: its state and, when half-open, whether this
/// request got a probe permit (`"closed"`, `"open"`, `"half_open_probe"`,
/// `"half_open_reject"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerView {
    #[default]
    Closed,
    Open,
    /// Half-open, and this request was admitted as a probe.
    HalfOpenProbe,
    /// Half-open, and this request was not admitted.
    HalfOpenReject,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_round_trip_through_serde() {
        for u in Upstream::ALL {
            assert_eq!(serde_json::to_value(u).unwrap(), json!(u.as_str()));
            assert_eq!(
                Upstream::parse(&format!(" {} ", u.as_str().to_uppercase())),
                Some(u)
            );
        }
        for a in Arm::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), json!(a.as_str()));
            assert_eq!(Arm::parse(a.as_str()), Some(a));
        }
        for r in [
            Reason::Disabled,
            Reason::Forced,
            Reason::Rollback,
            Reason::CircuitOpen,
            Reason::QualityGate,
            Reason::Rule("news".into()),
            Reason::RolloutIn,
            Reason::RolloutOut,
        ] {
            let s = serde_json::to_value(&r).unwrap();
            assert_eq!(s, json!(r.to_string()));
            assert_eq!(serde_json::from_value::<Reason>(s).unwrap(), r);
        }
        assert_eq!(Reason::Rule("x".into()).to_string(), "rule:x");
        assert_eq!(Reason::parse("nope"), None);
        assert_eq!(
            serde_json::to_value(BreakerView::HalfOpenReject).unwrap(),
            json!("half_open_reject")
        );
    }

    #[test]
    fn enums_key_json_maps_by_their_names() {
        let m: crate::core::sorted_map::SortedMap<Reason, u64> =
            [(Reason::Rule("a".into()), 1), (Reason::RolloutIn, 2)].into();
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"rule:a": 1, "rollout_in": 2})
        );
    }
}
