//! The error a node answers with, as a person reads it: `404 not_found: no agent named
//! "x"`. The node's shape is `{"error": {"code", "message", "field"?}}`; anything else (a
//! proxy's page, something that is not a node) is shown as a short excerpt, and text from
//! either is made printable before it reaches a terminal.

use std::fmt;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue, LOCATION, RETRY_AFTER};
use serde::Deserialize;
use thiserror::Error;

use super::table::printable;

/// How much of a body that is not the API's error shape is shown.
const EXCERPT_CHARS: usize = 200;
/// How much of the node's own message is shown (they are a line or two).
const MESSAGE_CHARS: usize = 2000;

/// An error the node answered with: its status and the API's error shape, or what could
/// be made of a body that is not that shape.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// The request field at fault, when the node names one.
    pub field: Option<String>,
    /// `Retry-After` of a `429`, or where a redirect points.
    pub hint: Option<String>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)?;
        // The node usually starts the message with the field already.
        if let Some(field) = self.field.as_deref().filter(|f| !self.message.contains(*f)) {
            write!(f, " (field {field})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

impl ApiError {
    /// The error a response with `status` and `body` stands for.
    pub fn from_response(status: StatusCode, body: &[u8], headers: &HeaderMap) -> Self {
        #[derive(Deserialize)]
        struct Shape {
            error: Detail,
        }
        #[derive(Deserialize)]
        struct Detail {
            code: String,
            message: String,
            field: Option<String>,
        }
        let header = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(|v| printable(v, EXCERPT_CHARS))
        };
        let hint = if status == StatusCode::TOO_MANY_REQUESTS {
            header(RETRY_AFTER).map(|secs| format!("retry after {secs} s"))
        } else if status.is_redirection() {
            header(LOCATION).map(|to| format!("redirected to {to}; give that URL with --url"))
        } else {
            None
        };
        match serde_json::from_slice::<Shape>(body) {
            Ok(Shape { error }) => Self {
                status: status.as_u16(),
                code: printable(&error.code, EXCERPT_CHARS),
                message: printable(&error.message, MESSAGE_CHARS),
                field: error.field.map(|f| printable(&f, EXCERPT_CHARS)),
                hint,
            },
            // Not the node's shape: a proxy's page, or not a node at all.
            Err(_) => Self {
                status: status.as_u16(),
                code: status
                    .canonical_reason()
                    .unwrap_or("error")
                    .to_ascii_lowercase()
                    .replace(' ', "_"),
                message: match printable(&String::from_utf8_lossy(body), EXCERPT_CHARS) {
                    text if text.trim().is_empty() => "(no body)".to_string(),
                    text => text.trim().to_string(),
                },
                field: None,
                hint,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(status: u16, body: &str, headers: &HeaderMap) -> String {
        let status = StatusCode::from_u16(status).unwrap();
        ApiError::from_response(status, body.as_bytes(), headers).to_string()
    }

    #[test]
    fn the_error_shape_reads_as_status_code_and_message() {
        let none = HeaderMap::new();
        let body = r#"{"error":{"code":"not_found","message":"no agent named \"x\""}}"#;
        assert_eq!(
            rendered(404, body, &none),
            r#"404 not_found: no agent named "x""#
        );
        let body = r#"{"error":{"code":"invalid","message":"name: use letters","field":"name"}}"#;
        assert_eq!(rendered(400, body, &none), "400 invalid: name: use letters");
        let body =
            r#"{"error":{"code":"invalid","message":"too big","field":"budget.max_tokens"}}"#;
        assert_eq!(
            rendered(400, body, &none),
            "400 invalid: too big (field budget.max_tokens)"
        );
    }

    #[test]
    fn retry_after_and_redirects_are_told() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        let body = r#"{"error":{"code":"rate_limited","message":"too many login attempts"}}"#;
        assert_eq!(
            rendered(429, body, &headers),
            "429 rate_limited: too many login attempts (retry after 30 s)"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            LOCATION,
            HeaderValue::from_static("https://node/api/v1/agents"),
        );
        let text = rendered(301, "", &headers);
        assert!(
            text.starts_with("301 moved_permanently: (no body)"),
            "{text}"
        );
        assert!(text.contains("https://node/api/v1/agents"), "{text}");
    }

    #[test]
    fn other_bodies_are_shown_short_and_harmless() {
        let none = HeaderMap::new();
        let page = format!("<html>\n\x1b[31mBad gateway{}</html>", "x".repeat(1000));
        let text = rendered(502, &page, &none);
        assert!(
            text.starts_with("502 bad_gateway: <html> ?[31mBad gateway"),
            "{text}"
        );
        assert!(text.ends_with('…'), "{text}");
        assert!(!text.contains('\x1b') && !text.contains('\n'), "{text:?}");
        // A shape with the wrong types is not the shape.
        let text = rendered(500, r#"{"error":{"code":5}}"#, &none);
        assert!(text.starts_with("500 internal_server_error: {"), "{text}");
    }
}
