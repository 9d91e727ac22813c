//! A small client of a node's HTTP API (`docs/guides/api.md`), for the CLI's commands
//! that talk to a running node.
//!
//! Whatever answers at the URL is outside input: bodies are read up to a bound, JSON that
//! does not fit is an error rather than a panic, and text a server sends is made printable
//! before it reaches a terminal. Every request has a bounded connect and idle time; only
//! streamed turns have no total bound, since they end when the server ends them.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;

use super::api_error::ApiError;

/// Bound on connecting to the node.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on a whole request and, for a stream, on a silence: a turn may take this long.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(330);
/// Bound on a JSON answer (a page of 200 agents is far smaller).
const MAX_BODY_BYTES: usize = 16 << 20;

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
                reason: neuroflow_kit::error_chain(&err),
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
        // Before the timeout test: a connect timeout is both, and its bound is not
        // REQUEST_TIMEOUT.
        if err.is_connect() {
            ClientError::Unreachable {
                url: self.node_url(),
                reason: root_cause(err),
            }
        } else if err.is_timeout() {
            ClientError::TimedOut { what: what.into() }
        } else {
            ClientError::Transport {
                what: what.into(),
                reason: neuroflow_kit::error_chain(err),
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
    use super::*;

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
