//! The Perplexity models clients may ask for (`LIGHTRAG_ALLOWED_MODELS`).
//!
//! Why: the chat route forwards to Perplexity with the router's key, and models differ in price
//! by an order of magnitude; passing any client-chosen `model` through makes the router a way to
//! spend the key on whatever a caller likes. A request naming a model outside the list is
//! refused with 400 naming the allowed ones — not mapped to the default, because a silent
//! substitution would hide a client's misconfiguration and answer with a model it did not ask
//! for. A request naming no model gets the default ([`resolve`]). The check runs for every
//! chat request, whichever upstream the routing picks, so a client's error does not depend on
//! its cohort.

use crate::core::wire::perplexity::DEFAULT_MODEL;
use std::collections::BTreeSet;
use std::fmt;

/// The default allow list: the one model in use.
pub fn default_allowed() -> BTreeSet<String> {
    BTreeSet::from([DEFAULT_MODEL.to_string()])
}

/// A model outside the allow list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRefused {
    pub requested: String,
    pub allowed: Vec<String>,
}

impl fmt::Display for ModelRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.requested.chars().take(80).collect();
        write!(
            f,
            "model `{}` is not allowed; use one of: {} (LIGHTRAG_ALLOWED_MODELS)",
            shown.escape_default(),
            self.allowed.join(", ")
        )
    }
}

/// The model to send upstream: the requested one when it is allowed; with none requested,
/// [`DEFAULT_MODEL`] when allowed, else the first allowed name.
pub fn resolve(
    allowed: &BTreeSet<String>,
    requested: Option<&str>,
) -> Result<String, ModelRefused> {
    match requested.map(str::trim).filter(|m| !m.is_empty()) {
        Some(m) if allowed.contains(m) => Ok(m.to_string()),
        Some(m) => Err(ModelRefused {
            requested: m.to_string(),
            allowed: allowed.iter().cloned().collect(),
        }),
        None if allowed.contains(DEFAULT_MODEL) || allowed.is_empty() => {
            Ok(DEFAULT_MODEL.to_string())
        }
        None => Ok(allowed.iter().next().cloned().unwrap_or_default()),
    }
}
