//! What a shard owns: the tools mapped to it, and its share of the in-flight budget.
//!
//! A shard's registry lives outside the shard actor (the actor's state only points at it),
//! so a shard restarted by its supervisor still owns the same tools, and registering needs
//! no message (executors are not serializable).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use neuroflow_kit::protocol::router::ToolSpec;
use tokio::sync::Semaphore;

use crate::metrics::ToolCounters;
use crate::pattern;
use crate::schema::Schema;
use crate::tool::ToolExec;

/// One registered tool.
pub(crate) struct Entry {
    pub spec: ToolSpec,
    pub schema: Schema,
    pub exec: Arc<dyn ToolExec>,
    pub counters: ToolCounters,
}

/// The part of a shard that outlives its incarnations.
pub(crate) struct ShardSlot {
    pub index: usize,
    tools: RwLock<HashMap<String, Arc<Entry>>>,
    /// Permits for calls running on this shard.
    pub in_flight: Arc<Semaphore>,
}

impl ShardSlot {
    pub fn new(index: usize, max_in_flight: usize) -> Self {
        Self {
            index,
            tools: RwLock::default(),
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
        }
    }

    // Writers only insert or remove whole entries, so a panic elsewhere cannot leave the
    // map half-updated: a poisoned lock is still consistent.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Entry>>> {
        self.tools.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Entry>>> {
        self.tools.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, name: &str) -> Option<Arc<Entry>> {
        self.read().get(name).cloned()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    pub fn insert(&self, entry: Arc<Entry>) {
        self.write().insert(entry.spec.name.clone(), entry);
    }

    pub fn remove(&self, name: &str) -> Option<Arc<Entry>> {
        self.write().remove(name)
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn entries(&self) -> Vec<Arc<Entry>> {
        self.read().values().cloned().collect()
    }

    pub fn specs_matching(&self, patterns: &[String], out: &mut Vec<ToolSpec>) {
        out.extend(
            self.read()
                .values()
                .filter(|e| pattern::matches_any(patterns, &e.spec.name))
                .map(|e| e.spec.clone()),
        );
    }
}
