//! `LIGHTRAG_ROLLOUT_WEBHOOK_URL`: one JSON POST per rollout transition, sent from `wait_until`
//! after the controller's tick has written its state. A failure (network, non-2xx, timeout) is
//! logged and never retried or waited for: the rollout does not depend on its observers.

use super::fetch::Head;
use super::isolate::with;
use crate::core::guard::deployment::webhook_allowed;
use crate::core::rollout::Transition;
use worker::{console_error, console_log};

/// How long one POST may take.
const TIMEOUT_MS: u64 = 10_000;

/// The configured URL, if a webhook may be sent there.
pub fn target() -> Option<String> {
    let (url, deployment) = with(|i| {
        (
            i.config().rollout_webhook_url.clone(),
            i.config().deployment,
        )
    })?;
    let url = url?;
    match webhook_allowed(deployment, &url) {
        Ok(()) => Some(url),
        Err(e) => {
            console_error!("rollout webhook not sent: {e}");
            None
        }
    }
}

/// POSTs each transition in order (awaited one after the other, so a receiver sees them in the
/// order they happened). Meant to run under `wait_until`.
pub async fn send_all(url: String, transitions: Vec<Transition>) {
    for t in &transitions {
        send(&url, t).await;
    }
}

async fn send(url: &str, t: &Transition) {
    let body = t.webhook_payload().to_string();
    // The runtime's fetch directly (`super::fetch`): `worker::Fetch` and `worker::RequestInit`
    // link their `cf` serialisation (~13 KB of wasm) for this one call. Not aborted after the
    // timeout (no controller), as before.
    let post = super::fetch::Post {
        url,
        headers: &[
            ("content-type", "application/json"),
            ("user-agent", "cmo-edge-router rollout webhook"),
        ],
        body: &body,
        controller: None,
        client: None,
    };
    let by_ms = super::isolate::now_ms().saturating_add(TIMEOUT_MS);
    match super::fetch::send(&post, by_ms).await {
        Head::Arrived(resp) => {
            let status = resp.status();
            if (200..300).contains(&status) {
                console_log!("rollout webhook: {} sent ({status})", t.event.as_str());
            } else {
                console_error!(
                    "rollout webhook: {} answered {status} for {}",
                    url,
                    t.event.as_str()
                );
            }
        }
        Head::Failed(e) => {
            console_error!(
                "rollout webhook: {url} failed for {}: {e}",
                t.event.as_str()
            );
        }
        Head::Late => {
            console_error!(
                "rollout webhook: {url} did not answer within {TIMEOUT_MS} ms for {}",
                t.event.as_str()
            );
        }
    }
}
