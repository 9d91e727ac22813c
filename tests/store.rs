//! The node's store against a real SQLite file: records round-trip, migrations, one
//! refused write failing alone in a batch, and no acknowledged write lost when the writing
//! process is killed with SIGKILL.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TempDir;
use neuroflow::kit::protocol::agent::{AgentSpec, ChatMessage, Usage};
use neuroflow::store::{SCHEMA_VERSION, Store, StoreError};

fn spec(name: &str) -> AgentSpec {
    neuroflow::agent_spec(name)
        .system_prompt("Be brief.")
        .into()
}

#[tokio::test]
async fn agents_conversations_and_users_round_trip() {
    let dir = TempDir::new("store-round-trip");
    let store = Store::open(dir.path()).unwrap();
    store.put_agent(spec("b")).await.unwrap();
    store.put_agent(spec("a")).await.unwrap();
    let mut changed = spec("a");
    changed.model = "m2".into();
    store.put_agent(changed.clone()).await.unwrap();
    let names: Vec<String> = store
        .agents()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(store.agent("a").await.unwrap(), Some(changed));
    assert!(store.delete_agent("b").await.unwrap());
    assert!(!store.delete_agent("b").await.unwrap());
    assert_eq!(store.agent("b").await.unwrap(), None);

    let usage = Usage {
        input_tokens: 12,
        output_tokens: 3,
        cost_usd: 0.001,
    };
    let first = store
        .append_messages(
            "c1",
            "a",
            vec![
                (ChatMessage::user("hello"), None),
                (ChatMessage::assistant("hi"), Some(usage)),
            ],
        )
        .await
        .unwrap();
    assert_eq!(first, 0);
    let next = store
        .append_messages("c1", "a", vec![(ChatMessage::user("again"), None)])
        .await
        .unwrap();
    assert_eq!(next, 2);
    let messages = store.messages("c1").await.unwrap();
    let texts: Vec<&str> = messages
        .iter()
        .map(|m| m.message.content.as_str())
        .collect();
    assert_eq!(texts, ["hello", "hi", "again"]);
    assert_eq!(messages[1].usage, Some(usage));
    let listed = store.conversations("a", 0, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].id.as_str(), listed[0].messages), ("c1", 3));
    assert!(listed[0].updated_at >= listed[0].created_at);
    assert_eq!(
        store.conversation("c1").await.unwrap(),
        Some(listed[0].clone())
    );
    assert_eq!(store.conversation("nope").await.unwrap(), None);
    // A conversation belongs to one agent.
    let foreign = store
        .append_messages("c1", "b", vec![(ChatMessage::user("mine?"), None)])
        .await;
    assert!(
        matches!(foreign, Err(StoreError::Constraint(_))),
        "{foreign:?}"
    );
    assert_eq!(store.messages("c1").await.unwrap().len(), 3);
    // Newest first, paged.
    store
        .append_messages("c2", "a", vec![(ChatMessage::user("later"), None)])
        .await
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    store
        .append_messages("c1", "a", vec![(ChatMessage::user("latest"), None)])
        .await
        .unwrap();
    assert_eq!(
        store.latest_conversation("a").await.unwrap().as_deref(),
        Some("c1")
    );
    let second: Vec<String> = store
        .conversations("a", 1, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(second, ["c2"]);
    // Deleting an agent deletes its conversations.
    store.put_agent(spec("a")).await.unwrap();
    assert!(store.delete_agent("a").await.unwrap());
    assert!(store.conversations("a", 0, 10).await.unwrap().is_empty());
    assert!(store.messages("c1").await.unwrap().is_empty());

    let id = store
        .create_user("ada", "$argon2id$…", "admin")
        .await
        .unwrap();
    let user = store.user("ada").await.unwrap().unwrap();
    assert_eq!((user.id, user.role.as_str()), (id, "admin"));
    assert_eq!(store.user("nobody").await.unwrap(), None);
    store.create_user("bob", "h", "viewer").await.unwrap();
    assert_eq!(store.user_count().await.unwrap(), 2);
    let page = store.users(1, 5).await.unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(
        (page[0].username.as_str(), page[0].role.as_str()),
        ("bob", "viewer")
    );
}

