//! Who may use the node's API: users with argon2-hashed passwords ([`passwords`]), and the
//! JWT access tokens they log in for, carrying their role ([`tokens`]).

pub mod passwords;
pub mod service;
pub mod tokens;

pub use service::{Auth, LoginError};
pub use tokens::{AuthError, Claims, Role, Token, TokenIssuer};
