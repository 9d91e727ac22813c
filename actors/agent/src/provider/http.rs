//! HTTP plumbing shared by the providers that stream server-sent events: timeouts,
//! retries, cancellation and bounded reading.

use std::future::Future;
use std::time::{Duration, SystemTime};

use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::error::ProviderError;
use super::retry::{RetryPolicy, is_retryable_status, parse_retry_after};
use crate::sse::{SseEvent, SseParser};

/// How much of an error body is kept for the message.
const ERROR_BODY_EXCERPT: usize = 2048;

/// Timeouts, size bounds and retries of an HTTP provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpOptions {
    /// Longest wait for a TCP (and TLS) connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Longest a whole call may take, retries and streaming included, in milliseconds.
    pub total_timeout_ms: u64,
    /// Longest the server may stay silent mid-response, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Most bytes one response body may have.
    pub max_response_bytes: usize,
    /// Most bytes one server-sent event may have.
    pub max_event_bytes: usize,
    pub retry: RetryPolicy,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout_ms: 10_000,
            total_timeout_ms: 600_000,
            idle_timeout_ms: 120_000,
            max_response_bytes: 32 << 20,
            max_event_bytes: 1 << 20,
            retry: RetryPolicy::default(),
        }
    }
}

pub(crate) struct HttpClient {
    client: reqwest::Client,
    opts: HttpOptions,
}

impl HttpClient {
    pub fn new(opts: HttpOptions, headers: HeaderMap) -> Result<Self, ProviderError> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(opts.connect_timeout_ms))
            .read_timeout(Duration::from_millis(opts.idle_timeout_ms))
            .default_headers(headers)
            .build()
            .map_err(|e| ProviderError::Config(neuroflow_kit::error_chain(&e)))?;
        Ok(Self { client, opts })
    }

    /// Runs `call` until it ends, the total timeout passes or `cancel` fires.
    pub async fn guard<T>(
        &self,
        cancel: &CancellationToken,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        let total = Duration::from_millis(self.opts.total_timeout_ms);
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(ProviderError::Cancelled),
            r = tokio::time::timeout(total, call) => r.unwrap_or(Err(ProviderError::Timeout(total))),
        }
    }

    /// POSTs `body` as JSON and returns the first successful response, retrying 429,
    /// 5xx and failed connections as the policy allows.
    pub async fn post(
        &self,
        url: &str,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, ProviderError> {
        let policy = &self.opts.retry;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut request = self.client.post(url).json(body);
            // The provider (or a gateway in front of it) may trace too: it joins the
            // call's trace.
            for (name, value) in neuroflow_kit::propagation::trace_headers() {
                request = request.header(name, value);
            }
            let (failure, retry_after) = match request.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let body = excerpt(resp).await;
                    let err = if status == 429 {
                        ProviderError::RateLimited {
                            retry_after,
                            attempts: attempt,
                        }
                    } else {
                        ProviderError::Http {
                            status,
                            body,
                            attempts: attempt,
                        }
                    };
                    if !is_retryable_status(status) {
                        return Err(err);
                    }
                    (err, retry_after)
                }
                Err(e) if e.is_builder() => {
                    return Err(ProviderError::Config(neuroflow_kit::error_chain(&e)));
                }
                Err(e) if e.is_timeout() => {
                    // No connection in time, or no response headers within the idle
                    // timeout (a local server loading a model can be that slow).
                    let ms = if e.is_connect() {
                        self.opts.connect_timeout_ms
                    } else {
                        self.opts.idle_timeout_ms
                    };
                    (ProviderError::Timeout(Duration::from_millis(ms)), None)
                }
                Err(e) => (
                    ProviderError::Transport(neuroflow_kit::error_chain(&e)),
                    None,
                ),
            };
            let Some(wait) = policy.delay(attempt, retry_after) else {
                return Err(failure);
            };
            tracing::warn!(%failure, attempt, wait_ms = wait.as_millis() as u64, "LLM request failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// Reads the event stream of `resp`, handing each event to `on_event` until it
    /// returns `true` (the answer is complete) or the body ends. Returns whether
    /// `on_event` said the answer was complete.
    pub async fn read_events(
        &self,
        mut resp: reqwest::Response,
        mut on_event: impl FnMut(SseEvent) -> Result<bool, ProviderError>,
    ) -> Result<bool, ProviderError> {
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if content_type.starts_with("application/json") {
            // A server that ignored `stream: true`, or an error document with a 200.
            return Err(ProviderError::malformed(format!(
                "expected an event stream, got {content_type}: {}",
                excerpt(resp).await
            )));
        }
        let mut parser = SseParser::new(self.opts.max_event_bytes);
        let mut events = Vec::new();
        let mut read = 0usize;
        loop {
            let chunk = resp.chunk().await.map_err(|e| {
                if e.is_timeout() {
                    ProviderError::Timeout(Duration::from_millis(self.opts.idle_timeout_ms))
                } else {
                    ProviderError::Truncated {
                        what: format!(
                            "the connection broke mid-stream: {}",
                            neuroflow_kit::error_chain(&e)
                        ),
                    }
                }
            })?;
            match &chunk {
                Some(bytes) => {
                    read += bytes.len();
                    if read > self.opts.max_response_bytes {
                        return Err(ProviderError::TooLarge {
                            limit: self.opts.max_response_bytes,
                        });
                    }
                    parser
                        .feed(bytes, &mut events)
                        .map_err(|e| ProviderError::malformed(e.to_string()))?;
                }
                None => parser.finish(&mut events),
            }
            for event in events.drain(..) {
                if on_event(event)? {
                    return Ok(true);
                }
            }
            if chunk.is_none() {
                return Ok(false);
            }
        }
    }
}

/// The start of an error body, lossily decoded, for a person to read.
async fn excerpt(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while buf.len() < ERROR_BODY_EXCERPT {
        match resp.chunk().await {
            Ok(Some(bytes)) => buf.extend_from_slice(&bytes),
            _ => break,
        }
    }
    buf.truncate(ERROR_BODY_EXCERPT);
    String::from_utf8_lossy(&buf).trim().to_string()
}
