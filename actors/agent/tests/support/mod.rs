//! A loopback HTTP/1.1 server that plays a list of canned replies, one per connection,
//! and records the requests it got — enough of a model API for the providers' HTTP
//! code to run for real.
//!
//! Hand-written rather than a framework so a test controls the bytes: chunk borders
//! mid-event, a connection cut mid-stream, a server that goes quiet.

#![allow(dead_code)] // each test file uses a different part

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long the server waits for anything before giving up (bounds every loop).
const PATIENCE: Duration = Duration::from_secs(20);
const MAX_HEAD: usize = 64 << 10;
const MAX_BODY: usize = 4 << 20;

/// How a streamed reply ends.
#[derive(Clone, Debug)]
pub enum End {
    /// The final zero-length chunk, as a well-behaved server ends.
    Complete,
    /// The connection closes without the final chunk: a cut mid-stream.
    Cut,
    /// The server holds the connection open, silent, for this long.
    Stall(Duration),
}

#[derive(Clone, Debug)]
pub enum Reply {
    /// A plain response with a body.
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// A 200 event stream written as HTTP chunks, `gap` apart.
    Stream {
        chunks: Vec<String>,
        gap: Duration,
        end: End,
    },
}

impl Reply {
    pub fn stream(chunks: Vec<String>) -> Self {
        Self::Stream {
            chunks,
            gap: Duration::ZERO,
            end: End::Complete,
        }
    }

    pub fn status(status: u16, headers: &[(&str, &str)], body: &str) -> Self {
        Self::Status {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_string(),
        }
    }
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

pub struct MockServer {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl MockServer {
    /// Serves `replies` in order, one connection each, then stops listening.
    pub async fn start(replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        tokio::spawn(async move {
            for reply in replies {
                let Ok(Ok((conn, _))) = tokio::time::timeout(PATIENCE, listener.accept()).await
                else {
                    return;
                };
                let log = log.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(PATIENCE * 2, serve(conn, reply, log)).await;
                });
            }
        });
        Self { url, requests }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    pub fn hits(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

async fn serve(
    mut conn: TcpStream,
    reply: Reply,
    log: Arc<Mutex<Vec<Recorded>>>,
) -> std::io::Result<()> {
    let Some(recorded) = read_request(&mut conn).await? else {
        return Ok(());
    };
    log.lock().unwrap().push(recorded);
    match reply {
        Reply::Status {
            status,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} Mock\r\ncontent-length: {}\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("connection: close\r\n\r\n");
            conn.write_all(head.as_bytes()).await?;
            conn.write_all(body.as_bytes()).await?;
        }
        Reply::Stream { chunks, gap, end } => {
            conn.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                  cache-control: no-cache\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
            )
            .await?;
            for (i, chunk) in chunks.iter().enumerate() {
                if i > 0 && !gap.is_zero() {
                    tokio::time::sleep(gap).await;
                }
                let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
                conn.write_all(framed.as_bytes()).await?;
                conn.flush().await?;
            }
            match end {
                End::Complete => conn.write_all(b"0\r\n\r\n").await?,
                End::Cut => {}
                End::Stall(d) => tokio::time::sleep(d).await,
            }
        }
    }
    conn.shutdown().await
}

async fn read_request(conn: &mut TcpStream) -> std::io::Result<Option<Recorded>> {
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let n = conn.read(&mut piece).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&piece[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
        .min(MAX_BODY);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut piece).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&piece[..n]);
    }
    Ok(Some(Recorded {
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: Instant::now(),
    }))
}

/// `data: …` events, each ended by a blank line (the OpenAI framing).
pub fn data_events(payloads: &[String]) -> Vec<String> {
    payloads.iter().map(|p| format!("data: {p}\n\n")).collect()
}

/// `event: …` + `data: …` events (the Anthropic framing); the event name is read from
/// the payload's `type`.
pub fn typed_events(payloads: &[Value]) -> Vec<String> {
    payloads
        .iter()
        .map(|p| format!("event: {}\ndata: {p}\n\n", p["type"].as_str().unwrap_or("")))
        .collect()
}
