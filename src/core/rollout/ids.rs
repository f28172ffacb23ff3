//! Rollout and command identifiers, validated once.
//!
//! Why validated: both end up in KV keys, in the state document and in webhook payloads, and
//! the edge generates them from random bytes; a stored document with an empty or enormous id
//! is corrupt, and saying so beats carrying it around.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest accepted id.
pub const MAX_ID_LEN: usize = 64;

fn check(kind: &str, s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_ID_LEN {
        return Err(format!(
            "{kind} must be 1 to {MAX_ID_LEN} characters, got {}",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')))
    {
        return Err(format!(
            "{kind} may hold only ASCII letters, digits and - _ . :, got {c:?}"
        ));
    }
    Ok(())
}

macro_rules! id_type {
    ($name:ident, $kind:literal) => {
        #[doc = concat!("A validated ", $kind, ": 1–64 ASCII letters, digits, `-`, `_`, `.`, `:`.")]
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn try_new(s: impl Into<String>) -> Result<$name, String> {
                let s = s.into();
                check($kind, &s)?;
                Ok($name(s))
            }
            /// A literal known to be valid (no check; for placeholders in code).
            #[allow(dead_code)]
            pub(crate) fn trusted(s: &'static str) -> $name {
                $name(s.to_string())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $name::try_new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(RolloutId, "rollout_id");
id_type!(CommandId, "command id");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(RolloutId::try_new("r-2026-01-01:abc_1.2").is_ok());
        assert!(RolloutId::try_new("").is_err());
        assert!(RolloutId::try_new("a".repeat(65)).is_err());
        assert!(RolloutId::try_new("a b").is_err());
        assert!(CommandId::try_new("é").is_err());
        let bad: Result<RolloutId, _> = serde_json::from_str("\"\"");
        assert!(bad.is_err());
    }
}
