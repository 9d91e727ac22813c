//! Sandboxes built ahead of the requests that will use them.
//!
//! Building a sandbox (cgroup, namespaces, the overlay root) is most of its start-up time;
//! a request that finds one ready only pays for starting its command. Each `exec` takes a
//! ready sandbox (or builds one if none is) and has a replacement built in the background,
//! so a steady stream of requests never waits for a build. A sandbox is used once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::prepare::{Ready, prepare};
use crate::profile::Profile;
use crate::sandbox::Shared;

pub(crate) struct Pool {
    /// How many sandboxes to keep ready.
    target: usize,
    ready: Mutex<Vec<Ready>>,
    /// Builds under way, so that a burst of requests does not start more than needed.
    building: AtomicUsize,
}

impl Pool {
    pub fn new(target: usize) -> Self {
        Self {
            target,
            ready: Mutex::new(Vec::new()),
            building: AtomicUsize::new(0),
        }
    }

    /// A ready sandbox whose init is still alive, if one is.
    pub fn take(&self) -> Option<Ready> {
        let mut ready = self.ready.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(mut candidate) = ready.pop() {
            if matches!(candidate.child.try_wait(), Ok(None)) {
                return Some(candidate);
            }
            // Its init died while waiting (killed from outside): dropping tears it down.
        }
        None
    }

    /// Starts building sandboxes in the background until `target` are ready or building.
    pub fn refill(self: &Arc<Self>, shared: &Arc<Shared>, profile: &Arc<Profile>) {
        loop {
            let have = self.ready.lock().unwrap_or_else(|p| p.into_inner()).len();
            let building = self.building.load(Ordering::Acquire);
            if have + building >= self.target {
                return;
            }
            if self
                .building
                .compare_exchange(building, building + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                continue;
            }
            let (pool, shared, profile) = (self.clone(), shared.clone(), profile.clone());
            tokio::spawn(async move {
                let built = prepare(&shared, &profile).await;
                pool.building.fetch_sub(1, Ordering::AcqRel);
                match built {
                    Ok(ready) => pool
                        .ready
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(ready),
                    // The request path builds (and reports) on its own when none is ready.
                    Err(e) => tracing::warn!(error = %e, profile = %profile.name,
                        "building a spare sandbox failed"),
                }
            });
        }
    }
}
