//! JWT access tokens: issued at login, checked on every API request. One algorithm per
//! node (HS256 with a shared secret by default; RS256 or EdDSA with a key pair), and a
//! token signed with any other, or with none (`alg: none`), is refused.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The `iss` of every token a node issues, and the only one it accepts.
pub const ISSUER: &str = "neuroflow";
/// Shortest HS256 secret accepted: RFC 7518 asks for a key as long as the hash (256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// What a user may do, each role including the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads: agents, conversations, tools, the node.
    Viewer,
    /// Also acts: chats with agents, runs sandboxes.
    Operator,
    /// Also administers: users, tokens, agents' lifecycle.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }

    /// Whether this role may do what `required` may.
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The username.
    pub sub: String,
    pub role: Role,
    pub iss: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
}

/// An issued token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Token {
    pub token: String,
    /// Unix seconds.
    pub expires_at: u64,
}

/// Why a request's credentials are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token")]
    Missing,
    #[error("the token has expired")]
    Expired,
    #[error("the token is signed with {found}; this node accepts {expected} only")]
    WrongAlgorithm { found: String, expected: String },
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("this needs the {required} role; the token has {have}")]
    Forbidden {
        required: &'static str,
        have: &'static str,
    },
    #[error("token key: {0}")]
    Key(String),
}

impl AuthError {
    /// 401 for credentials that do not authenticate, 403 for a role too low.
    pub fn status(&self) -> u16 {
        match self {
            Self::Forbidden { .. } => 403,
            Self::Key(_) => 500,
            _ => 401,
        }
    }
}

/// Issues and checks a node's tokens.
pub struct TokenIssuer {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl TokenIssuer {
    /// HS256 with `secret` (at least [`MIN_SECRET_BYTES`] bytes).
    pub fn hs256(secret: &[u8], ttl: Duration) -> Result<Self, AuthError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(AuthError::Key(format!(
                "an HS256 secret needs at least {MIN_SECRET_BYTES} bytes (got {})",
                secret.len()
            )));
        }
        Ok(Self {
            algorithm: Algorithm::HS256,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
        })
    }

    /// RS256 with a PEM key pair.
    pub fn rs256(private_pem: &[u8], public_pem: &[u8], ttl: Duration) -> Result<Self, AuthError> {
        let key = |e: jsonwebtoken::errors::Error| AuthError::Key(format!("RS256: {e}"));
        Ok(Self {
            algorithm: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(private_pem).map_err(key)?,
            decoding: DecodingKey::from_rsa_pem(public_pem).map_err(key)?,
            ttl,
        })
    }

    /// EdDSA (Ed25519) with a PEM key pair.
    pub fn eddsa(private_pem: &[u8], public_pem: &[u8], ttl: Duration) -> Result<Self, AuthError> {
        let key = |e: jsonwebtoken::errors::Error| AuthError::Key(format!("EdDSA: {e}"));
        Ok(Self {
            algorithm: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_pem(private_pem).map_err(key)?,
            decoding: DecodingKey::from_ed_pem(public_pem).map_err(key)?,
            ttl,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// A token for `username` with `role`, valid for the issuer's lifetime from now.
    pub fn issue(&self, username: &str, role: Role) -> Result<Token, AuthError> {
        let now = unix_now();
        let exp = now.saturating_add(self.ttl.as_secs());
        let claims = Claims {
            sub: username.to_string(),
            role,
            iss: ISSUER.to_string(),
            iat: now,
            exp,
        };
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .map_err(|e| AuthError::Key(e.to_string()))?;
        Ok(Token {
            token,
            expires_at: exp,
        })
    }

    /// The claims of `token`, if it is one of ours: our algorithm, a valid signature, our
    /// issuer, not expired.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        if header.alg != self.algorithm {
            return Err(AuthError::WrongAlgorithm {
                found: format!("{:?}", header.alg),
                expected: format!("{:?}", self.algorithm),
            });
        }
        let mut validation = Validation::new(self.algorithm);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid(e.to_string()),
            })
    }

    /// The claims of an `Authorization` header value, if they allow `required`.
    pub fn authorize(&self, header: Option<&str>, required: Role) -> Result<Claims, AuthError> {
        let token = header
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let claims = self.verify(token)?;
        if !claims.role.allows(required) {
            return Err(AuthError::Forbidden {
                required: required.as_str(),
                have: claims.role.as_str(),
            });
        }
        Ok(claims)
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
