//! HTTP proxy requests: `CONNECT host:port` tunnels and absolute-form requests
//! (`GET http://host/path`, as clients send plain-http URLs through `HTTP_PROXY`).
//! This module reads the bounded head and answers; [`super::http_head`] parses it.
//!
//! For an absolute-form request only the first request's destination is checked: the
//! connection is then spliced to that upstream, so later requests on the same connection
//! go there too, whatever their request line says. To make such reuse unlikely the
//! forwarded head asks for `Connection: close` (which also rules out `Upgrade` this way;
//! clients tunnel WebSockets with CONNECT).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::{Instant, timeout, timeout_at};

use super::http_head::{Request, parse_head};
use super::proxy::{Ctx, Verdict, linger_close, splice};
use super::upstream::{DialError, dial};

pub(crate) async fn serve(mut client: UnixStream, first: u8, ctx: &Ctx, deadline: Instant) {
    let max = ctx.limits.max_head;
    let mut buf = Vec::with_capacity(1024.min(max));
    buf.push(first);
    let head_len = match timeout_at(deadline, read_head(&mut client, &mut buf, max)).await {
        Ok(Ok(Some(n))) => n,
        Ok(Ok(None)) => return refuse(client, ctx, 431, "request head too large").await,
        Ok(Err(_)) => return refuse(client, ctx, 400, "incomplete request head").await,
        Err(_) => return refuse(client, ctx, 408, "timed out reading the request head").await,
    };
    let request = match parse_head(&buf[..head_len]) {
        Ok(r) => r,
        Err(reason) => return refuse(client, ctx, 400, reason).await,
    };
    let dest = match &request {
        Request::Connect(d) | Request::Forward(d, _) => d,
    };
    let upstream = match dial(dest, &ctx.allowlist, ctx.limits.connect_timeout).await {
        Ok(s) => s,
        Err(e) => {
            let (verdict, status) = match &e {
                DialError::Denied(_) => (Verdict::Denied, 403),
                DialError::ConnectTimeout(_) => (Verdict::Failed, 504),
                _ => (Verdict::Failed, 502),
            };
            return answer(client, ctx, verdict, status, &e.to_string()).await;
        }
    };
    ctx.record(Verdict::Allowed);
    let rest = &buf[head_len..];
    let limit = ctx.limits.connect_timeout;
    match request {
        Request::Connect(_) => {
            let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
            if client.write_all(ok).await.is_ok() {
                splice(client, upstream, rest, limit).await;
            }
        }
        Request::Forward(_, mut head) => {
            head.extend_from_slice(rest);
            splice(client, upstream, &head, limit).await;
        }
    }
}

async fn refuse(client: UnixStream, ctx: &Ctx, status: u16, reason: &str) {
    tracing::debug!(status, reason, "sandbox egress: bad HTTP proxy request");
    answer(client, ctx, Verdict::Failed, status, reason).await
}

/// Counts `verdict`, answers with `status` and a one-line body, and closes.
async fn answer(mut client: UnixStream, ctx: &Ctx, verdict: Verdict, status: u16, body: &str) {
    ctx.record(verdict);
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}\n",
        body.len() + 1
    );
    let write = client.write_all(response.as_bytes());
    if let Ok(Ok(())) = timeout(Duration::from_secs(1), write).await {
        linger_close(client).await;
    }
}

/// Reads until the blank line ending the head, without letting `buf` pass `max` bytes.
/// Returns the head's length (bytes after it are the start of what follows), or None if
/// no head fits.
pub(crate) async fn read_head(
    client: &mut UnixStream,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<usize>> {
    let mut chunk = [0u8; 4096];
    let mut scanned = 0;
    loop {
        if let Some(end) = head_end(buf, scanned) {
            return Ok(Some(end));
        }
        scanned = buf.len().saturating_sub(3);
        let room = max.saturating_sub(buf.len()).min(chunk.len());
        if room == 0 {
            return Ok(None);
        }
        match client.read(&mut chunk[..room]).await? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// End of the head (`\r\n\r\n` or a lenient `\n\n`), searching from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find_map(|i| {
        let tail = &buf[i..];
        if tail.starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if tail.starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}
