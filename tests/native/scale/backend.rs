//! The two state backends the fleet can run on, behind `core::store::StateStore`: Workers KV
//! with per-isolate metric keys, and the Durable Object hub (`core::hub`).

use super::hub::SimHub;
use super::kv::SimKv;
use cmo_edge_router::core::config::Config;

/// Which backend a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Kv,
    Hub,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Kv => "KV",
            BackendKind::Hub => "DO",
        }
    }
}

pub enum Backend {
    Kv(SimKv),
    /// Boxed: it carries the object's config.
    Hub(Box<SimHub>),
}

impl Backend {
    /// `config`: the hub's own (the Durable Object loads the Worker's variables).
    pub fn new(kind: BackendKind, start_ms: u64, seed: u64, config: &Config) -> Backend {
        match kind {
            BackendKind::Kv => Backend::Kv(SimKv::new(start_ms, seed)),
            BackendKind::Hub => Backend::Hub(Box::new(SimHub::new(start_ms, config.clone()))),
        }
    }

    /// The value of `key` a reader with no delay sees (the perfect-data controller, the report),
    /// without counting an operation.
    pub fn peek(&self, key: &str, now_ms: u64) -> Option<String> {
        match self {
            Backend::Kv(kv) => kv.latest(key, now_ms),
            Backend::Hub(h) => h.peek(key, now_ms),
        }
    }
}

/// Runs `$body` with `$s` bound to one invocation's store at `$loc` (KV: a view with its own
/// 1,000-operation count; the hub: a client whose every call is one request).
macro_rules! with_store {
    ($backend:expr, $loc:expr, $now:expr, |$s:ident| $body:expr) => {
        match $backend {
            $crate::scale::backend::Backend::Kv(kv) => {
                let $s = &kv.view($loc, $now);
                $body
            }
            $crate::scale::backend::Backend::Hub(h) => {
                let $s = &h.client($now);
                $body
            }
        }
    };
}
pub(crate) use with_store;
