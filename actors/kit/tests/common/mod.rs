//! Test actors and helpers shared by the kit's integration tests.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use neuroflow_kit::actor::{Actor, ActorError, Ctx};
use serde::{Deserialize, Serialize};

/// A worker whose behaviour each test drives through its messages.
pub struct Worker {
    pub name: &'static str,
    pub journal: Journal,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WorkerMsg {
    /// Answer with the incarnation number.
    Ping,
    /// Fail the handler with an error.
    Fail,
    /// Panic inside the handler.
    Panic,
    /// Stop normally.
    Exit,
    /// Sleep this many milliseconds, then answer.
    Sleep(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerReply {
    Pong { incarnation: u32 },
}

/// Counts starts and records lifecycle events of every worker of a test, in order.
#[derive(Clone, Default)]
pub struct Journal {
    starts: Arc<Mutex<std::collections::HashMap<&'static str, Arc<AtomicU32>>>>,
    events: Arc<Mutex<Vec<String>>>,
    /// Starts that should fail (counted down).
    pub fail_starts: Arc<AtomicU32>,
}

impl Journal {
    pub fn starts(&self, name: &'static str) -> u32 {
        self.counter(name).load(Ordering::SeqCst)
    }

    fn counter(&self, name: &'static str) -> Arc<AtomicU32> {
        self.starts.lock().unwrap().entry(name).or_default().clone()
    }

    pub fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    fn record(&self, event: String) {
        self.events.lock().unwrap().push(event);
    }
}

impl Actor for Worker {
    const KIND: &'static str = "test.worker";
    type Msg = WorkerMsg;
    type Reply = WorkerReply;
    type State = u32;
    type Args = ();

    async fn started(&self, _: &Ctx<Self>, _: ()) -> Result<u32, ActorError> {
        let failing =
            self.journal
                .fail_starts
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if failing.is_ok() {
            self.journal.record(format!("{} start-failed", self.name));
            return Err(format!("{} refuses to start", self.name).into());
        }
        let n = self
            .journal
            .counter(self.name)
            .fetch_add(1, Ordering::SeqCst)
            + 1;
        self.journal.record(format!("{} started", self.name));
        Ok(n)
    }

    async fn handle(
        &self,
        ctx: &Ctx<Self>,
        msg: WorkerMsg,
        incarnation: &mut u32,
    ) -> Result<WorkerReply, ActorError> {
        match msg {
            WorkerMsg::Ping => {}
            WorkerMsg::Fail => return Err(format!("{} told to fail", self.name).into()),
            WorkerMsg::Panic => panic!("{} told to panic", self.name),
            WorkerMsg::Exit => ctx.stop("told to exit"),
            WorkerMsg::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
        Ok(WorkerReply::Pong {
            incarnation: *incarnation,
        })
    }

    async fn stopped(&self, _: &Ctx<Self>, _: &mut u32) {
        self.journal.record(format!("{} stopped", self.name));
    }
}

/// Polls `cond` every 5 ms for at most 3 s.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
