//! The API's one error shape: `{"error": {"code", "message", "field"?}}`, and how the
//! node's errors map onto it.

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::auth::{AuthError, LoginError};
use crate::node::agents::AgentError;
use crate::store::StoreError;

/// A failed request: its status and the body's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The field of the request at fault, as a JSON path (`budget.max_tokens`).
    pub field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// A 400 naming the field at fault.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Self {
            field: (!field.is_empty()).then_some(field),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid", message)
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn into_response(self) -> Response {
        let body = Body {
            error: Detail {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        warp::reply::with_status(warp::reply::json(&body), self.status).into_response()
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Forbidden { .. } => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", err.to_string())
            }
            AuthError::Key(_) => Self::internal(err.to_string()),
            _ => Self::new(StatusCode::UNAUTHORIZED, "unauthorized", err.to_string()),
        }
    }
}

impl From<LoginError> for ApiError {
    fn from(err: LoginError) -> Self {
        match err {
            LoginError::BadCredentials => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthorized", err.to_string())
            }
            LoginError::RateLimited { .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                err.to_string(),
            ),
            LoginError::UserExists(_) => Self::conflict(err.to_string()),
            LoginError::Token(e) => e.into(),
            LoginError::Store(e) => e.into(),
            LoginError::Internal(m) => Self::internal(m),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Busy | StoreError::Closed => Self::unavailable(err.to_string()),
            StoreError::Constraint(_) => Self::conflict(err.to_string()),
            _ => Self::internal(err.to_string()),
        }
    }
}

impl From<AgentError> for ApiError {
    fn from(err: AgentError) -> Self {
        let message = err.to_string();
        match err {
            AgentError::Exists(_) | AgentError::Busy(_) | AgentError::NotStored(_) => {
                Self::conflict(message)
            }
            AgentError::NotFound(_) => Self::not_found(message),
            AgentError::InvalidName(_) | AgentError::Reserved(_) => Self::invalid("name", message),
            AgentError::NameMismatch { .. } => Self::invalid("name", message),
            AgentError::UnknownProvider { .. } => Self::invalid("provider", message),
            AgentError::Context { .. } => Self::invalid("context", message),
            AgentError::Supervisor(e) => Self::unavailable(e.to_string()),
            AgentError::Store(e) => e.into(),
        }
    }
}
