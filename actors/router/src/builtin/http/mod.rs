//! `http.fetch`: GET or POST to allowlisted hosts, with size and time limits.
//!
//! The URL's host must be on the allowlist, and so must every redirect's (a redirect
//! elsewhere fails the call rather than being followed). Responses are read chunk by chunk
//! up to the size limit, and the whole exchange runs under the call's time limit. The
//! client uses no proxy from the environment and does no decompression, so the byte limit
//! is the limit of what is read off the wire.

mod allow;
mod resolve;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use neuroflow_kit::protocol::router::ToolOutput;
use neuroflow_kit::recipient::BoxFuture;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Client, Method, Url, redirect};
use serde::Deserialize;
use serde_json::{Value, json};

pub use allow::Allowlist;

use crate::builtin::text::capped_text;
use crate::tool::{Tool, ToolCtx, ToolExec, spec};

/// Time kept back from the router's deadline, so the tool reports its own timeout.
const MARGIN: Duration = Duration::from_millis(50);

/// Request headers a model may not set: they would change where or how the request goes.
const FORBIDDEN_HEADERS: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-authorization",
];

/// Limits of `http.fetch`.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Allowed hosts (see [`Allowlist`]); empty allows nothing.
    pub allow: Vec<String>,
    pub max_response_bytes: usize,
    pub max_request_bytes: usize,
    pub timeout: Duration,
    pub max_redirects: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            max_response_bytes: 1 << 20,
            max_request_bytes: 256 << 10,
            timeout: Duration::from_secs(30),
            max_redirects: 5,
        }
    }
}

/// Why `http.fetch` could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HttpToolError {
    #[error("{0}")]
    Allowlist(String),
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The `http.fetch` tool.
pub fn tool(config: HttpConfig) -> Result<Tool, HttpToolError> {
    let allow = Arc::new(Allowlist::parse(&config.allow).map_err(HttpToolError::Allowlist)?);
    let (policy_allow, max_redirects) = (allow.clone(), config.max_redirects);
    let policy = redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= max_redirects {
            attempt.error(format!("more than {max_redirects} redirects"))
        } else if policy_allow.permits(attempt.url()) {
            attempt.follow()
        } else {
            let to = attempt.url().host_str().unwrap_or("?").to_string();
            attempt.error(format!("redirect to {to} refused: not on the allowlist"))
        }
    });
    let client = Client::builder()
        .redirect(policy)
        .dns_resolver(Arc::new(resolve::Screening))
        .no_proxy()
        .referer(false)
        .timeout(config.timeout)
        .connect_timeout(config.timeout.min(Duration::from_secs(10)))
        .build()?;
    let mut spec = spec(
        "http.fetch",
        "Fetch a URL (GET or POST) from an allowlisted host; returns status and body text.",
        json!({
            "type": "object",
            "properties": {
                "url": {"type": "string"},
                "method": {"type": "string", "enum": ["GET", "POST"]},
                "headers": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "maxProperties": 32
                },
                "body": {"type": "string"},
                "timeout_ms": {"type": "integer", "minimum": 1},
                "max_bytes": {"type": "integer", "minimum": 1}
            },
            "required": ["url"],
            "additionalProperties": false
        }),
    );
    spec.provider = "builtin".into();
    Ok(Tool::new(
        spec,
        Fetch {
            client,
            allow,
            config,
        },
    ))
}

#[derive(Deserialize)]
struct FetchArgs {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    timeout_ms: Option<u64>,
    max_bytes: Option<usize>,
}

struct Fetch {
    client: Client,
    allow: Arc<Allowlist>,
    config: HttpConfig,
}

impl ToolExec for Fetch {
    fn call(&self, args: Value, ctx: ToolCtx) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            match self.fetch(args, &ctx).await {
                Ok(output) => output,
                Err(message) => ToolOutput::error(message),
            }
        })
    }
}

impl Fetch {
    async fn fetch(&self, args: Value, ctx: &ToolCtx) -> Result<ToolOutput, String> {
        let args: FetchArgs = serde_json::from_value(args).map_err(|e| e.to_string())?;
        let url = Url::parse(&args.url).map_err(|e| format!("invalid URL: {e}"))?;
        if !self.allow.permits(&url) {
            let host = url.host_str().unwrap_or("(none)");
            return Err(format!(
                "{host} is not on the allowlist (or not http/https)"
            ));
        }
        let method = match args.method.as_deref() {
            None | Some("GET") => Method::GET,
            Some("POST") => Method::POST,
            Some(other) => return Err(format!("method {other} is not allowed")),
        };
        let mut request = self.client.request(method, url);
        // The caller's trace goes with the request, unless the model set its own headers.
        for (name, value) in neuroflow_kit::propagation::trace_headers() {
            if !args.headers.keys().any(|h| h.eq_ignore_ascii_case(name)) {
                request = request.header(name, value);
            }
        }
        for (name, value) in &args.headers {
            if FORBIDDEN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(format!("header {name} may not be set"));
            }
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
            let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
            request = request.header(name, value);
        }
        if let Some(body) = args.body {
            if body.len() > self.config.max_request_bytes {
                let limit = self.config.max_request_bytes;
                return Err(format!(
                    "the body is {} bytes; the limit is {limit}",
                    body.len()
                ));
            }
            request = request.body(body);
        }
        let cap = args.max_bytes.map_or(self.config.max_response_bytes, |m| {
            m.min(self.config.max_response_bytes)
        });
        let limit = args
            .timeout_ms
            .map_or(self.config.timeout, Duration::from_millis)
            .min(self.config.timeout)
            .min(ctx.remaining().saturating_sub(MARGIN));
        let exchange = async {
            let mut response = request.send().await?;
            let (status, url) = (response.status(), response.url().to_string());
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let mut body = Vec::new();
            while body.len() <= cap {
                let Some(chunk) = response.chunk().await? else {
                    break;
                };
                // Keep one byte past the cap: enough to know the body was cut.
                let room = cap + 1 - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok::<_, reqwest::Error>((status, url, content_type, body))
        };
        let (status, url, content_type, body) = tokio::time::timeout(limit, exchange)
            .await
            .map_err(|_| format!("timed out after {} ms", limit.as_millis()))?
            .map_err(|e| describe(&e))?;
        let (text, truncated) = capped_text(&body, cap);
        let output = json!({
            "status": status.as_u16(),
            "url": url,
            "content_type": content_type,
            "truncated": truncated,
            "body": text,
        })
        .to_string();
        Ok(if status.is_client_error() || status.is_server_error() {
            ToolOutput::error(output)
        } else {
            ToolOutput::ok(output)
        })
    }
}

/// A reqwest error with its causes (where the useful part, like a refused redirect, is).
fn describe(err: &reqwest::Error) -> String {
    neuroflow_kit::error_chain(err).chars().take(1000).collect()
}
