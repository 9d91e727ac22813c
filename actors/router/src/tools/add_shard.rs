//! Adding a shard to a running router.

use std::sync::Arc;
use std::time::Duration;

use neuroflow_kit::supervisor::SupervisorHandle;

use super::{Tools, new_shard};
use crate::error::AddShardError;
use crate::hash::shard_of;

impl Tools {
    /// Starts one more shard under `supervisor` (the supervisor of the router's actors)
    /// and moves onto it the tools that now hash to it (about 1/(K+1) of them; no tool
    /// moves between old shards). Returns the new shard's index.
    pub async fn add_shard(
        &self,
        supervisor: &SupervisorHandle,
        timeout: Duration,
    ) -> Result<usize, AddShardError> {
        let index = self.shard_count();
        let (spec, shard) = new_shard(index, &self.inner.config);
        let name = spec.name().to_string();
        // Two adds at once both aim at `shard-{index}`: the supervisor refuses the second.
        supervisor.start_child(spec, timeout).await?;
        if !self.adopt(index, shard) {
            // Shards changed some other way meanwhile: do not leave this one running unused.
            let _ = supervisor.stop_child(&name, timeout).await;
            return Err(AddShardError::Concurrent);
        }
        Ok(index)
    }

    /// Makes the started `shard` shard number `index` and moves its tools onto it; false
    /// if the shard count is no longer `index`.
    fn adopt(&self, index: usize, shard: super::Shard) -> bool {
        let _writes = self.lock_writes();
        let old = self.shards();
        if old.len() != index {
            return false;
        }
        // Copy first, publish, then remove: a call resolved either way finds its tool (and
        // one that reaches an old shard after the removal is sent on by `call`).
        let mut moved = Vec::new();
        for (from, old_shard) in old.iter().enumerate() {
            for entry in old_shard.slot.entries() {
                if shard_of(&entry.spec.name, index + 1) == index {
                    moved.push((from, entry.spec.name.clone()));
                    shard.slot.insert(entry);
                }
            }
        }
        let mut all = Vec::clone(&old);
        all.push(shard);
        *self.inner.shards.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(all);
        for (from, name) in moved {
            old[from].slot.remove(&name);
        }
        true
    }
}
