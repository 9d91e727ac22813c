//! The node's MCP face, driven by the SDK's own client: over streamable HTTP (a node's
//! `/mcp` route, and an embedded node's tools through the bridge) and over stdio
//! (`neuroflow-node mcp serve`). Every wait is bounded; everything listens on loopback.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use neuroflow::api::mcp::{HttpSettings, McpHttp, filter};
use neuroflow::auth::{Role, TokenIssuer};
use neuroflow::config::Secret;
use neuroflow::{Config, Node};
use neuroflow_router::mcp::serve::{McpFace, ToolsCatalog};
use neuroflow_router::{Tools, spec, tool_fn};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ContentBlock,
    ErrorCode, Implementation, JsonObject, ProtocolVersion, RequestMetaObject,
};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceError, ServiceExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

type Client = RunningService<RoleClient, ClientConfig>;

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {WAIT:?}"))
}

fn client_config() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("face-test", "1.0.0"),
    )
    // The SDK's default is the initialize-less 2026-07-28, which the face does not speak.
    .with_protocol_version(ProtocolVersion::V_2025_11_25)
}

async fn connect_http(url: &str, token: Option<&str>) -> Client {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    if let Some(token) = token {
        config = config.auth_header(token);
    }
    let transport = StreamableHttpClientTransport::from_config(config);
    within("initialize over HTTP", client_config().serve(transport))
        .await
        .expect("the face accepts the session")
}

fn node_config(data_dir: &Path) -> Config {
    let mut config = Config::default();
    config.node.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    config.node.data_dir = data_dir.to_path_buf();
    config.mcp.serve.http = true;
    config.auth.jwt_secret = Some(Secret(JWT_SECRET.into()));
    config
}

/// The node's HS256 secret in these tests, so that they can mint tokens.
const JWT_SECRET: &str = "face-test-secret-face-test-secret-012345";

fn token(role: Role) -> String {
    TokenIssuer::hs256(JWT_SECRET.as_bytes(), Duration::from_secs(600))
        .unwrap()
        .issue("face-test", role)
        .unwrap()
        .token
}

/// `test.echo` (its text), `test.trace` (the traceparent it ran under), `test.caller`.
fn register_test_tools(tools: &Tools) {
    let none = json!({"type": "object", "properties": {}});
    tools
        .register(tool_fn(
            spec(
                "test.echo",
                "Echoes its text.",
                json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
            ),
            |args, _ctx| async move { args["text"].as_str().unwrap_or_default().to_string() },
        ))
        .unwrap();
    tools
        .register(tool_fn(
            spec(
                "test.trace",
                "The traceparent the call ran under.",
                none.clone(),
            ),
            |_args, ctx| async move {
                ctx.trace
                    .map_or_else(|| "none".to_string(), |t| t.traceparent_header())
            },
        ))
        .unwrap();
    tools
        .register(tool_fn(
            spec("test.caller", "Who the call was made for.", none),
            |_args, ctx| async move { ctx.caller.unwrap_or_else(|| "none".into()) },
        ))
        .unwrap();
}

fn call(name: &str, arguments: Value) -> CallToolRequestParams {
    let arguments: JsonObject = match arguments {
        Value::Object(map) => map,
        _ => JsonObject::new(),
    };
    CallToolRequestParams::new(name.to_string()).with_arguments(arguments)
}

fn text(result: &CallToolResult) -> &str {
    match result.content.first() {
        Some(ContentBlock::Text(text)) => &text.text,
        other => panic!("not a text result: {other:?}"),
    }
}

async fn call_tool(client: &Client, params: CallToolRequestParams) -> CallToolResult {
    let name = params.name.to_string();
    within(&format!("tools/call {name}"), client.call_tool(params))
        .await
        .unwrap_or_else(|e| panic!("tools/call {name}: {e}"))
}

fn error_code(outcome: Result<impl std::fmt::Debug, ServiceError>) -> ErrorCode {
    match outcome {
        Err(ServiceError::McpError(error)) => error.code,
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

async fn tool_names(client: &Client) -> Vec<String> {
    let tools = within("tools/list", client.list_all_tools())
        .await
        .expect("tools/list");
    assert!(
        tools
            .iter()
            .all(|t| t.description.as_deref().is_some_and(|d| !d.is_empty())),
        "every tool is described: {tools:?}"
    );
    let mut names: Vec<String> = tools.into_iter().map(|t| t.name.to_string()).collect();
    names.sort();
    names
}

/// One raw HTTP/1.1 request; the status code and the whole answer.
async fn raw_http(addr: SocketAddr, request: &str) -> (u16, String) {
    within("a raw HTTP exchange", async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        // `Connection: close` in every request: the server ends the answer by closing.
        stream.read_to_end(&mut answer).await.expect("read");
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let status = answer
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {answer:?}"));
        (status, answer)
    })
    .await
}

/// An initialize request to `path` with `host`, as an operator.
fn initialize_post(host: &str, path: &str) -> String {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"rebinding-test","version":"1.0.0"}}}"#;
    format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nOrigin: http://{host}\r\nAuthorization: Bearer {}\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        token(Role::Operator),
        body.len()
    )
}

