//! The rollout's three error types, one per audience.
//!
//! # Design
//! - [`PlanError`]: an operator's plan was refused. It names the field as the operator wrote it
//!   (`increment`, `stages[2].target_percentage`) so the admin API can answer 422 with a message
//!   that says what to fix.
//! - [`OpError`]: an operation that the current phase does not allow (approve while not
//!   awaiting approval, pause while paused, …). The admin API answers 409: the request was
//!   well-formed, the rollout was not in a state to take it.
//! - [`StateError`]: a stored document (state or command) that cannot be trusted. The edge logs
//!   it and reports it in the status API; it never turns into a default state, because a
//!   default would silently forget a rollback.

use crate::core::rollout::operation::OpKind;
use crate::core::rollout::phase::PhaseName;
use std::fmt;

/// A refused plan: which field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// The field as it appears in the request, e.g. `increment` or `stages[2].min_requests`.
    pub field: String,
    pub message: String,
}

impl PlanError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> PlanError {
        PlanError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for PlanError {}

/// An operation the current phase does not allow (HTTP 409).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError {
    pub op: OpKind,
    /// The phase the rollout was in.
    pub phase: PhaseName,
    pub message: String,
}

impl OpError {
    pub(crate) fn wrong_phase(op: OpKind, phase: PhaseName, wanted: &str) -> OpError {
        OpError {
            op,
            phase,
            message: format!(
                "cannot {} a rollout that is {}; {wanted}",
                op.as_str(),
                phase.as_str()
            ),
        }
    }

    /// The HTTP status the admin API answers with.
    pub fn http_status(&self) -> u16 {
        409
    }
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OpError {}

/// A stored document that failed to parse or to validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError {
    pub message: String,
}

impl StateError {
    pub fn new(message: impl Into<String>) -> StateError {
        StateError {
            message: message.into(),
        }
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StateError {}
