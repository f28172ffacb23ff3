//! The two upstreams the router chooses between. One small shared type so every module
//! (routing, breaker, metrics, wire formats) names them the same way, and so their JSON
//! spelling (`"lightrag"`, `"perplexity"`) is fixed in one place.

use serde::{Deserialize, Serialize};
use std::fmt;

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
        match s.trim().to_ascii_lowercase().as_str() {
            "lightrag" => Some(Upstream::Lightrag),
            "perplexity" => Some(Upstream::Perplexity),
            _ => None,
        }
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
