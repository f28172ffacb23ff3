//! `STATE_BACKEND`: where the router's shared state lives — Workers KV (per-isolate keys) or
//! the state hub, one Durable Object (`core::hub`; docs/architecture.md#state-backends).
//!
//! Why a deployment variable and never a runtime override: the backend decides where the
//! overrides themselves are stored, so an override stored in one backend cannot switch to the
//! other; and switching it moves the fleet onto a store holding none of the other's state
//! (breakers, rollout, controller ledger). It is set in `wrangler.toml` per environment, next
//! to the binding it needs.

/// The Durable Object binding the hub backend uses (wrangler.toml `[[durable_objects.bindings]]`).
pub const HUB_BINDING: &str = "STATE_HUB";
/// The Durable Object class (wrangler.toml `class_name`, `[[migrations]]`).
pub const HUB_CLASS: &str = "StateHub";
/// The one object every router talks to (`idFromName`).
pub const HUB_OBJECT_NAME: &str = "router-state";

/// Which store holds the shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateBackend {
    /// Workers KV, binding `ROUTER_STATE` (the default).
    #[default]
    Kv,
    /// The state hub: the Durable Object bound as [`HUB_BINDING`].
    DurableObject,
}

impl StateBackend {
    /// `kv` or `durable_object` (case and surrounding space ignored; `do` and `hub` accepted).
    pub fn parse(s: &str) -> Option<StateBackend> {
        match s.trim().to_ascii_lowercase().as_str() {
            "kv" => Some(StateBackend::Kv),
            "durable_object" | "do" | "hub" => Some(StateBackend::DurableObject),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StateBackend::Kv => "kv",
            StateBackend::DurableObject => "durable_object",
        }
    }
}

/// The backend a Worker runs on, and why, as `/admin/status` shows it (`state_backend`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BackendChoice {
    /// The backend in use.
    pub selected: StateBackend,
    /// `STATE_BACKEND` as set (absent: unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// Why the requested backend is not the one in use, if it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// What the Worker has: the variable's value and whether the hub binding exists.
#[derive(Debug, Clone, Copy)]
pub struct BackendFacts<'a> {
    pub requested: Option<&'a str>,
    pub hub_bound: bool,
}

/// Chooses the backend: an invalid value or the hub without its binding falls back to KV, with
/// a warning naming what to fix.
pub fn choose(f: &BackendFacts<'_>) -> BackendChoice {
    let requested = f.requested.map(str::to_string);
    let Some(raw) = f.requested.filter(|s| !s.trim().is_empty()) else {
        return BackendChoice {
            selected: StateBackend::Kv,
            requested,
            warning: None,
        };
    };
    match StateBackend::parse(raw) {
        Some(StateBackend::Kv) => BackendChoice {
            selected: StateBackend::Kv,
            requested,
            warning: None,
        },
        Some(StateBackend::DurableObject) if f.hub_bound => BackendChoice {
            selected: StateBackend::DurableObject,
            requested,
            warning: None,
        },
        Some(StateBackend::DurableObject) => BackendChoice {
            selected: StateBackend::Kv,
            requested,
            warning: Some(format!(
                "STATE_BACKEND is durable_object but the Durable Object binding `{HUB_BINDING}` (class {HUB_CLASS}) is missing; using Workers KV"
            )),
        },
        None => BackendChoice {
            selected: StateBackend::Kv,
            requested,
            warning: Some(format!(
                "STATE_BACKEND `{}` is not kv or durable_object; using Workers KV",
                raw.chars().take(64).collect::<String>()
            )),
        },
    }
}
