//! A timer kept pending on a runtime, so that call deadlines stay cheap.
//!
//! Every call between actors carries a deadline: a tokio timer registered when the call
//! starts and removed when the reply comes, usually microseconds later. Tokio's time
//! driver wakes itself whenever a timer is registered that is due before every timer it
//! already knows of, so that it can sleep for the right time; on a runtime with no other
//! timer pending, that is every call's deadline, and each call pays an `eventfd` write
//! and a worker woken for nothing. Measured on the node's runtime, calls were about ×1.5
//! slower for it (`cargo bench --bench kit`, "with / without timer anchor"). A timer that
//! is always due within [`TimerAnchor::PERIOD`] keeps every later deadline from being the
//! earliest, at the cost of one wake-up per period.

use std::time::Duration;

use tokio::task::JoinHandle;

/// Keeps a timer pending on the runtime it was started on, until dropped.
#[derive(Debug)]
pub struct TimerAnchor(JoinHandle<()>);

impl TimerAnchor {
    /// How often the anchor's timer fires; calls with deadlines further away than this
    /// never wake the time driver.
    pub const PERIOD: Duration = Duration::from_secs(1);

    /// Starts the anchor on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub fn start() -> Self {
        Self(tokio::spawn(async {
            loop {
                tokio::time::sleep(Self::PERIOD).await;
            }
        }))
    }
}

impl Drop for TimerAnchor {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_until_dropped() {
        let anchor = TimerAnchor::start();
        tokio::task::yield_now().await;
        assert!(!anchor.0.is_finished(), "the anchor keeps running");
        let abort = anchor.0.abort_handle();
        drop(anchor);
        for _ in 0..100 {
            if abort.is_finished() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(abort.is_finished(), "dropping the anchor stops its task");
    }
}
