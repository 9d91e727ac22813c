//! The node's auth as the API uses it: the token issuer built from `[auth]`, users in the
//! store, the admin created on first start, and login with its rate limit.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::passwords;
use super::tokens::{AuthError, Claims, Role, Token, TokenIssuer};
use crate::config::{AuthConfig, JwtAlgorithm};
use crate::store::{Store, StoreError, UserSummary};

/// File in the data directory holding the generated HS256 secret.
pub const SECRET_FILE: &str = "jwt-secret";
/// Username of the user created on first start.
pub const ADMIN: &str = "admin";
/// Client addresses the login limiter remembers before it forgets idle ones.
const LIMITER_KEYS: usize = 10_000;

/// Why a login or a user change failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password")]
    BadCredentials,
    #[error("too many login attempts from this address; retry in {} s", .retry_after.as_secs().max(1))]
    RateLimited { retry_after: Duration },
    #[error("a user named {0:?} exists")]
    UserExists(String),
    #[error(transparent)]
    Token(#[from] AuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

/// Auth of one node. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: TokenIssuer,
    store: Store,
    logins: DefaultKeyedRateLimiter<IpAddr>,
    /// A hash checked when the username is unknown, so that a miss takes as long as a
    /// wrong password and does not tell which usernames exist.
    decoy: String,
}

impl Auth {
    /// Builds the token issuer from `config` (reading key files, or the data directory's
    /// generated secret) over `store`.
    pub fn new(config: &AuthConfig, data_dir: &Path, store: Store) -> Result<Self, String> {
        let issuer = issuer(config, data_dir)?;
        let per_minute = NonZeroU32::new(config.login_per_minute).unwrap_or(NonZeroU32::MIN);
        Ok(Self {
            inner: Arc::new(Inner {
                issuer,
                store,
                logins: RateLimiter::keyed(Quota::per_minute(per_minute)),
                decoy: passwords::hash("decoy password, never a user's")?,
            }),
        })
    }

    /// Creates `admin` when the store has no user: with `password`, or a generated one,
    /// which is returned so that it can be shown once.
    pub async fn bootstrap(&self, password: Option<&str>) -> Result<Option<String>, String> {
        let store = &self.inner.store;
        if store.user_count().await.map_err(|e| e.to_string())? > 0 {
            return Ok(None);
        }
        let generated = password.is_none().then(generate_password);
        let password = password.or(generated.as_deref()).unwrap_or_default();
        self.create_user(ADMIN, password, Role::Admin)
            .await
            .map_err(|e| format!("cannot create the admin user: {e}"))?;
        Ok(generated)
    }

    /// A token for `username` if `password` is theirs; attempts are limited per `client`.
    pub async fn login(
        &self,
        client: IpAddr,
        username: &str,
        password: &str,
    ) -> Result<(Token, Role), LoginError> {
        if let Err(not_until) = self.inner.logins.check_key(&client) {
            let retry_after = not_until.wait_time_from(DefaultClock::default().now());
            return Err(LoginError::RateLimited { retry_after });
        }
        if self.inner.logins.len() > LIMITER_KEYS {
            self.inner.logins.retain_recent();
        }
        let user = self.inner.store.user(username).await?;
        let (hash, role) = match &user {
            Some(user) => (user.password_hash.clone(), parse_role(&user.role)),
            None => (self.inner.decoy.clone(), None),
        };
        let password = password.to_string();
        // Argon2 is made to be slow: off the async workers.
        let matches = tokio::task::spawn_blocking(move || passwords::verify(&password, &hash))
            .await
            .map_err(|e| LoginError::Internal(e.to_string()))?;
        match (user, role) {
            (Some(user), Some(role)) if matches => {
                Ok((self.inner.issuer.issue(&user.username, role)?, role))
            }
            _ => Err(LoginError::BadCredentials),
        }
    }

    /// The claims of an `Authorization` header value, if they allow `required`.
    pub fn authorize(&self, header: Option<&str>, required: Role) -> Result<Claims, AuthError> {
        self.inner.issuer.authorize(header, required)
    }

    /// Adds a user.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
    ) -> Result<UserSummary, LoginError> {
        let owned = password.to_string();
        let hash = tokio::task::spawn_blocking(move || passwords::hash(&owned))
            .await
            .map_err(|e| LoginError::Internal(e.to_string()))?
            .map_err(LoginError::Internal)?;
        match self
            .inner
            .store
            .create_user(username, &hash, role.as_str())
            .await
        {
            Ok(_) => {}
            Err(StoreError::Constraint(_)) => {
                return Err(LoginError::UserExists(username.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        let user = self
            .inner
            .store
            .user(username)
            .await?
            .ok_or_else(|| LoginError::Internal(format!("user {username:?} vanished")))?;
        Ok(UserSummary {
            username: user.username,
            role: user.role,
            created_at: user.created_at,
        })
    }

    /// Users by name, `limit` after `offset`.
    pub async fn users(&self, offset: u64, limit: u64) -> Result<Vec<UserSummary>, StoreError> {
        self.inner.store.users(offset, limit).await
    }
}

fn parse_role(role: &str) -> Option<Role> {
    serde_json::from_value(serde_json::Value::String(role.to_string())).ok()
}

/// 24 random characters from a 62-letter alphabet (about 142 bits).
fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let random: Vec<u8> = (0..2)
        .flat_map(|_| uuid::Uuid::new_v4().into_bytes())
        .collect();
    random
        .iter()
        .take(24)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// The issuer `[auth]` asks for. HS256 without a configured secret uses the one in the
/// data directory, made (0600) on first start.
fn issuer(config: &AuthConfig, data_dir: &Path) -> Result<TokenIssuer, String> {
    let ttl = Duration::from_secs(config.token_ttl_secs);
    let read = |path: &Option<std::path::PathBuf>, key: &str| {
        let path = path.as_ref().ok_or(format!("auth.{key} is required"))?;
        std::fs::read(path).map_err(|e| format!("auth.{key} {}: {e}", path.display()))
    };
    let issuer = match config.algorithm {
        JwtAlgorithm::Hs256 => match &config.jwt_secret {
            Some(secret) => TokenIssuer::hs256(secret.expose().as_bytes(), ttl),
            None => TokenIssuer::hs256(&data_dir_secret(data_dir)?, ttl),
        },
        JwtAlgorithm::Rs256 => TokenIssuer::rs256(
            &read(&config.private_key, "private_key")?,
            &read(&config.public_key, "public_key")?,
            ttl,
        ),
        JwtAlgorithm::EdDsa => TokenIssuer::eddsa(
            &read(&config.private_key, "private_key")?,
            &read(&config.public_key, "public_key")?,
            ttl,
        ),
    };
    issuer.map_err(|e| e.to_string())
}

fn data_dir_secret(data_dir: &Path) -> Result<Vec<u8>, String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    let path = data_dir.join(SECRET_FILE);
    match std::fs::read(&path) {
        Ok(secret) => return Ok(secret),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("{}: {e}", path.display())),
    }
    let secret: String = (0..4)
        .map(|_| uuid::Uuid::new_v4().simple().to_string())
        .collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(secret.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(secret.into_bytes())
}
