//! An in-memory [`StateStore`] for the native tests: a sorted map that counts operations the
//! way the Worker's KV wrapper does, so the KV budget rules can be checked without a runtime.

use cmo_edge_router::core::store::{ListPage, OpCounts, StateStore, StoreError, StoreOp};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// An in-memory [`StateStore`] for tests: a sorted map, with operation counters.
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub data: RefCell<BTreeMap<String, String>>,
    pub ops: RefCell<OpCounts>,
    /// Keys whose reads fail (as a KV outage or a limit would make them).
    pub failing_reads: RefCell<Vec<String>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&self, key: &str, value: &str) {
        self.data
            .borrow_mut()
            .insert(key.to_string(), value.to_string());
    }
    /// From now on, reading `key` fails.
    pub fn fail_reads_of(&self, key: &str) {
        self.failing_reads.borrow_mut().push(key.to_string());
    }
    /// Reads of every key succeed again.
    pub fn heal(&self) {
        self.failing_reads.borrow_mut().clear();
    }
    pub fn value(&self, key: &str) -> Option<String> {
        self.data.borrow().get(key).cloned()
    }
}

impl StateStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.ops.borrow_mut().reads += 1;
        if self.failing_reads.borrow().iter().any(|k| k == key) {
            return Err(StoreError::failed(StoreOp::Read, key, "injected outage"));
        }
        Ok(self.data.borrow().get(key).cloned())
    }
    async fn put(&self, key: &str, value: &str, _ttl: Option<u64>) -> Result<(), StoreError> {
        {
            let mut ops = self.ops.borrow_mut();
            ops.writes += 1;
            *ops.writes_by_key.entry(key.to_string()).or_default() += 1;
        }
        self.insert(key, value);
        Ok(())
    }
    async fn list(
        &self,
        prefix: &str,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<ListPage, StoreError> {
        self.ops.borrow_mut().lists += 1;
        let data = self.data.borrow();
        let mut keys: Vec<String> = data
            .keys()
            .filter(|k| k.starts_with(prefix))
            .filter(|k| cursor.is_none_or(|c| k.as_str() > c))
            .take(limit as usize + 1)
            .cloned()
            .collect();
        let complete = keys.len() <= limit as usize;
        keys.truncate(limit as usize);
        let cursor = if complete { None } else { keys.last().cloned() };
        Ok(ListPage {
            keys,
            cursor,
            complete,
        })
    }
}
