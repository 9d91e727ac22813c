//! Why a call to a model failed.

use std::time::Duration;

use super::pricing::PricingError;
use super::rules::RulesError;

/// Every way an LLM call can fail. A caller can tell from the variant whether trying
/// again later may help ([`ProviderError::is_transient`]).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The server answered with an error status (after the retries it deserved).
    #[error("HTTP {status} after {attempts} attempt(s): {body}")]
    Http {
        status: u16,
        /// The start of the response body (bounded), for a person to read.
        body: String,
        attempts: u32,
    },
    /// 429 Too Many Requests, still after the last attempt (or the server asked us to
    /// wait longer than the retry policy allows).
    #[error("rate limited after {attempts} attempt(s){}", fmt_after(.retry_after))]
    RateLimited {
        retry_after: Option<Duration>,
        attempts: u32,
    },
    /// The call did not finish within its total timeout (retries included), or the
    /// server went quiet for longer than the idle timeout.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// The caller cancelled the call.
    #[error("cancelled")]
    Cancelled,
    /// The server sent something that is not what its API promises.
    #[error("malformed response: {what}")]
    Malformed { what: String },
    /// The stream ended before the answer was complete.
    #[error("truncated response: {what}")]
    Truncated { what: String },
    /// The response grew past the configured bound.
    #[error("response larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The API reported an error inside a successful (200) stream.
    #[error("{kind}: {message}")]
    Api { kind: String, message: String },
    /// No connection, or it broke before a response started.
    #[error("transport: {0}")]
    Transport(String),
    /// The provider is misconfigured (bad URL, header, price table, rules file).
    #[error("configuration: {0}")]
    Config(String),
}

impl ProviderError {
    /// Whether the same call might succeed if made again later.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http { status, .. } => *status >= 500,
            Self::RateLimited { .. } | Self::Timeout(_) | Self::Transport(_) => true,
            Self::Truncated { .. } => true,
            Self::Api { kind, .. } => kind == "overloaded_error" || kind == "api_error",
            Self::Cancelled | Self::Malformed { .. } | Self::TooLarge { .. } => false,
            Self::Config(_) => false,
        }
    }

    pub(crate) fn malformed(what: impl Into<String>) -> Self {
        Self::Malformed { what: what.into() }
    }
}

impl From<RulesError> for ProviderError {
    fn from(e: RulesError) -> Self {
        Self::Config(e.to_string())
    }
}

impl From<PricingError> for ProviderError {
    fn from(e: PricingError) -> Self {
        Self::Config(e.to_string())
    }
}

fn fmt_after(d: &Option<Duration>) -> String {
    match d {
        Some(d) => format!(" (server asked to wait {}s)", d.as_secs()),
        None => String::new(),
    }
}