#[tokio::test]
async fn a_node_serves_its_tools_at_mcp() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = node_config(dir.path());
    config.node.shutdown_timeout_secs = 60;
    let node = within("node start", Node::start(&config))
        .await
        .expect("the node starts");
    register_test_tools(node.tools());
    let addr = node.local_addr().expect("the node listens");
    let url = format!("http://{addr}/mcp");
    // The face acts with the node's tools: no token, or a viewer's, is refused.
    for (token, status) in [(None, "401"), (Some(token(Role::Viewer)), "403")] {
        let transport = StreamableHttpClientTransportConfig::with_uri(url.clone());
        let transport = match &token {
            Some(token) => transport.auth_header(token.clone()),
            None => transport,
        };
        let refused = client_config()
            .serve(StreamableHttpClientTransport::from_config(transport))
            .await;
        let error = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains(status), "{status}: {error}");
    }
    let client = connect_http(&url, Some(&token(Role::Operator))).await;

    let info = client.peer_info().expect("initialized");
    assert_eq!(info.protocol_version, ProtocolVersion::V_2025_11_25);
    let server = info.server_info.as_ref().expect("serverInfo");
    assert_eq!(server.name, "neuroflow");
    assert!(info.capabilities.tools.is_some());
    assert!(info.capabilities.resources.is_none() && info.capabilities.prompts.is_none());

    let names = tool_names(&client).await;
    for expected in ["time.now", "fs.read", "test.echo", "test.trace"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }

    let echoed = call_tool(&client, call("test.echo", json!({"text": "hello"}))).await;
    assert_eq!(text(&echoed), "hello");
    assert_ne!(echoed.is_error, Some(true));
    let now = call_tool(&client, call("time.now", json!({}))).await;
    assert_ne!(now.is_error, Some(true), "{now:?}");
    assert!(!text(&now).is_empty());
    let caller = call_tool(&client, call("test.caller", json!({}))).await;
    assert_eq!(text(&caller), "mcp");

    // Arguments the schema refuses: a result the client's model can read, not a crash.
    let refused = call_tool(&client, call("test.echo", json!({"text": 7}))).await;
    assert_eq!(refused.is_error, Some(true));
    assert!(text(&refused).contains("invalid arguments"), "{refused:?}");

    let unknown = within(
        "unknown tool",
        client.call_tool(call("no.such_tool", json!({}))),
    )
    .await;
    assert_eq!(error_code(unknown), ErrorCode::INVALID_PARAMS);
    let prompts = within("prompts/list", client.list_prompts(None)).await;
    assert_eq!(error_code(prompts), ErrorCode::METHOD_NOT_FOUND);

    // The caller's trace continues into the tool.
    let mut meta = RequestMetaObject::new();
    meta.set_traceparent(TRACEPARENT);
    let mut traced = call("test.trace", json!({}));
    traced.meta = Some(meta);
    let seen = call_tool(&client, traced).await;
    assert!(
        text(&seen).starts_with(&format!("00-{TRACE_ID}-")),
        "the tool ran in the caller's trace: {seen:?}"
    );
    let untraced = call_tool(&client, call("test.trace", json!({}))).await;
    assert!(!text(&untraced).contains(TRACE_ID), "{untraced:?}");

    // DNS rebinding: a foreign Host is refused, the node's own is served.
    let (status, answer) = raw_http(addr, &initialize_post("evil.example.com", "/mcp")).await;
    assert_eq!(status, 403, "{answer}");
    let (status, answer) = raw_http(addr, &initialize_post(&addr.to_string(), "/mcp")).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("mcp-session-id:"),
        "{answer}"
    );

    // The route table still answers the other paths, and the face is counted under its path.
    let get =
        |path: &str| format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_http(addr, &get("/healthz")).await.0, 200);
    assert_eq!(raw_http(addr, &get("/nope")).await.0, 404);
    let (status, metrics) = raw_http(addr, &get("/metrics")).await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"neuroflow_http_requests_total{route="/mcp",status="200"}"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"neuroflow_http_requests_total{route="/mcp",status="403"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"neuroflow_http_requests_total{route="/mcp",status="401"} 1"#),
        "{metrics}"
    );

    // The client's session (and its open SSE stream) is still there: stopping the node
    // ends it rather than waiting out the drain (45 s here, past WAIT).
    within("node stop with a session open", node.stop()).await;
    drop(client);
}

