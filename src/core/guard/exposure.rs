//! Which routing detail leaves the router, and to whom.
//!
//! Why: the cohort hash is public (docs/architecture.md#cohort-hashing) and its salt used to be
//! in `wrangler.toml`; a response that says a user's exact position, cohort and arm lets anyone
//! confirm the salt and pick ids in the LightRAG cohort to aim failures at its breaker. Those
//! headers (and the position in the `routing` body object and OFREP metadata) go to requests
//! bearing the admin token only, or to everyone when `ROUTER_EXPOSE_ROUTING_DETAIL` is on (a
//! staging / debugging switch, off by default). `X-Route-Upstream`, `X-Route-Reason` and
//! `X-Route-Fallback` stay public: the chat app shows which service answered and operators
//! debug fallbacks from client reports, and none of them gives a position.

/// Headers only operators see.
pub const OPERATOR_HEADERS: [&str; 4] = [
    "x-route-cohort",
    "x-route-position",
    "x-route-arm",
    "x-route-config-version",
];

/// Whether this response may carry the operator-only routing detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingDetail {
    Shown,
    Hidden,
}

impl RoutingDetail {
    /// Shown to admin-token requests, or to everyone when the variable says so.
    pub fn for_request(admin: bool, expose_to_all: bool) -> RoutingDetail {
        if admin || expose_to_all {
            RoutingDetail::Shown
        } else {
            RoutingDetail::Hidden
        }
    }

    pub fn shown(self) -> bool {
        self == RoutingDetail::Shown
    }
}
