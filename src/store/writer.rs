//! The store's one writer: a thread that owns the write connection and commits whatever
//! writes are waiting as one transaction (group commit), so that many concurrent writers
//! share one fsync. A write is acknowledged only after its transaction has committed.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use rusqlite::{Connection, Transaction, params};
use tokio::sync::oneshot;

use neuroflow_kit::protocol::agent::{AgentSpec, ChatMessage, Usage};

use super::{StoreError, now_ms};

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 512;
/// Writes waiting for the writer; past it, writers are told the store is busy.
pub(crate) const QUEUE: usize = 4096;

/// One change to the store.
#[derive(Debug)]
pub(crate) enum Write {
    PutAgent(AgentSpec),
    DeleteAgent(String),
    AppendMessages {
        conversation: String,
        agent: String,
        messages: Vec<(ChatMessage, Option<Usage>)>,
    },
    CreateUser {
        username: String,
        password_hash: String,
        role: String,
    },
}

/// What a write returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Written {
    Done,
    /// Whether a row was there to change.
    Changed(bool),
    /// The sequence number of the first message appended.
    FirstSeq(i64),
    /// The new row's id.
    Id(i64),
}

pub(crate) struct Job {
    pub write: Write,
    pub done: oneshot::Sender<Result<Written, StoreError>>,
}

/// Queues `job`, or says why it cannot be queued.
pub(crate) fn submit(queue: &SyncSender<Job>, job: Job) -> Result<(), StoreError> {
    queue.try_send(job).map_err(|e| match e {
        TrySendError::Full(_) => StoreError::Busy,
        TrySendError::Disconnected(_) => StoreError::Closed,
    })
}

/// Runs until every sender is gone.
pub(crate) fn run(mut conn: Connection, jobs: Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit(&mut conn, batch);
    }
}

/// Applies the batch in one transaction, each write under a savepoint of its own, so that
/// one refused write (a constraint) fails alone. Answers every writer after the commit;
/// if the transaction cannot begin or commit, every writer of the batch hears why.
fn commit(conn: &mut Connection, batch: Vec<Job>) {
    let mut tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(err) => {
            let err = StoreError::from(err);
            for job in batch {
                let _ = job.done.send(Err(err.clone()));
            }
            return;
        }
    };
    let answers: Vec<_> = batch
        .into_iter()
        .map(|job| (job.done, apply_one(&mut tx, job.write)))
        .collect();
    let committed = tx.commit().map_err(StoreError::from);
    for (done, result) in answers {
        let result = match &committed {
            Ok(()) => result,
            Err(err) => Err(err.clone()),
        };
        let _ = done.send(result);
    }
}

fn apply_one(tx: &mut Transaction<'_>, write: Write) -> Result<Written, StoreError> {
    let sp = tx.savepoint()?;
    let result = apply(&sp, write);
    if result.is_ok() {
        sp.commit()?;
    }
    // On error the savepoint rolls back when dropped.
    result
}

fn apply(conn: &Connection, write: Write) -> Result<Written, StoreError> {
    let now = now_ms();
    match write {
        Write::PutAgent(spec) => {
            let json = serde_json::to_string(&spec).map_err(StoreError::encode)?;
            conn.execute(
                "INSERT INTO agents (name, spec, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
                params![spec.name, json, now],
            )?;
            Ok(Written::Done)
        }
        Write::DeleteAgent(name) => {
            // Its conversations go with it (their messages by cascade): a later agent of
            // the same name starts with none.
            conn.execute("DELETE FROM conversations WHERE agent = ?1", params![name])?;
            let changed = conn.execute("DELETE FROM agents WHERE name = ?1", params![name])?;
            Ok(Written::Changed(changed > 0))
        }
        Write::AppendMessages {
            conversation,
            agent,
            messages,
        } => {
            conn.execute(
                "INSERT INTO conversations (id, agent, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO NOTHING",
                params![conversation, agent, now],
            )?;
            let owner: String = conn.query_row(
                "SELECT agent FROM conversations WHERE id = ?1",
                params![conversation],
                |row| row.get(0),
            )?;
            if owner != agent {
                return Err(StoreError::Constraint(format!(
                    "conversation {conversation} belongs to agent {owner:?}, not {agent:?}"
                )));
            }
            let first: i64 = conn.query_row(
                "SELECT COALESCE(MAX(seq) + 1, 0) FROM messages WHERE conversation = ?1",
                params![conversation],
                |row| row.get(0),
            )?;
            let mut insert = conn.prepare_cached(
                "INSERT INTO messages (conversation, seq, message, usage, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (offset, (message, usage)) in messages.iter().enumerate() {
                let message = serde_json::to_string(message).map_err(StoreError::encode)?;
                let usage = usage
                    .as_ref()
                    .map(serde_json::to_string)
                    .transpose()
                    .map_err(StoreError::encode)?;
                let seq = first + i64::try_from(offset).unwrap_or(i64::MAX);
                insert.execute(params![conversation, seq, message, usage, now])?;
            }
            Ok(Written::FirstSeq(first))
        }
        Write::CreateUser {
            username,
            password_hash,
            role,
        } => {
            conn.execute(
                "INSERT INTO users (username, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![username, password_hash, role, now],
            )?;
            Ok(Written::Id(conn.last_insert_rowid()))
        }
    }
}
