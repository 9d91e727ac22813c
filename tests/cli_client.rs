//! The CLI as a client of a running node: `login`, then `agent create|list|chat|delete`
//! against the real `neuroflow-node serve`, each command run as its own process with its
//! credentials in a temporary directory. Every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, Node, NodeBuilder, TempDir};

/// Bound on one CLI command (a scripted turn takes milliseconds).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// What a CLI command did.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The CLI of one user: its own configuration directory, talking to `url`.
struct Cli {
    config: TempDir,
    url: String,
}

impl Cli {
    fn new(url: &str) -> Self {
        Self {
            config: TempDir::new("cli-config"),
            url: url.to_string(),
        }
    }

    fn for_node(node: &Node) -> Self {
        Self::new(&node.url)
    }

    /// Runs `neuroflow-node ARGS` with `stdin` as its input and `env` on top of a clean
    /// environment; kills it if it outlives [`COMMAND_TIMEOUT`].
    fn run_with(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Outcome {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Nothing of the caller's environment may change where the CLI goes or what it
        // sends: a proxy would not reach the loopback node.
        for var in [
            "NEUROFLOW_TOKEN",
            "NEUROFLOW_PASSWORD",
            "XDG_CONFIG_HOME",
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            command.env_remove(var);
        }
        command
            .env("NEUROFLOW_CONFIG_DIR", self.config.path())
            .env("NEUROFLOW_URL", &self.url)
            .env("NO_PROXY", "*");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn neuroflow-node");
        let mut input = child.stdin.take().expect("stdin");
        let stdin = stdin.to_string();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(stdin.as_bytes());
        });
        let collect = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                String::from_utf8_lossy(&bytes).into_owned()
            })
        };
        let stdout = collect(Box::new(child.stdout.take().expect("stdout")));
        let stderr = collect(Box::new(child.stderr.take().expect("stderr")));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "`neuroflow-node {}` did not exit within {COMMAND_TIMEOUT:?}",
                    args.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = writer.join();
        Outcome {
            code: status.code().unwrap_or(-1),
            stdout: stdout.join().expect("stdout reader"),
            stderr: stderr.join().expect("stderr reader"),
        }
    }

    fn run(&self, args: &[&str]) -> Outcome {
        self.run_with(args, "", &[])
    }

    /// Runs a command that must succeed.
    fn ok(&self, args: &[&str]) -> Outcome {
        let outcome = self.run(args);
        assert_eq!(outcome.code, 0, "`{}`: {outcome:?}", args.join(" "));
        outcome
    }
}

fn node() -> Node {
    NodeBuilder::serve()
        .env("NEUROFLOW_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .start()
}

/// The rows of `agent list` whose first column is `name`.
fn rows_named<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .filter(|line| line.split_whitespace().next() == Some(name))
        .collect()
}

#[test]
fn login_then_create_list_chat_and_delete_an_agent() {
    let node = node();
    let cli = Cli::for_node(&node);

    // The password comes from stdin when it is not in the environment.
    let login = cli.run_with(&["login"], &format!("{ADMIN_PASSWORD}\n"), &[]);
    assert_eq!(login.code, 0, "{login:?}");
    assert!(
        login.stdout.starts_with(&format!(
            "logged in to {} as admin (admin), token valid for ",
            node.url
        )),
        "{login:?}"
    );
    let saved = cli.config.path().join("credentials.json");
    let mode = std::fs::metadata(&saved)
        .expect("credentials saved")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let created = cli.ok(&[
        "agent",
        "create",
        "helper",
        "--provider",
        "scripted",
        "--tools",
        "time.*",
        "--system",
        "Be brief.",
    ]);
    let agent: serde_json::Value =
        serde_json::from_str(&created.stdout).expect("the created agent, as JSON");
    assert_eq!(agent["name"], "helper");
    assert_eq!(agent["spec"]["provider"], "scripted");
    assert_eq!(agent["spec"]["tools"], serde_json::json!(["time.*"]));

    let again = cli.run(&["agent", "create", "helper"]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("409 conflict: "), "{again:?}");

    let list = cli.ok(&["agent", "list"]);
    assert!(list.stdout.starts_with("NAME "), "{list:?}");
    let rows = rows_named(&list.stdout, "helper");
    assert_eq!(rows.len(), 1, "{list:?}");
    assert!(
        rows[0].contains("scripted") && rows[0].contains("time.*"),
        "{list:?}"
    );

    // The scripted provider's echo rule answers with the text after "echo", streamed.
    let chat = cli.ok(&["agent", "chat", "helper", "echo", "hello from the CLI"]);
    assert_eq!(chat.stdout, "hello from the CLI\n", "{chat:?}");
    assert!(chat.stderr.contains("tokens in"), "{chat:?}");

    // Its time rule calls the time.now tool first, which is shown on stderr.
    let time = cli.ok(&[
        "agent",
        "chat",
        "helper",
        "what time is it?",
        "--conversation",
        "new",
    ]);
    assert!(time.stdout.starts_with("The time is "), "{time:?}");
    assert!(time.stderr.contains("[tool time.now "), "{time:?}");

    // Without a message, every line of stdin is a turn.
    let lines = cli.run_with(
        &["agent", "chat", "helper"],
        "echo one\n\necho two\r\n",
        &[],
    );
    assert_eq!(lines.code, 0, "{lines:?}");
    assert_eq!(lines.stdout, "one\ntwo\n", "{lines:?}");

    let deleted = cli.ok(&["agent", "delete", "helper"]);
    assert_eq!(deleted.stdout, "deleted helper\n");

    let list = cli.ok(&["agent", "list"]);
    assert!(rows_named(&list.stdout, "helper").is_empty(), "{list:?}");
    let json = cli.ok(&["agent", "list", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json.stdout).expect("a JSON array"),
        serde_json::json!([])
    );

    let gone = cli.run(&["agent", "chat", "helper", "hello"]);
    assert_eq!(gone.code, 1, "{gone:?}");
    assert!(gone.stderr.contains("404 not_found: "), "{gone:?}");
}

#[test]
fn a_wrong_password_exits_1_with_the_nodes_message() {
    let node = node();
    let cli = Cli::for_node(&node);
    let login = cli.run_with(&["login"], "", &[("NEUROFLOW_PASSWORD", "not it")]);
    assert_eq!(login.code, 1, "{login:?}");
    let message = login
        .stderr
        .strip_prefix("neuroflow-node: 401 unauthorized: ")
        .unwrap_or_else(|| panic!("not the node's 401: {login:?}"));
    assert!(!message.trim().is_empty(), "{login:?}");
    assert!(login.stdout.is_empty(), "{login:?}");
    assert!(!cli.config.path().join("credentials.json").exists());
}

#[test]
fn without_a_token_the_cli_says_to_log_in_and_exits_2() {
    // Nothing listens there; the CLI must not even try without a token.
    let cli = Cli::new("http://127.0.0.1:9");
    let list = cli.run(&["agent", "list"]);
    assert_eq!(list.code, 2, "{list:?}");
    assert!(list.stderr.contains("neuroflow-node login"), "{list:?}");
}

#[test]
fn an_unreachable_node_exits_1() {
    let cli = Cli::new("http://127.0.0.1:9");
    let list = cli.run_with(&["agent", "list"], "", &[("NEUROFLOW_TOKEN", "t")]);
    assert_eq!(list.code, 1, "{list:?}");
    assert!(
        list.stderr
            .contains("cannot reach the node at http://127.0.0.1:9"),
        "{list:?}"
    );
}
