//! `[api]` and `[auth]`: the node's HTTP API and who may use it.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::in_range;

/// Environment variable giving `auth.jwt_secret`.
pub const ENV_JWT_SECRET: &str = "NEUROFLOW_JWT_SECRET";
/// Environment variable giving `auth.admin_password`.
pub const ENV_ADMIN_PASSWORD: &str = "NEUROFLOW_ADMIN_PASSWORD";

/// Largest request body the API may be configured to take.
const MAX_BODY_LIMIT: u64 = 64 << 20;
/// Longest token lifetime: 30 days.
const MAX_TOKEN_TTL_SECS: u64 = 30 * 86_400;

/// `[api]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Largest request body, in bytes; a larger one is refused with 413.
    pub max_body_bytes: u64,
    /// Longest an agent's turn may take when asked through the API.
    pub turn_timeout_secs: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            turn_timeout_secs: 300,
        }
    }
}

/// `[auth]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How tokens are signed.
    pub algorithm: JwtAlgorithm,
    /// HS256 secret (at least 32 bytes). Without one the node makes one and keeps it in
    /// its data directory (`jwt-secret`), so that tokens outlive a restart.
    pub jwt_secret: Option<Secret>,
    /// PEM private key, for RS256 and EdDSA.
    pub private_key: Option<PathBuf>,
    /// PEM public key, for RS256 and EdDSA.
    pub public_key: Option<PathBuf>,
    /// Lifetime of an access token.
    pub token_ttl_secs: u64,
    /// Password of the `admin` user created on first start; generated (and printed once)
    /// when absent.
    pub admin_password: Option<Secret>,
    /// Whether `/metrics` wants a token (viewer); public when false.
    pub protect_metrics: bool,
    /// Login attempts allowed per client address per minute.
    pub login_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            algorithm: JwtAlgorithm::Hs256,
            jwt_secret: None,
            private_key: None,
            public_key: None,
            token_ttl_secs: 3600,
            admin_password: None,
            protect_metrics: false,
            login_per_minute: 10,
        }
    }
}

/// Token signing algorithm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    #[default]
    #[serde(rename = "HS256")]
    Hs256,
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "EdDSA")]
    EdDsa,
}

/// A value kept out of logs and debug output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl ApiConfig {
    /// Checks the values; errors are `(key, message)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        in_range(
            "api.max_body_bytes",
            self.max_body_bytes,
            1024,
            MAX_BODY_LIMIT,
        )?;
        in_range("api.turn_timeout_secs", self.turn_timeout_secs, 1, 86_400)
    }
}

impl AuthConfig {
    /// Checks the values; errors are `(key, message)`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        in_range(
            "auth.token_ttl_secs",
            self.token_ttl_secs,
            60,
            MAX_TOKEN_TTL_SECS,
        )?;
        in_range("auth.login_per_minute", self.login_per_minute, 1, 10_000)?;
        if let Some(secret) = &self.jwt_secret
            && secret.0.len() < crate::auth::tokens::MIN_SECRET_BYTES
        {
            return Err((
                "auth.jwt_secret",
                format!(
                    "must be at least {} bytes (got {})",
                    crate::auth::tokens::MIN_SECRET_BYTES,
                    secret.0.len()
                ),
            ));
        }
        if let Some(password) = &self.admin_password
            && password.0.len() < 8
        {
            return Err((
                "auth.admin_password",
                "must be at least 8 characters".into(),
            ));
        }
        match self.algorithm {
            JwtAlgorithm::Hs256 => {}
            JwtAlgorithm::Rs256 | JwtAlgorithm::EdDsa => {
                if self.private_key.is_none() {
                    return Err((
                        "auth.private_key",
                        "RS256 and EdDSA need a PEM private key".into(),
                    ));
                }
                if self.public_key.is_none() {
                    return Err((
                        "auth.public_key",
                        "RS256 and EdDSA need a PEM public key".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}
