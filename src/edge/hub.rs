//! The state hub as a Durable Object (`STATE_BACKEND=durable_object`;
//! docs/architecture.md#state-backends): the class [`StateHub`] the Worker exports, and
//! [`HubClient`], the Worker's side of it.
//!
//! Why a thin shell: what the hub answers — reads, writes with expiry, lists, the controller's
//! tick next to the data — is `core::hub::serve`, which the fleet simulation runs too. The class
//! only parses a [`HubRequest`] from the request body, answers it over its storage
//! ([`HubStorage`]) with the clock read here, and sends the [`HubResponse`] back as JSON. Bad
//! input is a 400 with a `failed` answer naming the problem, never a panic. There is one
//! object, named [`HUB_OBJECT_NAME`]: every isolate of every location talks to it.

use super::hub_storage::HubStorage;
use super::isolate::{now_ms, read_vars};
use super::store::Store;
use crate::core::backend::{HUB_BINDING, HUB_OBJECT_NAME};
use crate::core::config;
use crate::core::hub::{serve, Hub, HubMemory, HubRequest, HubResponse};
use crate::core::store::{self, OverridesDoc, StateStore, CONFIG_KEY};
use wasm_bindgen::JsValue;
use worker::{durable_object, DurableObject, Env, Method, Request, Response, State};

/// Largest request body the hub accepts (a metrics flush is a few KB; a refresh names 6 keys).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The Durable Object class (wrangler.toml `class_name = "StateHub"`).
#[durable_object(fetch)]
pub struct StateHub {
    state: State,
    env: Env,
    /// The vars' config, loaded once per object instance: `serve` takes one with every request,
    /// but only the tick and fleet reports read it, and they load their own (with the stored
    /// overrides).
    vars_config: config::Config,
    /// The fleet's breakers (`core::breaker::fleet`), kept while the object stays in memory.
    memory: HubMemory,
}

impl DurableObject for StateHub {
    fn new(state: State, env: Env) -> Self {
        let vars_config = config::load(&read_vars(&env), None, 0).config;
        StateHub {
            state,
            env,
            vars_config,
            memory: HubMemory::default(),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        if req.method() != Method::Post {
            return answer(
                405,
                &failed("the state hub answers POST with a JSON hub request"),
            );
        }
        let body = match req.text().await {
            Ok(b) => b,
            Err(e) => return answer(400, &failed(&format!("unreadable body: {e}"))),
        };
        if body.len() > MAX_BODY_BYTES {
            return answer(
                413,
                &failed(&format!(
                    "hub request of {} bytes is over {MAX_BODY_BYTES}",
                    body.len()
                )),
            );
        }
        let hub_req: HubRequest = match crate::core::json::from_text(&body) {
            Ok(r) => r,
            Err(e) => {
                return answer(
                    400,
                    &failed(&format!(
                        "not a hub request ({e}); expected {{\"op\":\"get\"|\"put\"|\"list\"|\"tick\"|\"report\", …}}"
                    )),
                )
            }
        };
        let now = now_ms();
        // As a `Store`, so that `serve` and the controller's tick are the same compiled code
        // as the Worker's (one instantiation of each generic over the store: bundle size).
        let store = Store::Local(HubStorage {
            storage: self.state.storage(),
            now_ms: now,
        });
        let tick_config = match &hub_req {
            HubRequest::Tick | HubRequest::Report { .. } => Some(self.tick_config(&store).await),
            _ => None,
        };
        let out = serve(
            &store,
            hub_req,
            &Hub {
                now_ms: now,
                roll: js_sys::Math::random(),
                memory: &self.memory,
                config: tick_config.as_ref().unwrap_or(&self.vars_config),
            },
        )
        .await;
        answer(200, &out)
    }
}

impl StateHub {
    /// The config the controller's tick runs with: the Worker's variables with the overrides
    /// stored in the hub, as the Worker's own cron would load them (`core::fleet`).
    async fn tick_config(&self, store: &Store) -> config::Config {
        let doc: OverridesDoc = match store.get(CONFIG_KEY).await {
            Ok(Some(t)) => store::parse_value(CONFIG_KEY, &t).unwrap_or_else(|w| {
                worker::console_error!("{w}");
                OverridesDoc::default()
            }),
            Ok(None) => OverridesDoc::default(),
            Err(e) => {
                worker::console_error!("{e}");
                OverridesDoc::default()
            }
        };
        config::load(&read_vars(&self.env), Some(&doc.overrides), doc.version).config
    }
}

fn failed(message: &str) -> HubResponse {
    HubResponse::Failed {
        message: message.to_string(),
    }
}

fn answer(status: u16, r: &HubResponse) -> worker::Result<Response> {
    let text = serde_json::to_string(r)
        .unwrap_or_else(|_| "{\"failed\":{\"message\":\"unserialisable answer\"}}".to_string());
    let resp = Response::ok(text)?.with_status(status);
    resp.headers().set("content-type", "application/json")?;
    Ok(resp)
}

/// The Worker's handle on the hub: every call is one request to the one object.
pub struct HubClient {
    stub: worker::Stub,
}

impl HubClient {
    /// The hub, when the binding exists.
    pub fn open(env: &Env) -> Option<HubClient> {
        let ns = env.durable_object(HUB_BINDING).ok()?;
        let stub = ns.get_by_name(HUB_OBJECT_NAME).ok()?;
        Some(HubClient { stub })
    }

    /// One request; a failure of the call itself comes back as [`HubResponse::Failed`].
    pub async fn request(&self, req: &HubRequest) -> HubResponse {
        match self.try_request(req).await {
            Ok(r) => r,
            Err(message) => HubResponse::Failed { message },
        }
    }

    async fn try_request(&self, req: &HubRequest) -> Result<HubResponse, String> {
        let body = serde_json::to_string(req).map_err(|e| e.to_string())?;
        // web_sys's RequestInit: `worker::RequestInit` links its `cf` serialisation (~13 KB).
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_body(&JsValue::from_str(&body));
        let r = web_sys::Request::new_with_str_and_init("https://state-hub.internal/", &init)
            .map(Request::from)
            .map_err(|e| worker::Error::from(e).to_string())?;
        let mut resp = self
            .stub
            .fetch_with_request(r)
            .await
            .map_err(|e| format!("state hub unreachable: {e}"))?;
        let status = resp.status_code();
        let text = resp
            .text()
            .await
            .map_err(|e| format!("state hub answer unreadable: {e}"))?;
        crate::core::json::from_text(&text).map_err(|e| {
            format!(
                "state hub answered {status} with an unparsable body ({e}): {}",
                text.chars().take(200).collect::<String>()
            )
        })
    }
}
