//! Opening one session with a server: start its process or reach its URL, run the
//! `initialize` handshake, and read its tool list.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use neuroflow_kit::recipient::BoxFuture;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::RoleClient;
use rmcp::model::Tool as McpTool;
use rmcp::service::{RunningService, serve_client_with_ct};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use tokio::io::AsyncRead;
use tokio_util::codec::{FramedRead, LinesCodec};
use tokio_util::sync::CancellationToken;

use super::config::{McpServerConfig, TransportKind};
use super::handler::NodeClient;
use super::launch::{Launcher, ServerProcess};
use super::link::{Link, Opened};

/// Longest stderr line kept; longer ones are cut.
const STDERR_LINE_MAX: usize = 2048;

/// An open session.
pub(crate) struct Session {
    pub running: RunningService<RoleClient, NodeClient>,
    /// Cancelling it closes the session (and ends a stdio server's process).
    pub cancel: CancellationToken,
    /// The stdio server's process.
    pub process: Option<Box<dyn ServerProcess>>,
    pub opened: Opened,
    pub tools: Vec<McpTool>,
}

/// Opens a session with the server of `link`, per `config`, within its startup timeout.
pub(crate) async fn open(
    link: Arc<Link>,
    generation: u64,
    config: Arc<McpServerConfig>,
    kind: TransportKind,
    launcher: Launcher,
    client: NodeClient,
) -> Result<Session, String> {
    let timeout = config.startup_timeout();
    // In a task of its own: dropping it (timeout) drops a half-open session and its process.
    let opening =
        tokio::spawn(
            async move { open_now(&link, generation, &config, kind, &launcher, client).await },
        );
    match tokio::time::timeout(timeout, opening).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(format!("opening the session failed: {join}")),
        Err(_) => Err(format!(
            "the session did not open within {} ms",
            timeout.as_millis()
        )),
    }
}

async fn open_now(
    link: &Arc<Link>,
    generation: u64,
    config: &McpServerConfig,
    kind: TransportKind,
    launcher: &Launcher,
    client: NodeClient,
) -> Result<Session, String> {
    let cancel = CancellationToken::new();
    let (running, pid, process) = match kind {
        TransportKind::Stdio => {
            let spawned = launcher(config).await?;
            if let Some(stderr) = spawned.stderr {
                tokio::spawn(keep_stderr(link.clone(), generation, stderr));
            }
            let transport = (spawned.stdout, spawned.stdin);
            let running = serve(client, transport, cancel.clone()).await?;
            (running, spawned.pid, Some(spawned.process))
        }
        TransportKind::Http => {
            let transport = http_transport(config)?;
            let running = serve(client, transport, cancel.clone()).await?;
            (running, None, None)
        }
    };
    let info = running.peer().peer_info();
    let opened = Opened {
        peer: running.peer().clone(),
        pid,
        protocol_version: info.as_ref().map(|i| i.protocol_version.to_string()),
        server: info
            .as_ref()
            .and_then(|i| i.server_info.as_ref())
            .map(|s| format!("{} {}", s.name, s.version)),
    };
    let tools = list_tools(&running).await?;
    Ok(Session {
        running,
        cancel,
        process,
        opened,
        tools,
    })
}

type Running = RunningService<RoleClient, NodeClient>;

/// The `initialize` handshake over `transport`. Boxed as `Send`: the SDK's future is, but
/// the compiler cannot prove it for every lifetime inside a spawned task otherwise.
fn serve<T, E, A>(
    client: NodeClient,
    transport: T,
    cancel: CancellationToken,
) -> BoxFuture<'static, Result<Running, String>>
where
    T: rmcp::transport::IntoTransport<RoleClient, E, A> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    Box::pin(async move {
        serve_client_with_ct(client, transport, cancel)
            .await
            .map_err(|e| format!("initialize failed: {e}"))
    })
}

/// Every tool of the server, across pages; none when it offers no tools.
pub(crate) async fn list_tools(
    running: &RunningService<RoleClient, NodeClient>,
) -> Result<Vec<McpTool>, String> {
    let offers_tools = running
        .peer()
        .peer_info()
        .is_none_or(|info| info.capabilities.tools.is_some());
    if !offers_tools {
        return Ok(Vec::new());
    }
    let peer = running.peer().clone();
    let listing: BoxFuture<'static, _> = Box::pin(async move { peer.list_all_tools().await });
    listing.await.map_err(|e| format!("tools/list failed: {e}"))
}

fn http_transport(
    config: &McpServerConfig,
) -> Result<StreamableHttpClientTransport<reqwest::Client>, String> {
    let url = config.url.as_deref().unwrap_or_default();
    let mut headers = HashMap::new();
    for (name, value) in &config.headers {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|e| format!("header name {name:?}: {e}"))?;
        let value =
            HeaderValue::try_from(value.as_str()).map_err(|e| format!("header {name}: {e}"))?;
        headers.insert(name, value);
    }
    let mut transport = StreamableHttpClientTransportConfig::with_uri(url).custom_headers(headers);
    if let Some(token) = &config.bearer_token {
        transport = transport.auth_header(token.clone());
    }
    let client = reqwest::Client::builder()
        .build()
        .map_err(|e| format!("http client: {e}"))?;
    Ok(StreamableHttpClientTransport::with_client(
        client, transport,
    ))
}

/// Logs a stdio server's stderr and keeps its last lines, to say why it died.
async fn keep_stderr(link: Arc<Link>, generation: u64, stderr: Box<dyn AsyncRead + Send + Unpin>) {
    let mut lines = FramedRead::new(stderr, LinesCodec::new_with_max_length(STDERR_LINE_MAX));
    while let Some(line) = lines.next().await {
        let line = match line {
            Ok(line) => line,
            // Too long: the codec skips to the next newline.
            Err(tokio_util::codec::LinesCodecError::MaxLineLengthExceeded) => {
                "[a line too long to keep]".into()
            }
            Err(_) => break,
        };
        tracing::debug!(mcp.server = link.name(), stderr = %line);
        link.note_stderr(generation, line);
    }
}
