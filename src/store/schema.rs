//! The store's schema, as numbered migrations. `PRAGMA user_version` holds how many have
//! run; those a store has not had run once, in order, in one transaction.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Migration `i` brings the schema from version `i` to `i + 1`. Append only: a released
/// migration is never edited, a change is a new one.
const MIGRATIONS: &[&str] = &[
    // 1: agents, their conversations and messages, users and API tokens.
    r#"
    CREATE TABLE agents (
        name        TEXT PRIMARY KEY,
        spec        TEXT NOT NULL,           -- the AgentSpec, as JSON
        created_at  INTEGER NOT NULL,        -- Unix milliseconds
        updated_at  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE conversations (
        id          TEXT PRIMARY KEY,
        agent       TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX conversations_by_agent ON conversations (agent, created_at);
    CREATE TABLE messages (
        conversation TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        seq          INTEGER NOT NULL,       -- 0, 1, 2, … within the conversation
        message      TEXT NOT NULL,          -- the ChatMessage (role, content, tool calls), as JSON
        usage        TEXT,                   -- the Usage of the model call that made it, as JSON
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (conversation, seq)
    ) STRICT;
    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,         -- argon2, PHC string
        role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        created_at    INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE api_tokens (
        id          TEXT PRIMARY KEY,
        user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
        name        TEXT NOT NULL,
        token_hash  TEXT NOT NULL UNIQUE,    -- SHA-256 of the token; the token itself is never stored
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER,
        revoked     INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    "#,
];

/// The schema version this build writes.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// Runs the migrations the database has not had. A database written by a newer build
/// (a higher version) is refused rather than misread.
pub fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    // One write transaction for the check and the migrations: two processes opening a new
    // store at once take turns, and the second finds the schema already made.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: u32 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > VERSION {
        return Err(StoreError::NewerSchema {
            found,
            known: VERSION,
        });
    }
    for sql in MIGRATIONS.iter().skip(found as usize) {
        tx.execute_batch(sql)?;
    }
    // PRAGMA takes no parameters; the value is a number this build computed.
    tx.execute_batch(&format!("PRAGMA user_version = {VERSION}"))?;
    tx.commit()?;
    Ok(VERSION)
}
