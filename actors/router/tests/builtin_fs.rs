//! fs.read / fs.write / fs.list: the workspace is the whole world.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;
use neuroflow_kit::protocol::router::ToolOutput;
use neuroflow_router::builtin::fs::{FsConfig, tools};
use serde_json::{Value, json};

struct World {
    r: Running,
    root: tempfile::TempDir,
    /// A directory beside the workspaces, standing for the rest of the machine.
    outside: tempfile::TempDir,
}

impl World {
    async fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "top secret").unwrap();
        let mut config = FsConfig::new(root.path());
        config.max_read_bytes = 1000;
        config.max_write_bytes = 2000;
        config.max_file_bytes = 3000;
        config.max_list_entries = 5;
        let r = start(2).await;
        r.tools.register_all(tools(config)).unwrap();
        World { r, root, outside }
    }

    fn ws(&self, agent: &str) -> std::path::PathBuf {
        self.root.path().join(agent)
    }

    async fn call_as(&self, agent: &str, tool: &str, args: Value) -> ToolOutput {
        self.r
            .tools
            .call(as_agent(tool, args, agent))
            .await
            .unwrap()
    }

    async fn call(&self, tool: &str, args: Value) -> ToolOutput {
        self.call_as("alice", tool, args).await
    }

    /// Asserts the call failed, saying `why`.
    async fn refused(&self, tool: &str, args: Value, why: &str) {
        let out = self.call(tool, args.clone()).await;
        assert!(out.is_error, "{tool} {args} was allowed: {}", out.content);
        assert!(out.content.contains(why), "{tool} {args}: {}", out.content);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_written_read_and_listed_in_the_agents_workspace() {
    let w = World::new().await;
    let out = w
        .call(
            "fs.write",
            json!({"path": "notes/today.txt", "content": "héllo", "create_dirs": true}),
        )
        .await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(
        std::fs::read_to_string(w.ws("alice").join("notes/today.txt")).unwrap(),
        "héllo"
    );
    let out = w
        .call(
            "fs.write",
            json!({"path": "notes/today.txt", "content": " world", "append": true}),
        )
        .await;
    assert_eq!(content(&out)["size"], 12);

    let read = content(&w.call("fs.read", json!({"path": "notes/today.txt"})).await);
    assert_eq!(read["content"], "héllo world");
    assert_eq!(read["truncated"], false);
    let part = content(
        &w.call(
            "fs.read",
            json!({"path": "notes/today.txt", "offset": 7, "max_bytes": 3}),
        )
        .await,
    );
    assert_eq!(part["content"], "wor");
    assert_eq!(part["truncated"], true);

    let listed = content(&w.call("fs.list", json!({})).await);
    assert_eq!(listed["entries"], json!([{"name": "notes", "type": "dir"}]));
    let listed = content(&w.call("fs.list", json!({"path": "notes"})).await);
    assert_eq!(
        listed["entries"],
        json!([{"name": "today.txt", "type": "file", "size": 12}])
    );

    // Another agent has its own workspace and does not see alice's files.
    let bob = w
        .call_as("bob", "fs.read", json!({"path": "notes/today.txt"}))
        .await;
    assert!(
        bob.is_error && bob.content.contains("no such file"),
        "{}",
        bob.content
    );
    w.r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_and_absolute_paths_are_refused() {
    let w = World::new().await;
    let secret = w.outside.path().join("secret");
    for path in [
        "../x",
        "a/../../x",
        "..",
        "/etc/passwd",
        secret.to_str().unwrap(),
    ] {
        w.refused("fs.read", json!({"path": path}), "leaves the workspace")
            .await;
        w.refused(
            "fs.write",
            json!({"path": path, "content": "pwned"}),
            "leaves the workspace",
        )
        .await;
        w.refused("fs.list", json!({"path": path}), "leaves the workspace")
            .await;
    }
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "top secret");
    assert!(!w.root.path().join("x").exists());
    w.r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_out_of_the_workspace_are_refused() {
    let w = World::new().await;
    w.call("fs.list", json!({})).await; // creates the workspace
    let ws = w.ws("alice");
    let secret = w.outside.path().join("secret");
    symlink(w.outside.path(), ws.join("out_dir")).unwrap();
    symlink(&secret, ws.join("out_file")).unwrap();
    symlink("../../", ws.join("up")).unwrap();
    symlink("/etc", ws.join("etc")).unwrap();
    for path in ["out_dir/secret", "out_file", "up", "etc/passwd"] {
        w.refused("fs.read", json!({"path": path}), "leaves the workspace")
            .await;
    }
    w.refused(
        "fs.write",
        json!({"path": "out_file", "content": "pwned"}),
        "leaves the workspace",
    )
    .await;
    w.refused(
        "fs.write",
        json!({"path": "out_dir/new", "content": "x"}),
        "leaves the workspace",
    )
    .await;
    w.refused(
        "fs.list",
        json!({"path": "out_dir"}),
        "leaves the workspace",
    )
    .await;
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "top secret");
    assert!(!w.outside.path().join("new").exists());

    // A link that stays inside is fine, and a listing shows links as links.
    std::fs::write(ws.join("real.txt"), "inside").unwrap();
    symlink("real.txt", ws.join("alias.txt")).unwrap();
    assert_eq!(
        content(&w.call("fs.read", json!({"path": "alias.txt"})).await)["content"],
        "inside"
    );
    let listed = content(&w.call("fs.list", json!({"max_entries": 5})).await);
    assert!(
        listed["entries"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "out_file", "type": "symlink"}))
    );
    w.r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_swapped_for_a_symlink_is_refused() {
    let w = World::new().await;
    w.call(
        "fs.write",
        json!({"path": "d/secret", "content": "mine", "create_dirs": true}),
    )
    .await;
    assert_eq!(
        content(&w.call("fs.read", json!({"path": "d/secret"})).await)["content"],
        "mine"
    );
    let d = w.ws("alice").join("d");
    std::fs::remove_dir_all(&d).unwrap();
    symlink(w.outside.path(), &d).unwrap();
    w.refused(
        "fs.read",
        json!({"path": "d/secret"}),
        "leaves the workspace",
    )
    .await;
    w.refused(
        "fs.write",
        json!({"path": "d/secret", "content": "x"}),
        "leaves the workspace",
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(w.outside.path().join("secret")).unwrap(),
        "top secret"
    );
    w.r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_and_counts_are_capped() {
    let w = World::new().await;
    w.refused(
        "fs.write",
        json!({"path": "big", "content": "x".repeat(2001)}),
        "the limit is 2000",
    )
    .await;
    assert!(!w.ws("alice").join("big").exists());
    w.call(
        "fs.write",
        json!({"path": "f", "content": "y".repeat(2000)}),
    )
    .await;
    w.refused(
        "fs.write",
        json!({"path": "f", "content": "y".repeat(1001), "append": true}),
        "limit is 3000",
    )
    .await;
    assert_eq!(
        std::fs::metadata(w.ws("alice").join("f")).unwrap().len(),
        2000
    );

    let read = content(&w.call("fs.read", json!({"path": "f"})).await);
    assert_eq!(read["content"].as_str().unwrap().len(), 1000);
    assert_eq!(
        (read["truncated"].clone(), read["size"].clone()),
        (json!(true), json!(2000))
    );
    // Asking for more than the limit gets the limit (the schema refuses it outright).
    let over =
        w.r.tools
            .call(as_agent(
                "fs.read",
                json!({"path": "f", "max_bytes": 5000}),
                "alice",
            ))
            .await;
    assert!(over.is_err());

    for i in 0..8 {
        std::fs::write(w.ws("alice").join(format!("n{i}")), "").unwrap();
    }
    let listed = content(&w.call("fs.list", json!({})).await);
    assert_eq!(listed["entries"].as_array().unwrap().len(), 5);
    assert_eq!(listed["truncated"], true);
    w.r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_files_and_bad_callers_are_refused() {
    let w = World::new().await;
    w.call("fs.list", json!({})).await;
    let fifo = w.ws("alice").join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // Opening a FIFO for reading would block until a writer came: it must not.
    w.refused("fs.read", json!({"path": "pipe"}), "not a regular file")
        .await;
    w.refused("fs.read", json!({"path": "."}), "not a regular file")
        .await;
    w.refused("fs.read", json!({"path": "missing"}), "no such file")
        .await;

    let nobody = w.r.tools.call(request("fs.list", json!({}))).await.unwrap();
    assert!(
        nobody.is_error && nobody.content.contains("agent"),
        "{}",
        nobody.content
    );
    for agent in ["..", "a/b", ""] {
        let out = w.call_as(agent, "fs.list", json!({})).await;
        assert!(out.is_error, "agent {agent:?} got a workspace");
    }
    assert!(!Path::new(&w.root.path().join("a")).exists());
    w.r.stop().await;
}
