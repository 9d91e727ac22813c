//! How the router runs.

use std::time::Duration;

/// Settings of a [`crate::Tools`] router.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Number of shards (K) the tools are spread over; at least 1.
    pub shards: usize,
    /// Deadline of a call whose request names none.
    pub default_timeout: Duration,
    /// Longest deadline a request may ask for.
    pub max_timeout: Duration,
    /// Calls one shard runs at once; past that it refuses calls as unavailable, so that a
    /// flood of calls is pushed back on rather than piled up.
    pub max_in_flight_per_shard: usize,
    /// How long a caller waits for a shard to take its call up (not to run it).
    pub admission_timeout: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            shards: 4,
            default_timeout: Duration::from_secs(30),
            max_timeout: Duration::from_secs(600),
            max_in_flight_per_shard: 1024,
            admission_timeout: Duration::from_secs(5),
        }
    }
}

impl RouterConfig {
    /// The deadline of a call that asked for `timeout_ms`.
    pub fn timeout_for(&self, timeout_ms: Option<u64>) -> Duration {
        timeout_ms
            .map_or(self.default_timeout, Duration::from_millis)
            .min(self.max_timeout)
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.shards == 0 || self.shards > 1024 {
            return Err(format!("shards must be in 1..=1024, not {}", self.shards));
        }
        if self.max_in_flight_per_shard == 0 {
            return Err("max_in_flight_per_shard must be at least 1".into());
        }
        Ok(())
    }
}