#[tokio::test]
async fn an_embedded_node_serves_a_subset_of_its_tools_through_the_bridge() {
    let dir = tempfile::tempdir().unwrap();
    let node = within("node start", Node::start_embedded(&node_config(dir.path())))
        .await
        .expect("the node starts");
    register_test_tools(node.tools());
    let catalog = ToolsCatalog::new(
        node.tools().clone(),
        vec!["time.*".into(), "test.echo".into()],
    );
    let cancel = CancellationToken::new();
    let http = McpHttp::new(
        McpFace::new(catalog),
        &HttpSettings::default(),
        cancel.clone(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = cancel.clone();
    let server = tokio::spawn(
        warp::serve(filter(http, "/mcp"))
            .incoming(listener)
            .graceful(async move { stop.cancelled().await })
            .run(),
    );

    let client = connect_http(&format!("http://{addr}/mcp"), None).await;
    assert_eq!(tool_names(&client).await, ["test.echo", "time.now"]);
    let echoed = call_tool(&client, call("test.echo", json!({"text": "subset"}))).await;
    assert_eq!(text(&echoed), "subset");
    for hidden in ["test.trace", "fs.read"] {
        let outcome = within("hidden tool", client.call_tool(call(hidden, json!({})))).await;
        assert_eq!(error_code(outcome), ErrorCode::INVALID_PARAMS, "{hidden}");
    }

    // Shutting down ends the sessions, so the client's open streams do not hold the
    // server's drain.
    cancel.cancel();
    within("server drain with a session open", server)
        .await
        .expect("the server task ends");
    drop(client);
    within("node stop", node.stop()).await;
}

/// `target/<profile>/neuroflow-node`, next to the directory of this test's executable.
fn node_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let binary = profile_dir.join("neuroflow-node");
    assert!(
        binary.is_file(),
        "{} is missing: build it first with `cargo build --bin neuroflow-node`",
        binary.display()
    );
    binary
}

#[tokio::test]
async fn mcp_serve_offers_tools_over_stdio_until_stdin_closes() {
    let binary = node_binary();
    let dir = tempfile::tempdir().unwrap();
    let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = tokio::process::Command::new(&binary)
        .args([
            "mcp",
            "serve",
            "--tools",
            "time.*",
            "--tools",
            "nothing.matches",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        // Chatty on purpose: every log line must go to stderr, none to the protocol.
        .env("NEUROFLOW_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true)
        .spawn()
        .expect("neuroflow-node starts");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();

    // Relay stdout to the client line by line, keeping any line that is not JSON-RPC.
    let stray: Arc<Mutex<Vec<String>>> = Arc::default();
    let (relay_in, client_out) = tokio::io::duplex(64 << 10);
    let kept = stray.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut relay_in = relay_in;
        while let Ok(Some(line)) = lines.next_line().await {
            let protocol = serde_json::from_str::<Value>(&line)
                .is_ok_and(|v| v.get("jsonrpc") == Some(&json!("2.0")));
            if !protocol {
                kept.lock().unwrap().push(line.clone());
            }
            if relay_in
                .write_all(format!("{line}\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });

    let client = within(
        "initialize over stdio",
        client_config().serve((client_out, stdin)),
    )
    .await
    .unwrap_or_else(|e| {
        let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
        panic!("the session did not open: {e}\nstderr:\n{log}")
    });
    assert_eq!(tool_names(&client).await, ["time.now"]);
    let now = call_tool(&client, call("time.now", json!({}))).await;
    assert_ne!(now.is_error, Some(true), "{now:?}");
    let hidden = within(
        "hidden tool",
        client.call_tool(call("fs.read", json!({"path": "x"}))),
    )
    .await;
    assert_eq!(error_code(hidden), ErrorCode::INVALID_PARAMS);

    // Closing the session closes the node's stdin: it stops by itself, successfully.
    within("client close", client.cancel()).await.ok();
    let status = within("neuroflow-node exit after stdin closed", child.wait())
        .await
        .expect("wait");
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    assert!(status.success(), "exit {status}; stderr:\n{log}");
    assert!(log.contains("node started"), "logs went to stderr:\n{log}");
    let stray = stray.lock().unwrap();
    assert!(
        stray.is_empty(),
        "stdout carried more than the protocol: {stray:?}"
    );
}
