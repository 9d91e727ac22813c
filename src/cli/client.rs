//! A small client of a node's HTTP API (`docs/guides/api.md`), for the CLI's commands
//! that talk to a running node.
//!
//! Whatever answers at the URL is outside input: bodies are read up to a bound, JSON that
//! does not fit is an error rather than a panic, and text a server sends is made printable
//! before it reaches a terminal. Every request has a bounded connect and idle time; only
//! streamed turns have no total bound, since they end when the server ends them.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;

use super::table::printable;

/// Bound on connecting to the node.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on a whole request and, for a stream, on a silence: a turn may take this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(330);
/// Bound on a JSON answer (a page of 200 agents is far smaller).
const MAX_BODY_BYTES: usize = 16 << 20;
/// How much of a body that is not the API's error shape is shown.
const EXCERPT_CHARS: usize = 200;

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
    pub fn from_response(
        status: StatusCode,
        body: &[u8],
        headers: &reqwest::header::HeaderMap,
    ) -> Self {
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
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
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
                message: printable(&error.message, usize::MAX),
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

/// Why a request to the node failed.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("{0}")]
    Api(Box<ApiError>),
    /// A `401` to a request that carried a token: the token is expired or revoked.
    #[error("{error}; log in again with `neuroflow-node login --url {url}`")]
    TokenRefused { error: Box<ApiError>, url: String },
    #[error("cannot reach the node at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{what}: the node did not answer within {} s", REQUEST_TIMEOUT.as_secs())]
    TimedOut { what: String },
    #[error("{what}: {reason}")]
    Transport { what: String, reason: String },
    #[error("{what}: the node's answer is not what this client expects: {reason}")]
    BadAnswer { what: String, reason: String },
}

/// A page of a list.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

/// The answer to a login.
#[derive(Debug, Deserialize)]
pub struct LoginAnswer {
    pub access_token: String,
    /// Seconds.
    pub expires_in: u64,
    pub role: String,
}

/// A client of one node, with the token it sends (if any).
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl ApiClient {
    /// A client of the node at `base` (an `http` or `https` URL that can have a path).
    pub fn new(base: Url, token: Option<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(REQUEST_TIMEOUT)
            // An API answer is never a redirect to follow: following would turn a POST
            // into a GET, or send the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("neuroflow-node/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ClientError::Transport {
                what: "cannot set up an HTTP client".into(),
                reason: describe(&err),
            })?;
        Ok(Self { http, base, token })
    }

    /// `/api/v1/` and `segments` under the node's URL, each segment percent-encoded.
    pub fn endpoint(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        url
    }

    /// Sends a request; a status other than 2xx is the node's [`ApiError`]. Without
    /// `stream`, the whole exchange is bounded by [`REQUEST_TIMEOUT`].
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        stream: bool,
    ) -> Result<Response, ClientError> {
        let what = format!("{method} {}", url.path());
        let mut request = self.http.request(method, url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request = if stream {
            request.header(ACCEPT, "text/event-stream")
        } else {
            request
                .header(ACCEPT, "application/json")
                .timeout(REQUEST_TIMEOUT)
        };
        let mut response = request
            .send()
            .await
            .map_err(|err| self.failed(&what, &err))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = read_bounded(&mut response, MAX_BODY_BYTES)
            .await
            .unwrap_or_default();
        let error = Box::new(ApiError::from_response(status, &body, response.headers()));
        Err(match (&self.token, status) {
            (Some(_), StatusCode::UNAUTHORIZED) => ClientError::TokenRefused {
                error,
                url: self.node_url(),
            },
            _ => ClientError::Api(error),
        })
    }

    /// Sends a request and parses its JSON answer as `T`.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<T, ClientError> {
        let what = format!("{method} {}", url.path());
        let response = self.send(method, url, body, false).await?;
        self.read_json(response, &what).await
    }

    /// The JSON answer of `response` as `T`.
    pub async fn read_json<T: DeserializeOwned>(
        &self,
        mut response: Response,
        what: &str,
    ) -> Result<T, ClientError> {
        let body = read_bounded(&mut response, MAX_BODY_BYTES)
            .await
            .map_err(|err| match err {
                BodyError::Read(err) => self.failed(what, &err),
                BodyError::TooLarge => ClientError::BadAnswer {
                    what: what.into(),
                    reason: format!("larger than {MAX_BODY_BYTES} bytes"),
                },
            })?;
        serde_json::from_slice(&body).map_err(|err| ClientError::BadAnswer {
            what: what.into(),
            reason: err.to_string(),
        })
    }

    /// The next piece of a streamed answer; `None` once the node has ended it.
    pub async fn chunk(
        &self,
        response: &mut Response,
        what: &str,
    ) -> Result<Option<Bytes>, ClientError> {
        response
            .chunk()
            .await
            .map_err(|err| self.failed(what, &err))
    }

    /// `POST /api/v1/auth/login`.
    pub async fn login(&self, username: &str, password: &str) -> Result<LoginAnswer, ClientError> {
        let body = serde_json::json!({"username": username, "password": password});
        self.json(Method::POST, self.endpoint(&["auth", "login"]), Some(&body))
            .await
    }

    /// The node's URL as the user gave it, for messages.
    pub fn node_url(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_string()
    }

    fn failed(&self, what: &str, err: &reqwest::Error) -> ClientError {
        if err.is_timeout() {
            ClientError::TimedOut { what: what.into() }
        } else if err.is_connect() {
            ClientError::Unreachable {
                url: self.node_url(),
                reason: root_cause(err),
            }
        } else {
            ClientError::Transport {
                what: what.into(),
                reason: describe(err),
            }
        }
    }
}

enum BodyError {
    Read(reqwest::Error),
    TooLarge,
}

/// The body of `response`, refused past `limit` bytes.
async fn read_bounded(response: &mut Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Whether `response` is JSON rather than an event stream.
pub fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// A reqwest error with its causes, which its `Display` alone leaves out.
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The innermost causes of a connection failure ("tcp connect error: Connection
/// refused", "dns error: ..."): the outer ones only repeat the URL.
fn root_cause(err: &reqwest::Error) -> String {
    let mut causes = vec![err.to_string()];
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let from = causes.len().saturating_sub(2);
    causes[from..].join(": ")
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderMap, HeaderValue};

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

    #[test]
    fn endpoints_keep_the_base_path_and_encode_names() {
        let client = ApiClient::new(Url::parse("http://h:1/prefix/").unwrap(), None).unwrap();
        let url = client.endpoint(&["agents", "a b/c", "messages"]);
        assert_eq!(
            url.as_str(),
            "http://h:1/prefix/api/v1/agents/a%20b%2Fc/messages"
        );
        let client = ApiClient::new(Url::parse("http://h:1").unwrap(), None).unwrap();
        assert_eq!(
            client.endpoint(&["agents"]).as_str(),
            "http://h:1/api/v1/agents"
        );
        assert_eq!(client.node_url(), "http://h:1");
    }
}
