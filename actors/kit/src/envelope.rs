//! The envelope every actor message travels in.
//!
//! In-process an envelope is moved, never serialized; it is MessagePack-encoded (see
//! [`crate::codec`]) only when it crosses a boundary: peer links, the sandbox control pipe,
//! journals and replay. Whatever the payload, the envelope carries what a receiver needs to
//! continue the sender's trace and to honour the sender's deadline.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::trace_context::TraceContext;

/// Unique id of one message; replies and logs refer to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(pub Uuid);

impl MessageId {
    /// A fresh id, unique across threads, processes and nodes: a random 64-bit prefix
    /// drawn once per thread, then a per-thread counter (as a version 8 UUID).
    ///
    /// Every message gets one, so it must be cheap: drawing 122 random bits per message
    /// (a v4 UUID) was about a tenth of what the kit adds to a call.
    pub fn new() -> Self {
        thread_local! {
            static NEXT: std::cell::Cell<(u64, u64)> =
                std::cell::Cell::new((Uuid::new_v4().as_u64_pair().0, 0));
        }
        let (prefix, count) = NEXT.with(|next| {
            let (prefix, count) = next.get();
            next.set((prefix, count.wrapping_add(1)));
            (prefix, count)
        });
        let mut bytes = [0u8; 16];
        bytes[..8].copy_from_slice(&prefix.to_be_bytes());
        bytes[8..].copy_from_slice(&count.to_be_bytes());
        // Sets the version (4 bits of the prefix) and variant (the counter's top 2 bits,
        // which a thread never reaches).
        Self(uuid::Builder::from_custom_bytes(bytes).into_uuid())
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Wall-clock instant as nanoseconds since the Unix epoch.
///
/// Wall clock rather than a monotonic instant because envelopes cross processes and nodes,
/// where only wall-clock time means the same thing on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// `self + d`, saturating at the far future.
    pub fn after(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }

    /// Time left from now until `self`; zero if `self` is already past.
    pub fn remaining(self) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(Self::now().0))
    }

    /// Whether `self` lies in the past.
    pub fn is_past(self) -> bool {
        self.0 <= Self::now().0
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        let nanos = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Self(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// Slash-separated path of an actor in the supervision tree, e.g. `node/telemetry/metrics`.
/// Serialized as a plain string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct ActorPath(Arc<str>);

impl From<String> for ActorPath {
    fn from(s: String) -> Self {
        Self(Arc::from(s))
    }
}

impl From<ActorPath> for String {
    fn from(p: ActorPath) -> Self {
        p.0.to_string()
    }
}

impl ActorPath {
    /// A path made of a single segment (a root).
    pub fn root(name: &str) -> Self {
        Self(Arc::from(name))
    }

    /// The path of a child called `name` under `self`.
    pub fn child(&self, name: &str) -> Self {
        Self(Arc::from(format!("{}/{name}", self.0)))
    }

    /// The last segment: the actor's own name.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ActorPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message `M` with the metadata that travels with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<M> {
    pub id: MessageId,
    /// W3C trace context of the span that sent the message, if it was traced. Boxed: an
    /// envelope is moved several times per message in-process, and inline the context
    /// would be half of its size.
    pub trace: Option<Box<TraceContext>>,
    /// Who sent it, when the sender is an actor.
    pub sender: Option<ActorPath>,
    pub sent_at: Timestamp,
    /// After this instant the receiver drops the message (and counts it) instead of handling it.
    pub deadline: Option<Timestamp>,
    pub payload: M,
}

impl<M> Envelope<M> {
    /// Wraps `payload` with a fresh id and the calling context's trace
    /// (see [`crate::propagation::current_trace`]).
    pub fn new(payload: M) -> Self {
        Self {
            id: MessageId::new(),
            trace: crate::propagation::current_trace().map(Box::new),
            sender: crate::propagation::current_sender(),
            sent_at: Timestamp::now(),
            deadline: None,
            payload,
        }
    }

    /// Sets the deadline to `timeout` from now.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Some(self.sent_at.after(timeout));
        self
    }

    pub fn with_deadline(mut self, deadline: Timestamp) -> Self {
        self.deadline = Some(deadline);
        self
    }

    pub fn with_sender(mut self, sender: ActorPath) -> Self {
        self.sender = Some(sender);
        self
    }

    pub fn with_trace(mut self, trace: Option<TraceContext>) -> Self {
        self.trace = trace.map(Box::new);
        self
    }

    /// Whether the deadline, if any, has passed.
    pub fn is_expired(&self) -> bool {
        self.deadline.is_some_and(Timestamp::is_past)
    }

    /// The same envelope around a different payload (e.g. after converting the message type).
    pub fn map<N>(self, f: impl FnOnce(M) -> N) -> Envelope<N> {
        Envelope {
            id: self.id,
            trace: self.trace,
            sender: self.sender,
            sent_at: self.sent_at,
            deadline: self.deadline,
            payload: f(self.payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::MessageId;

    #[test]
    fn message_ids_are_unique_across_threads() {
        let per_thread = 10_000;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..per_thread)
                        .map(|_| MessageId::new())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for thread in threads {
            for id in thread.join().unwrap() {
                assert_eq!(id.0.get_version_num(), 8);
                assert!(seen.insert(id), "{id} twice");
            }
        }
        assert_eq!(seen.len(), 4 * per_thread);
    }
}
