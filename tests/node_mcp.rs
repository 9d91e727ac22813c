//! MCP servers in a running node: an agent using them through the router, a server killed
//! mid-conversation and brought back (in /metrics and the tree), the npm reference servers,
//! a server started inside a sandbox, and a resource given to an agent as context.

mod common;
#[path = "node_mcp/peers.rs"]
mod peers;

use std::time::{Duration, Instant};

use common::{TempDir, client, eventually, require_isolation};
use neuroflow::kit::protocol::agent::AgentReply;
use neuroflow::kit::protocol::mcp::McpState;
use neuroflow::kit::protocol::router::ToolCallRequest;
use neuroflow::{Config, Node, agent_spec};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

const T: Duration = Duration::from_secs(30);

/// Scripted model decisions: which tool each prompt makes the agent call.
const RULES: &str = r#"
[[rule]]
name = "echo"
contains = ["echo"]
calls = [{ tool = "t.echo", args = { text = "from the agent" } }]
reply = "tool said: {tool_result}"

[[rule]]
name = "everything"
contains = ["everything"]
calls = [{ tool = "everything.echo", args = { message = "hi" } }]
reply = "tool said: {tool_result}"

[[rule]]
name = "files"
contains = ["files"]
calls = [{ tool = "files.read_text_file", args = { path = "FILE" } }]
reply = "tool said: {tool_result}"

[[rule]]
name = "context"
contains = ["context"]
reply = "context noted"
"#;

fn config(dir: &TempDir, rules: &str, extra: &str) -> Config {
    let rules = dir.file("rules.toml", rules);
    let text = format!(
        "[node]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\
         [auth]\njwt_secret = \"{}\"\n\
         [sandbox]\ninit_program = \"{}\"\n\
         [providers.rules]\nkind = \"scripted\"\nrules = \"{}\"\n{extra}",
        dir.path().join("data").display(),
        common::JWT_SECRET,
        env!("CARGO_BIN_EXE_neuroflow-node"),
        rules.display(),
    );
    let path = dir.file("node.toml", &text);
    Config::load(Some(&path), &|_| None, &Default::default()).unwrap()
}

async fn wait_state(
    node: &Node,
    server: &str,
    state: McpState,
) -> neuroflow::kit::protocol::mcp::McpServerStatus {
    eventually(T, &format!("{server} {state:?}"), || async {
        let status = node.mcp().status(server).unwrap();
        (status.state == state).then_some(status)
    })
    .await
}

