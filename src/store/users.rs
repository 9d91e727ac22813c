//! Users of the node's API.

use rusqlite::params;
use serde::Serialize;

use super::writer::{Write, Written};
use super::{Store, StoreError, StoredUser};

/// A user as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    pub username: String,
    pub role: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl Store {
    /// Creates a user; a taken username is [`StoreError::Constraint`].
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: &str,
    ) -> Result<i64, StoreError> {
        let write = Write::CreateUser {
            username: username.to_string(),
            password_hash: password_hash.to_string(),
            role: role.to_string(),
        };
        match self.write(write).await? {
            Written::Id(id) => Ok(id),
            _ => Ok(0),
        }
    }

    pub async fn user(&self, username: &str) -> Result<Option<StoredUser>, StoreError> {
        let username = username.to_string();
        self.read(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT id, username, password_hash, role, created_at FROM users WHERE username = ?1",
            )?;
            let mut rows = query.query(params![username])?;
            let Some(row) = rows.next()? else {
                return Ok(None);
            };
            Ok(Some(StoredUser {
                id: row.get(0)?,
                username: row.get(1)?,
                password_hash: row.get(2)?,
                role: row.get(3)?,
                created_at: row.get(4)?,
            }))
        })
        .await
    }

    /// How many users there are.
    pub async fn user_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let count: i64 = conn.query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))?;
            Ok(u64::try_from(count).unwrap_or(0))
        })
        .await
    }

    /// Up to `limit` users after `offset`, by username.
    pub async fn users(&self, offset: u64, limit: u64) -> Result<Vec<UserSummary>, StoreError> {
        let (offset, limit) = (clamp(offset), clamp(limit));
        self.read(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT username, role, created_at FROM users ORDER BY username LIMIT ?1 OFFSET ?2",
            )?;
            let rows = query.query_map(params![limit, offset], |row| {
                Ok(UserSummary {
                    username: row.get(0)?,
                    role: row.get(1)?,
                    created_at: row.get(2)?,
                })
            })?;
            rows.map(|row| row.map_err(StoreError::from)).collect()
        })
        .await
    }
}

/// A count SQLite takes (a signed 64-bit integer).
pub(super) fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
