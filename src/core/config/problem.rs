//! What went wrong with a configuration input, in the shape the status API, the admin API's 422
//! and the preview page show.

use serde::Serialize;

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Vars,
    Override,
    /// A wrangler secret (or a binding) that is missing: reported, its value never shown.
    Secrets,
}

/// Whether a value was refused (`error`: the safe default applies instead) or accepted in a form
/// that was translated (`note`: e.g. the previous service's rule object), so the operator can
/// see exactly what the router made of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Note,
}

impl Severity {
    fn is_error(&self) -> bool {
        *self == Severity::Error
    }
}

/// One rejected (or translated) value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub variable: String,
    /// The offending value as text (truncated; secrets redacted).
    pub value: String,
    /// What was wrong and what is accepted.
    pub message: String,
    pub source: Source,
    /// Omitted for errors (the usual case); `"note"` for a translated value.
    #[serde(skip_serializing_if = "Severity::is_error")]
    pub severity: Severity,
    /// For `LIGHTRAG_ROUTING_RULES`: the index of the rejected rule.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
}

impl Problem {
    /// `VARIABLE` or `VARIABLE[index]`: a short key used by spec files and logs.
    pub fn key(&self) -> String {
        match self.index {
            Some(i) => format!("{}[{i}]", self.variable),
            None => self.variable.clone(),
        }
    }

    /// Whether the value was refused (as opposed to a note about a translation).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}
