//! The KV namespace behind [`StateStore`], counting every operation (reads, writes per key,
//! lists) so the status API, `/metrics` and the workerd tests can prove the KV budget, and
//! holding a write back until a second has passed since the key's previous write (KV's limit),
//! whatever the caller's timing.

use crate::core::store::{ListPage, OpCounts, StateStore, StoreError, StoreOp};
use std::cell::RefCell;
use worker::{Env, KvStore};

thread_local! {
    static OPS: RefCell<OpCounts> = RefCell::new(OpCounts::default());
    /// The binding, looked up once per isolate: `env.kv()` reads the namespace's five methods
    /// out of JS on every call, and a request opens the store twice. Bindings are the same
    /// object for the isolate's life, so keeping it across requests is safe.
    static STORE: RefCell<Option<Option<Kv>>> = const { RefCell::new(None) };
}

/// This isolate's KV operation counters.
pub fn ops() -> OpCounts {
    OPS.with(|o| o.borrow().clone())
}

pub(super) fn count(f: impl FnOnce(&mut OpCounts)) {
    OPS.with(|o| f(&mut o.borrow_mut()));
}

/// The `ROUTER_STATE` binding.
#[derive(Clone)]
pub struct Kv {
    store: KvStore,
}

impl Kv {
    pub fn open(env: &Env) -> Option<Kv> {
        if let Some(known) = STORE.with(|s| s.borrow().clone()) {
            return known;
        }
        let kv = env.kv(super::KV_BINDING).ok().map(|store| Kv { store });
        STORE.with(|s| *s.borrow_mut() = Some(kv.clone()));
        kv
    }
}

impl StateStore for Kv {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        count(|o| o.reads += 1);
        self.store
            .get(key)
            .text()
            .await
            .map_err(|e| StoreError::failed(StoreOp::Read, key, e))
    }

    /// All at once: a refresh reads six keys, and a cold isolate's first requests wait for
    /// its first refresh (`STATE_FIRST_LOAD_WAIT_MS`), so the load takes one KV round trip
    /// instead of six in a row. The same reads, counted the same.
    async fn get_many(&self, keys: &[String]) -> Vec<Result<Option<String>, StoreError>> {
        futures_util::future::join_all(keys.iter().map(|k| self.get(k))).await
    }

    async fn put(
        &self,
        key: &str,
        value: &str,
        ttl_seconds: Option<u64>,
    ) -> Result<(), StoreError> {
        let now = super::isolate::now_ms();
        let mut wait_ms = 0;
        count(|o| wait_ms = o.book_write(key, now));
        if wait_ms > 0 {
            worker::Delay::from(std::time::Duration::from_millis(wait_ms)).await;
        }
        let failed = |e: worker::kv::KvError| StoreError::failed(StoreOp::Write, key, e);
        let mut b = self.store.put(key, value).map_err(failed)?;
        if let Some(ttl) = ttl_seconds {
            b = b.expiration_ttl(ttl);
        }
        b.execute().await.map_err(failed)
    }

    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        count(|o| o.lists += 1);
        let mut b = self
            .store
            .list()
            .prefix(prefix.to_string())
            .limit(u64::from(limit));
        if let Some(c) = cursor {
            b = b.cursor(c.to_string());
        }
        let r = b
            .execute()
            .await
            .map_err(|e| StoreError::failed(StoreOp::List, prefix, e))?;
        Ok(ListPage {
            keys: r.keys.into_iter().map(|k| k.name).collect(),
            cursor: r.cursor.filter(|c| !c.is_empty()),
            complete: r.list_complete,
        })
    }
}