#[tokio::test]
async fn a_refused_write_fails_alone_and_bad_values_are_refused() {
    let dir = TempDir::new("store-refused");
    let store = Store::open(dir.path()).unwrap();
    store.create_user("ada", "h", "admin").await.unwrap();
    // Submitted together, so likely committed in one batch: only the duplicate fails.
    let (dup, other, role) = tokio::join!(
        store.create_user("ada", "h2", "viewer"),
        store.create_user("grace", "h", "operator"),
        store.create_user("eve", "h", "superuser"),
    );
    assert!(matches!(dup, Err(StoreError::Constraint(_))), "{dup:?}");
    assert!(other.is_ok(), "{other:?}");
    assert!(matches!(role, Err(StoreError::Constraint(_))), "{role:?}");
    assert_eq!(store.user("ada").await.unwrap().unwrap().password_hash, "h");
    assert!(store.user("grace").await.unwrap().is_some());
    assert!(store.user("eve").await.unwrap().is_none());
}

#[tokio::test]
async fn reopening_keeps_the_data_and_a_newer_schema_is_refused() {
    let dir = TempDir::new("store-reopen");
    {
        let store = Store::open(dir.path()).unwrap();
        store.put_agent(spec("kept")).await.unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(store.agent("kept").await.unwrap().is_some());
    drop(store);

    let conn = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    conn.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .unwrap();
    drop(conn);
    match Store::open(dir.path()) {
        Err(StoreError::NewerSchema { found, known }) => {
            assert_eq!((found, known), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("a newer schema must be refused, got {:?}", other.err()),
    }
}

/// Set in the child process of the kill test: the store directory it writes to.
const CHILD_DIR: &str = "NEUROFLOW_STORE_KILL_CHILD";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_writer_loses_no_acknowledged_write() {
    if let Ok(dir) = std::env::var(CHILD_DIR) {
        return write_until_killed(&dir).await;
    }
    let dir = TempDir::new("store-kill");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_writer_loses_no_acknowledged_write",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(name) = line.strip_prefix("acked ") {
                let _ = tx.send(name.to_string());
            }
        }
    });
    // Let it write under load for a while, then kill it mid-stream.
    let mut acked = BTreeSet::new();
    let start = Instant::now();
    while acked.len() < 3_000 && start.elapsed() < Duration::from_secs(20) {
        if let Ok(name) = rx.recv_timeout(Duration::from_millis(50)) {
            acked.insert(name);
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    acked.extend(rx.try_iter());
    assert!(
        acked.len() >= 100,
        "only {} writes acknowledged",
        acked.len()
    );

    let store = Store::open(dir.path()).unwrap();
    let stored: BTreeSet<String> = store
        .agents()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    let lost: Vec<&String> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    eprintln!(
        "{} writes acknowledged before SIGKILL, {} stored, none lost",
        acked.len(),
        stored.len()
    );
}

/// The child: 16 concurrent writers, each printing a name once its write is acknowledged.
async fn write_until_killed(dir: &str) {
    let store = Store::open(std::path::Path::new(dir)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    let name = format!("w{w}-{i}");
                    if store.put_agent(spec(&name)).await.is_ok() {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "acked {name}");
                        let _ = out.flush();
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for writer in writers {
        let _ = writer.await;
    }
}

#[test]
fn many_openers_of_a_new_store_all_succeed() {
    // Processes starting at once on one data directory (CLI runs, an embedded service
    // beside a node) must not refuse each other while the store is being made.
    for round in 0..5 {
        let dir = TempDir::new(&format!("store-race-{round}"));
        let path = dir.path().to_path_buf();
        let openers: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || Store::open(&path).map(drop))
            })
            .collect();
        for opener in openers {
            let opened = opener.join().unwrap();
            assert!(opened.is_ok(), "round {round}: {opened:?}");
        }
    }
}