async fn ask(node: &Node, agent: &str, message: &str) -> String {
    match common::ask(node, agent, message).await {
        AgentReply::Answer { text, .. } => text,
        other => panic!("no answer: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_conversation_comes_back_and_is_counted() {
    let Some(server) = peers::test_server() else {
        return;
    };
    let dir = TempDir::new("node-mcp-respawn");
    let extra = format!(
        "[mcp.servers.t]\ncommand = \"{}\"\nbackoff_initial_ms = 300\nbackoff_max_ms = 300\n",
        server.display()
    );
    let node = Node::start(&config(&dir, RULES, &extra)).await.unwrap();
    let up = wait_state(&node, "t", McpState::Up).await;
    node.agents()
        .spawn(agent_spec("a").provider("rules").tools(["t.*"]).into())
        .await
        .unwrap();
    assert_eq!(
        ask(&node, "a", "please echo").await,
        "tool said: from the agent"
    );

    kill(Pid::from_raw(up.pid.unwrap() as i32), Signal::SIGKILL).unwrap();
    wait_state(&node, "t", McpState::Restarting).await;
    // The next turn's tool call fails at once, and the model is told why.
    let started = Instant::now();
    let answer = ask(&node, "a", "echo again").await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        answer.starts_with("tool said: MCP server t is unavailable: restarting"),
        "{answer}"
    );

    let back = wait_state(&node, "t", McpState::Up).await;
    assert_eq!(back.restarts, 1);
    assert_eq!(
        ask(&node, "a", "echo once more").await,
        "tool said: from the agent"
    );

    let http = client();
    let base = format!("http://{}", node.local_addr().unwrap());
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("neuroflow_mcp_server_restarts_total{server=\"t\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("neuroflow_mcp_server_state{server=\"t\",state=\"up\"} 1"));
    assert!(metrics.contains("neuroflow_mcp_server_tools{server=\"t\"} 9"));
    let tree: Value = http
        .get(format!("{base}/api/v1/node/tree"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tools = tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "tools")
        .unwrap();
    let mcp = tools["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "mcp")
        .unwrap();
    let t = &mcp["children"][0];
    assert_eq!(t["name"], "t");
    assert_eq!(t["kind"], "tools.mcp");
    assert_eq!(t["detail"]["state"], "up");
    assert_eq!(t["detail"]["restarts"], 1);
    assert_eq!(t["detail"]["tools"], 9);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_uses_the_npm_reference_servers() {
    let Some((node_bin, everything)) = peers::reference_server("server-everything") else {
        return;
    };
    let Some((_, filesystem)) = peers::reference_server("server-filesystem") else {
        return;
    };
    let dir = TempDir::new("node-mcp-reference");
    let shared = dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let file = shared.join("note.txt");
    std::fs::write(&file, "written by the test\n").unwrap();
    let rules = RULES.replace("FILE", &file.display().to_string());
    let extra = format!(
        "[mcp.servers.everything]\ncommand = \"{node}\"\nargs = [\"{everything}\", \"stdio\"]\n\
         [mcp.servers.files]\ncommand = \"{node}\"\nargs = [\"{filesystem}\", \"{shared}\"]\n",
        node = node_bin.display(),
        everything = everything.display(),
        filesystem = filesystem.display(),
        shared = shared.display(),
    );
    let node = Node::start(&config(&dir, &rules, &extra)).await.unwrap();
    let everything = wait_state(&node, "everything", McpState::Up).await;
    assert!(
        everything
            .server
            .as_deref()
            .unwrap_or_default()
            .starts_with("mcp-servers/everything")
    );
    // It adds its tools after `initialized` and announces each: the node follows.
    eventually(T, "everything.get-sum", || async {
        (!node.tools().list(&["everything.get-sum".into()]).is_empty()).then_some(())
    })
    .await;
    let files = wait_state(&node, "files", McpState::Up).await;
    assert_eq!(files.tools, 14, "{files:?}");

    node.agents()
        .spawn(
            agent_spec("r")
                .provider("rules")
                .tools(["everything.*", "files.*"])
                .into(),
        )
        .await
        .unwrap();
    assert_eq!(
        ask(&node, "r", "everything echo").await,
        "tool said: Echo: hi"
    );
    assert_eq!(
        ask(&node, "r", "read the files").await,
        "tool said: written by the test\n"
    );
    // The server's own refusal reaches the model as a failed tool result.
    let outside = node
        .tools()
        .call(ToolCallRequest {
            name: "files.read_text_file".into(),
            arguments: json!({"path": "/etc/hostname"}),
            timeout_ms: None,
            caller: None,
        })
        .await
        .unwrap();
    assert!(outside.is_error, "{outside:?}");
    assert!(
        outside.content.contains("Access denied"),
        "{}",
        outside.content
    );
    let sum = node
        .tools()
        .call(ToolCallRequest {
            name: "everything.get-sum".into(),
            arguments: json!({"a": 2, "b": 3}),
            timeout_ms: None,
            caller: None,
        })
        .await
        .unwrap();
    assert_eq!(sum.content, "The sum of 2 and 3 is 5.");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stdio_server_runs_inside_a_sandbox_profile() {
    let Some(server) = peers::test_server() else {
        return;
    };
    let host = neuroflow_sandbox::HostSupport::detect();
    let standard = neuroflow_sandbox::Profile::builtin("standard").unwrap();
    if !host.is_root || host.missing(&standard).is_some() {
        assert!(!require_isolation(), "sandbox required but unavailable");
        eprintln!("skipping: no sandbox isolation here");
        return;
    }
    let dir = TempDir::new("node-mcp-sandboxed");
    let bin_dir = server.parent().unwrap();
    let extra = format!(
        "[sandbox.profiles.mcp]\nbase = \"standard\"\n\
         mounts = [{{ source = \"{bin}\", target = \"/opt/mcp\" }}]\n\
         [mcp.servers.boxed]\ncommand = \"/opt/mcp/mcp-test-server\"\nsandbox = \"mcp\"\n",
        bin = bin_dir.display(),
    );
    let node = Node::start(&config(&dir, RULES, &extra)).await.unwrap();
    let up = wait_state(&node, "boxed", McpState::Up).await;
    assert_eq!(up.pid, None, "a sandboxed server's pid is not the host's");
    let call = |name: &str| ToolCallRequest {
        name: name.into(),
        arguments: json!({}),
        timeout_ms: None,
        caller: None,
    };
    // Inside its own PID namespace the server is a child of the sandbox's PID 1.
    let pid = node.tools().call(call("boxed.pid")).await.unwrap();
    let pid: u32 = pid.content.parse().unwrap();
    assert!(pid < 10, "pid {pid} inside the sandbox's namespace");
    let echo = node
        .tools()
        .call(ToolCallRequest {
            arguments: json!({"text": "inside"}),
            ..call("boxed.echo")
        })
        .await
        .unwrap();
    assert_eq!(echo.content, "inside");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_is_given_a_resource_as_context() {
    let Some(server) = peers::test_server() else {
        return;
    };
    let dir = TempDir::new("node-mcp-context");
    let extra = format!("[mcp.servers.t]\ncommand = \"{}\"\n", server.display());
    let node = Node::start(&config(&dir, RULES, &extra)).await.unwrap();
    wait_state(&node, "t", McpState::Up).await;
    let agent = node
        .agents()
        .spawn(
            agent_spec("c")
                .provider("rules")
                .system_prompt("Be brief.")
                .context_resource("t", "test://greeting")
                .into(),
        )
        .await
        .unwrap();
    assert_eq!(
        agent.state.spec().system_prompt,
        "Be brief.\n\n<resource server=\"t\" uri=\"test://greeting\">\nHello from the test server.\n</resource>"
    );
    let Err(err) = node
        .agents()
        .spawn(
            agent_spec("d")
                .context_resource("t", "test://nothing")
                .into(),
        )
        .await
    else {
        panic!("a missing context resource must refuse the agent");
    };
    assert!(err.to_string().contains("test://nothing"), "{err}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_node_and_its_mcp_servers() {
    use common::{NodeBuilder, descendants};
    let Some(server) = peers::test_server() else {
        return;
    };
    let node = NodeBuilder::serve()
        .env("NEUROFLOW_SHUTDOWN_TIMEOUT", "5")
        .config(&format!(
            "[mcp.servers.t]\ncommand = \"{}\"\n",
            server.display()
        ))
        .start();
    let http = client();
    let pid = eventually(T, "server t up in the tree", || async {
        let tree = node.get_json(&http, "/api/v1/node/tree").await;
        let tools = tree["children"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == "tools")?;
        let mcp = tools["children"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == "mcp")?;
        let t = mcp["children"]
            .as_array()?
            .iter()
            .find(|c| c["name"] == "t")?;
        (t["detail"]["state"] == "up").then(|| t["detail"]["pid"].as_u64())?
    })
    .await;
    let children = descendants(node.process.pid());
    assert!(
        children.iter().any(|p| u64::from(p.pid) == pid),
        "the server {pid} is the node's child: {children:?}"
    );
    let (status, _, stderr) = node.stop_with(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    let left: Vec<_> = children.iter().filter(|p| p.alive()).collect();
    assert!(left.is_empty(), "processes left behind: {left:?}");
}
