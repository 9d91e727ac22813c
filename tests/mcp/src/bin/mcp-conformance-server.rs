//! The server the `conformance server` suite runs against: the conformance fixture as a
//! catalog ([`fixture::Fixture`]), behind the node's own MCP face and HTTP bridge
//! (`neuroflow::api::mcp`), so the suite tests the code the node serves with.
//!
//! Usage: `mcp-conformance-server PORT` (0 picks a free port). Listens on 127.0.0.1 only,
//! prints `http://127.0.0.1:PORT/mcp` on stdout once listening, logs to stderr, and runs
//! until SIGINT or SIGTERM. Exit status 2 for a bad argument, 1 if it cannot listen.

#[path = "../conformance/fixture.rs"]
mod fixture;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use neuroflow::api::mcp::{HttpSettings, McpHttp, filter};
use neuroflow::config::Config;
use neuroflow_router::mcp::serve::McpFace;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

const PATH: &str = "/mcp";

fn main() -> ExitCode {
    let port = match std::env::args().nth(1).map(|p| p.parse::<u16>()) {
        Some(Ok(port)) => port,
        _ => {
            eprintln!("usage: mcp-conformance-server PORT");
            return ExitCode::from(2);
        }
    };
    neuroflow::observability::init(&Config::default());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mcp-conformance-server: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(port)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mcp-conformance-server: {err}");
            ExitCode::from(1)
        }
    }
}

async fn serve(port: u16) -> std::io::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    let addr = listener.local_addr()?;
    let sessions = CancellationToken::new();
    let http = McpHttp::new(
        McpFace::new(fixture::Fixture::default()),
        &HttpSettings::default(),
        sessions.clone(),
    );
    let server = warp::serve(filter(http, PATH))
        .incoming(listener)
        .graceful(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            sessions.cancel();
        });
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "http://{addr}{PATH}")?;
        out.flush()?;
    }
    server.run().await;
    Ok(())
}
