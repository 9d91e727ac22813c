//! Who may use the node's API: users with argon2-hashed passwords ([`passwords`]), and the
//! JWT access tokens they log in for, carrying their role ([`tokens`]).

pub mod passwords;
pub mod tokens;

pub use tokens::{AuthError, Claims, Role, Token, TokenIssuer};
