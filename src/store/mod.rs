//! The node's store: SQLite in the data directory (`store.db`, WAL).
//!
//! ```text
//!  writers (async) ──bounded queue──▶ writer thread ── one transaction per batch ──▶ store.db
//!  readers (async) ──spawn_blocking──▶ read connection (WAL: reads never wait on writes)
//! ```
//!
//! - **Durable before acknowledged.** `synchronous = FULL`: a write's future resolves only
//!   after the transaction holding it has committed and the WAL is on disk, so a killed
//!   node (or host) loses no write it acknowledged.
//! - **Group commit.** One thread owns the write connection and commits every write that
//!   is waiting as one transaction: concurrent writers share one fsync.
//! - **Bounded.** Writes wait in a queue of [`writer::QUEUE`]; past it a write is refused
//!   with [`StoreError::Busy`] rather than buffered without limit.
//! - **Versioned schema.** [`schema`] migrations run at open; a database from a newer build
//!   is refused, not misread.

mod conversations;
mod journal;
mod schema;
mod users;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use neuroflow_kit::protocol::agent::{AgentSpec, ChatMessage, Usage};
use rusqlite::{Connection, OpenFlags, params};
use tokio::sync::oneshot;

pub use conversations::ConversationSummary;
pub use schema::VERSION as SCHEMA_VERSION;
pub use users::UserSummary;
use writer::{Job, Write, Written};

/// File name of the store in the data directory.
pub const FILE: &str = "store.db";

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("store {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error(
        "the store was written by a newer NeuroFlow (schema version {found}; this build knows up to {known})"
    )]
    NewerSchema { found: u32, known: u32 },
    #[error("the store refused the write: {0}")]
    Constraint(String),
    #[error("store: {0}")]
    Sqlite(String),
    #[error("store: a record could not be encoded: {0}")]
    Encode(String),
    #[error("store: a stored record could not be read: {0}")]
    Decode(String),
    #[error("the store has too many writes waiting; retry shortly")]
    Busy,
    #[error("the store is closed")]
    Closed,
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => Self::Constraint(err.to_string()),
            _ => Self::Sqlite(err.to_string()),
        }
    }
}

impl StoreError {
    fn encode(err: serde_json::Error) -> Self {
        Self::Encode(err.to_string())
    }

    fn decode(err: serde_json::Error) -> Self {
        Self::Decode(err.to_string())
    }
}

/// One stored message of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub seq: i64,
    pub message: ChatMessage,
    pub usage: Option<Usage>,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A user as stored (the password only as its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// Handle to the store; cheap to clone. The writer thread ends when the last handle goes.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    queue: SyncSender<Job>,
    read: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) `dir/store.db`, runs the migrations and starts the
    /// writer thread.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let path = dir.join(FILE);
        let open_err = |message: String| StoreError::Open {
            path: path.clone(),
            message,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let mut write = connection(&path, true).map_err(|e| open_err(e.to_string()))?;
        schema::migrate(&mut write)?;
        let read = connection(&path, false).map_err(|e| open_err(e.to_string()))?;
        let (queue, jobs) = std::sync::mpsc::sync_channel(writer::QUEUE);
        std::thread::Builder::new()
            .name("neuroflow-store".into())
            .spawn(move || writer::run(write, jobs))
            .map_err(|e| open_err(format!("cannot start the writer thread: {e}")))?;
        Ok(Store {
            inner: Arc::new(Inner {
                path,
                queue,
                read: Mutex::new(read),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) async fn write(&self, write: Write) -> Result<Written, StoreError> {
        let (done, answer) = oneshot::channel();
        writer::submit(&self.inner.queue, Job { write, done })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let conn = inner.read.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }

    /// Stores an agent's spec (replacing the one of the same name).
    pub async fn put_agent(&self, spec: AgentSpec) -> Result<(), StoreError> {
        self.write(Write::PutAgent(spec)).await.map(drop)
    }

    /// Removes an agent's spec; whether there was one.
    pub async fn delete_agent(&self, name: &str) -> Result<bool, StoreError> {
        match self.write(Write::DeleteAgent(name.to_string())).await? {
            Written::Changed(changed) => Ok(changed),
            _ => Ok(false),
        }
    }

    /// Every stored agent spec, by name.
    pub async fn agents(&self) -> Result<Vec<AgentSpec>, StoreError> {
        self.read(|conn| {
            let mut query = conn.prepare_cached("SELECT spec FROM agents ORDER BY name")?;
            let rows = query.query_map([], |row| row.get::<_, String>(0))?;
            rows.map(|json| serde_json::from_str(&json?).map_err(StoreError::decode))
                .collect()
        })
        .await
    }

    /// The stored spec of agent `name`.
    pub async fn agent(&self, name: &str) -> Result<Option<AgentSpec>, StoreError> {
        let name = name.to_string();
        self.read(move |conn| {
            let mut query = conn.prepare_cached("SELECT spec FROM agents WHERE name = ?1")?;
            let mut rows = query.query(params![name])?;
            match rows.next()? {
                Some(row) => {
                    let json: String = row.get(0)?;
                    serde_json::from_str(&json)
                        .map(Some)
                        .map_err(StoreError::decode)
                }
                None => Ok(None),
            }
        })
        .await
    }

    /// Appends `messages` to conversation `conversation` of `agent` (created at its first
    /// message); returns the sequence number of the first one.
    pub async fn append_messages(
        &self,
        conversation: &str,
        agent: &str,
        messages: Vec<(ChatMessage, Option<Usage>)>,
    ) -> Result<i64, StoreError> {
        let write = Write::AppendMessages {
            conversation: conversation.to_string(),
            agent: agent.to_string(),
            messages,
        };
        match self.write(write).await? {
            Written::FirstSeq(seq) => Ok(seq),
            _ => Ok(0),
        }
    }

    /// Every message of a conversation, in order.
    pub async fn messages(&self, conversation: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let conversation = conversation.to_string();
        self.read(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT seq, message, usage, created_at FROM messages
                 WHERE conversation = ?1 ORDER BY seq",
            )?;
            let rows = query.query_map(params![conversation], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })?;
            rows.map(|row| {
                let (seq, message, usage, created_at) = row?;
                Ok(StoredMessage {
                    seq,
                    message: serde_json::from_str(&message).map_err(StoreError::decode)?,
                    usage: usage
                        .map(|u| serde_json::from_str(&u))
                        .transpose()
                        .map_err(StoreError::decode)?,
                    created_at,
                })
            })
            .collect()
        })
        .await
    }
}

/// Longest a connection waits for another's lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A connection with the store's settings: WAL, full sync on commit, foreign keys, and a
/// busy timeout (the reader may briefly meet a checkpoint).
fn connection(path: &Path, write: bool) -> rusqlite::Result<Connection> {
    let flags = if write {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if write {
        // Switching a new database to WAL needs it to itself, and SQLite answers "locked"
        // at once rather than through the busy handler when another process is making
        // the same switch: retry within the busy timeout.
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Err(e)
                    if matches!(
                        e.sqlite_error_code(),
                        Some(
                            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                        )
                    ) && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                other => break other?,
            }
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Now, in Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
