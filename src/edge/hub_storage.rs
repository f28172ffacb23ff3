//! The state hub's own storage behind [`StateStore`]: the Durable Object's key-value storage,
//! with the expiry Workers KV would give (`core::hub::Stored`).
//!
//! Why: Durable Object storage has no expiry of its own, and the KV layout (`core::store`)
//! relies on one — a dead isolate's metric flush and a queued operator command disappear on
//! their own. Every value is stored as a [`Stored`] JSON text with its expiry; a read or list
//! that meets an expired value treats it as absent and deletes it, as the simulation's hub
//! does (`tests/native/scale/hub.rs`), so both run `core::hub::serve` over the same rules.

use crate::core::hub::Stored;
use crate::core::store::{ListPage, StateStore, StoreError, StoreOp};
use wasm_bindgen::JsValue;
use worker::{ListOptions, Storage};

/// The object's storage as one request at `now_ms` sees it.
pub struct HubStorage {
    pub storage: Storage,
    pub now_ms: u64,
}

impl HubStorage {
    /// The live value of one stored text (`None`: expired, or not a [`Stored`] document — a
    /// value this class did not write, which the layout's readers could not parse either).
    fn live(&self, key: &str, text: &str) -> Result<Option<String>, StoreError> {
        match crate::core::json::from_text::<Stored>(text) {
            Ok(s) if s.live(self.now_ms) => Ok(Some(s.value)),
            Ok(_) => Ok(None),
            Err(e) => Err(StoreError::Corrupt {
                key: key.to_string(),
                message: format!("not a hub value: {e}"),
            }),
        }
    }

    async fn forget(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        if let Err(e) = self.storage.delete_multiple(keys).await {
            worker::console_error!("hub: deleting expired keys failed: {e}");
        }
    }
}

impl StateStore for HubStorage {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let text: Option<String> = self
            .storage
            .get(key)
            .await
            .map_err(|e| StoreError::failed(StoreOp::Read, key, e))?;
        let Some(text) = text else {
            return Ok(None);
        };
        let v = self.live(key, &text)?;
        if v.is_none() {
            self.forget(vec![key.to_string()]).await;
        }
        Ok(v)
    }

    async fn get_many(&self, keys: &[String]) -> Vec<Result<Option<String>, StoreError>> {
        let map = match self
            .storage
            .get_multiple(keys.iter().map(String::as_str).collect())
            .await
        {
            Ok(m) => m,
            Err(e) => {
                return keys
                    .iter()
                    .map(|k| Err(StoreError::failed(StoreOp::Read, k, &e)))
                    .collect()
            }
        };
        let mut expired = Vec::new();
        let out = keys
            .iter()
            .map(|k| {
                let Some(text) = map.get(&JsValue::from_str(k)).as_string() else {
                    return Ok(None);
                };
                let v = self.live(k, &text)?;
                if v.is_none() {
                    expired.push(k.clone());
                }
                Ok(v)
            })
            .collect();
        self.forget(expired).await;
        out
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StoreError> {
        let text = serde_json::to_string(&Stored::new(value, ttl_seconds, self.now_ms))
            .map_err(|e| StoreError::failed(StoreOp::Write, key, e))?;
        self.storage
            .put_raw(key, JsValue::from_str(&text))
            .await
            .map_err(|e| StoreError::failed(StoreOp::Write, key, e))
    }

    /// Keys under `prefix` after `cursor` (the last key of the previous page), live ones only.
    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        let limit = limit.max(1) as usize;
        // `start` is inclusive: one more for the cursor's own key, one to see whether more follow.
        let raw_limit = limit + 2;
        let mut opts = ListOptions::new().prefix(prefix).limit(raw_limit);
        if let Some(c) = cursor {
            opts = opts.start(c);
        }
        let map = self
            .storage
            .list_with_options(opts)
            .await
            .map_err(|e| StoreError::failed(StoreOp::List, prefix, e))?;
        let mut entries: Vec<(String, Option<String>)> = Vec::new();
        map.for_each(&mut |v, k| {
            if let Some(k) = k.as_string() {
                entries.push((k, v.as_string()));
            }
        });
        let seen = entries.len();
        let mut keys = Vec::new();
        let mut expired = Vec::new();
        let mut last_seen: Option<String> = None;
        let mut full = false;
        for (k, text) in entries {
            if cursor.is_some_and(|c| k.as_str() <= c) {
                continue;
            }
            if keys.len() == limit {
                full = true;
                break;
            }
            last_seen = Some(k.clone());
            match text.as_deref().map(|t| self.live(&k, t)) {
                Some(Ok(Some(_))) => keys.push(k),
                Some(Ok(None)) => expired.push(k),
                // A value that is not ours is listed as a key; its reader reports it.
                _ => keys.push(k),
            }
        }
        self.forget(expired).await;
        let complete = !full && seen < raw_limit;
        let cursor = if complete {
            None
        } else if full {
            keys.last().cloned()
        } else {
            last_seen
        };
        Ok(ListPage {
            keys,
            cursor,
            complete,
        })
    }
}
