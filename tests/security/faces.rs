//! The sandbox's faces as users meet them: the CLI's exit codes, streamed output, refusals
//! that name the missing layer.

use std::process::{Command, Stdio};
use std::time::Duration;

use neuroflow::kit::protocol::sandbox::{EndReason, ExecRequest};
use neuroflow_sandbox::{HostSupport, Layer, Profile, Sandbox, SandboxError, Stream};
use tokio::sync::mpsc;

use crate::{builder, require_isolation};

fn cli(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_neuroflow-node"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_mirrors_the_commands_exit_status() {
    require_isolation!();
    let (code, stdout, _) = cli(&["sandbox", "exec", "--", "sh", "-c", "echo out; exit 7"]);
    assert_eq!((code, stdout.as_str()), (7, "out\n"));
    let (code, _, stderr) = cli(&["sandbox", "exec", "--timeout", "300ms", "--", "sleep", "5"]);
    assert_eq!(code, 128 + libc::SIGKILL, "{stderr}");
    assert!(stderr.contains("sandbox ended: timeout"), "{stderr}");
    let (code, _, stderr) = cli(&["sandbox", "exec", "--", "no-such-program"]);
    assert_eq!(code, 127, "{stderr}");
    assert!(stderr.contains("command not found"), "{stderr}");
    // Refusals: 125, naming why.
    let (code, _, stderr) = cli(&[
        "sandbox",
        "exec",
        "--profile",
        "minimal",
        "--allow-net",
        "127.0.0.1:80",
        "--",
        "true",
    ]);
    assert_eq!(code, 125, "{stderr}");
    assert!(stderr.contains("network-namespace"), "{stderr}");
    let (code, _, stderr) = cli(&["sandbox", "exec", "--allow-net", "bad entry", "--", "true"]);
    assert_eq!(code, 125, "{stderr}");
    assert!(stderr.contains("bad entry"), "{stderr}");
    // Usage errors: 2.
    let (code, _, stderr) = cli(&["sandbox", "exec", "--profile", "nope", "--", "true"]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, _) = cli(&["sandbox", "exec", "--memory", "lots", "--", "true"]);
    assert_eq!(code, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_streams_while_the_command_runs() {
    require_isolation!();
    let sandbox = builder("standard").build().unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let run = tokio::spawn({
        let sandbox = sandbox.clone();
        async move {
            sandbox
                .exec_streaming(
                    ExecRequest {
                        command: "sh".into(),
                        args: vec!["-c".into(), "echo first; sleep 2; echo second >&2".into()],
                        ..ExecRequest::default()
                    },
                    tx,
                )
                .await
        }
    });
    let first = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a chunk before the command ends")
        .unwrap();
    assert_eq!(
        (first.stream, first.bytes.as_slice()),
        (Stream::Stdout, &b"first\n"[..])
    );
    assert!(
        !run.is_finished(),
        "the first chunk must come while the command runs"
    );
    let outcome = run.await.unwrap().unwrap();
    let second = rx.recv().await.unwrap();
    assert_eq!(
        (second.stream, second.bytes.as_slice()),
        (Stream::Stderr, &b"second\n"[..])
    );
    assert_eq!(outcome.end, EndReason::Exited);
    assert_eq!(
        (outcome.stdout, outcome.stderr),
        (b"first\n".to_vec(), b"second\n".to_vec())
    );
}

#[test]
fn a_missing_layer_refuses_the_profile_and_names_it() {
    let mut host = HostSupport::detect();
    for status in &mut host.layers {
        if status.layer == Layer::Overlayfs {
            status.available = false;
            status.detail = "overlay not in /proc/filesystems".into();
        }
    }
    let err = Sandbox::builder(Profile::builtin("standard").unwrap())
        .host(std::sync::Arc::new(host.clone()))
        .build()
        .err()
        .expect("refused");
    match &err {
        SandboxError::Unsupported { layer, detail } => {
            assert_eq!(layer, "overlayfs");
            assert!(detail.contains("/proc/filesystems"));
        }
        other => panic!("{other:?}"),
    }
    // `strict` binds the lower layers read-only and needs no overlay: it is not refused
    // for that (fail closed, but only on what is really needed).
    let strict = Profile::builtin("strict").unwrap();
    assert!(!host.required(&strict).contains(&Layer::Overlayfs));
}

/// The parent pid of `pid`, from /proc.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields resume after the last ')'.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_init_forwards_termination_signals_to_the_command() {
    require_isolation!();
    let sandbox = builder("standard").build().unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let marker = "sleep 4243.5";
    let run = tokio::spawn({
        let sandbox = sandbox.clone();
        async move {
            sandbox
                .exec_streaming(
                    ExecRequest {
                        command: "sh".into(),
                        args: vec![
                            "-c".into(),
                            format!(
                                "trap 'echo got-term; exit 3' TERM; echo ready; {marker} & wait"
                            ),
                        ],
                        ..ExecRequest::default()
                    },
                    tx,
                )
                .await
        }
    });
    let ready = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready.bytes, b"ready\n");
    // From the host: the sleep's parent is the shell, whose parent is PID 1, whose parent
    // is the relay, the node's own child.
    // The shell says "ready" before its background sleep has exec'd: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let sleep = loop {
        if let Some(pid) = processes(marker).first() {
            break *pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sandboxed sleep is visible from the host"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let relay = parent_of(sleep)
        .and_then(parent_of)
        .and_then(parent_of)
        .unwrap();
    assert_eq!(parent_of(relay), Some(std::process::id()));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(relay as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let outcome = run.await.unwrap().unwrap();
    assert_eq!(
        (outcome.end, outcome.exit_code),
        (EndReason::Exited, Some(3)),
        "{outcome:?}"
    );
    assert!(outcome.stdout.ends_with(b"got-term\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minimal_is_a_plain_subprocess_with_limits() {
    let sandbox = Sandbox::builder(Profile::builtin("minimal").unwrap())
        .timeout(Duration::from_millis(500))
        .output(neuroflow_sandbox::ByteSize(8))
        .state_dir(crate::state_dir())
        .build()
        .unwrap();
    let run = |line: &str| {
        sandbox.exec(ExecRequest {
            command: "/bin/sh".into(),
            args: vec!["-c".into(), line.into()],
            ..ExecRequest::default()
        })
    };
    let outcome = run("echo $PATH; test -z \"$CARGO\" && echo clean")
        .await
        .unwrap();
    assert_eq!(outcome.stdout, b"/usr/loc", "capped at 8 bytes");
    assert_eq!(outcome.end, EndReason::OutputCapped);
    let outcome = run("sleep 5").await.unwrap();
    assert_eq!(outcome.end, EndReason::Timeout);
    let outcome = run("exit 4").await.unwrap();
    assert_eq!(
        (outcome.end, outcome.exit_code),
        (EndReason::Exited, Some(4))
    );
}

/// Host pids whose command line is exactly `cmdline`.
fn processes(cmdline: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim() == cmdline)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_does_not_outlive_its_node() {
    require_isolation!();
    let marker = "sleep 4244.5";
    let mut node = Command::new(env!("CARGO_BIN_EXE_neuroflow-node"))
        .args(["sandbox", "exec", "--"])
        .args(marker.split(' '))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while processes(marker).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the sandboxed sleep never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The node dies without any chance to clean up.
    node.kill().unwrap();
    node.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !processes(marker).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the sandbox outlived its node: {:?}",
            processes(marker)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_reaches_the_command_and_closes() {
    require_isolation!();
    let sandbox = builder("standard").build().unwrap();
    let input: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let outcome = sandbox
        .exec(ExecRequest {
            command: "sh".into(),
            args: vec!["-c".into(), "wc -c; echo done".into()],
            stdin: input.clone(),
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(outcome.end, EndReason::Exited);
    // All of it arrived, and the end of input came (wc returned).
    assert_eq!(
        String::from_utf8_lossy(&outcome.stdout),
        format!("{}\ndone\n", input.len())
    );
}
