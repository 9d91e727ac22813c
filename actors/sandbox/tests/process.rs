//! Long-lived processes (`Sandbox::spawn`) in real sandboxes: live pipes, how they end
//! (by themselves, killed, dropped, a limit, the timeout, the node dying), and where they
//! start. Needs root and the kernel's isolation layers; without them each test says why
//! and returns, unless NEUROFLOW_REQUIRE_ISOLATION=1 demands them, in which case it fails.

#[path = "process/support.rs"]
mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use neuroflow_kit::protocol::sandbox::EndReason;
use neuroflow_sandbox::{ByteSize, Profile, Sandbox, SpawnRequest};
use support::{eventually, marker, next_line, sh, spawn, standard, with_marker, within};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipes_are_live_and_a_clean_exit_is_reported() {
    let Some(builder) = standard("pipes_are_live_and_a_clean_exit_is_reported") else {
        return;
    };
    let sandbox = builder.build().unwrap();
    let mut process = spawn(
        &sandbox,
        sh(r#"while read l; do echo "got:$l"; echo "err:$l" >&2; done"#),
    )
    .await;
    let mut stdin = process.take_stdin().unwrap();
    let mut stdout = BufReader::new(process.take_stdout().unwrap());
    let mut stderr = BufReader::new(process.take_stderr().unwrap());
    assert!(process.take_stdout().is_none(), "a pipe is handed out once");

    // Each answer comes back while the process still runs and before the next line is
    // written: nothing is held back until the end.
    for word in ["one", "two"] {
        stdin
            .write_all(format!("{word}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        assert_eq!(next_line(&mut stdout).await, format!("got:{word}"));
        assert_eq!(next_line(&mut stderr).await, format!("err:{word}"));
    }
    drop(stdin);
    let exit = within(20, "wait", process.wait()).await.unwrap();
    assert_eq!(exit.end, EndReason::Exited, "{exit:?}");
    assert_eq!(exit.exit_code, Some(0), "{exit:?}");
    assert_eq!(exit.signal, None, "{exit:?}");
    assert!(exit.usage.start_latency_us > 0, "{exit:?}");
    assert!(exit.usage.wall_time_us >= exit.usage.start_latency_us);
    assert_eq!(
        exit.usage.bytes_out, 0,
        "the owner read the output, not the node"
    );
    assert_eq!(
        next_line(&mut stdout).await,
        "",
        "stdout ends with the process"
    );
    // The answer is kept.
    assert_eq!(within(5, "wait again", process.wait()).await.unwrap(), exit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_ends_the_process_and_wait_says_so() {
    let Some(builder) = standard("kill_ends_the_process_and_wait_says_so") else {
        return;
    };
    let sandbox = builder.build().unwrap();
    let mark = marker();
    let mut process = spawn(&sandbox, sh(&format!("echo ready; exec sleep {mark}"))).await;
    let mut stdout = BufReader::new(process.take_stdout().unwrap());
    assert_eq!(next_line(&mut stdout).await, "ready");
    assert!(eventually(5, || !with_marker(&mark).is_empty()).await);

    within(20, "kill", process.kill()).await;
    // kill returns once the processes are gone.
    assert!(with_marker(&mark).is_empty(), "killed processes remain");
    let exit = within(5, "wait", process.wait()).await.unwrap();
    assert_eq!(exit.end, EndReason::Signaled, "{exit:?}");
    assert_eq!(exit.signal, Some(libc::SIGKILL), "{exit:?}");
    assert_eq!(exit.exit_code, None, "{exit:?}");
    assert_eq!(exit.shell_status(), 128 + libc::SIGKILL);
    assert_eq!(next_line(&mut stdout).await, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_process_kills_its_whole_tree() {
    let Some(builder) = standard("dropping_the_process_kills_its_whole_tree") else {
        return;
    };
    let sandbox = builder.build().unwrap();
    let mark = marker();
    // A child, an orphan handed to PID 1, and the command itself.
    let mut process = spawn(
        &sandbox,
        sh(&format!(
            "sleep {mark} & (sleep {mark} &); echo ready; exec sleep {mark}"
        )),
    )
    .await;
    // Held past the drop: the process must not end merely because its input closed.
    let stdin = process.take_stdin().unwrap();
    let mut stdout = BufReader::new(process.take_stdout().unwrap());
    assert_eq!(next_line(&mut stdout).await, "ready");
    assert!(
        eventually(5, || with_marker(&mark).len() == 3).await,
        "{:?}",
        with_marker(&mark)
    );

    drop(process);
    assert!(
        eventually(10, || with_marker(&mark).is_empty()).await,
        "still running after the drop: {:?}",
        with_marker(&mark)
    );
    assert_eq!(next_line(&mut stdout).await, "");
    drop(stdin);
}

/// Not a test by itself: the owner process that `the_node_dying_kills_the_process` starts
/// and SIGKILLs. Runs only when that test passes it a marker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_for_the_node_death_test() {
    let Ok(mark) = std::env::var("NEUROFLOW_PROCESS_TEST_MARKER") else {
        return;
    };
    let sandbox = standard("owner_for_the_node_death_test")
        .expect("the parent test checked the host")
        .build()
        .unwrap();
    let process = spawn(&sandbox, sh(&format!("sleep {mark} & exec sleep {mark}"))).await;
    println!("SPAWNED");
    // Killed long before this.
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop(process);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_dying_kills_the_process() {
    if standard("the_node_dying_kills_the_process").is_none() {
        return;
    }
    let mark = marker();
    let state = support::state_dir().join(format!("owner-{mark}"));
    let mut owner = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "owner_for_the_node_death_test", "--nocapture"])
        .env("NEUROFLOW_PROCESS_TEST_MARKER", &mark)
        .env("TMPDIR", &state)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(owner.stdout.take().unwrap());
    within(90, "the owner's spawn", async {
        let mut line = String::new();
        while !line.starts_with("SPAWNED") {
            line.clear();
            let read = stdout.read_line(&mut line).await.unwrap();
            assert!(read > 0, "the owner ended before it spawned");
        }
    })
    .await;
    assert!(eventually(5, || with_marker(&mark).len() == 2).await);
    let cgroup = sandbox_cgroup_of(with_marker(&mark)[0]);
    assert!(
        cgroup.is_some(),
        "the sandbox's processes are in its cgroup"
    );

    // SIGKILL: no destructor runs; only the closed control pipe tells PID 1.
    owner.start_kill().unwrap();
    within(10, "the owner's death", owner.wait()).await.unwrap();
    let gone = eventually(10, || with_marker(&mark).is_empty()).await;
    // What the dead owner could not tidy: its sandbox's empty cgroup and state directory.
    remove_sandbox_cgroup(cgroup.as_deref()).await;
    let _ = std::fs::remove_dir_all(&state);
    assert!(gone, "outlived its node: {:?}", with_marker(&mark));
}

/// The name of the sandbox cgroup `pid` is in: the part after `/neuroflow/` in its cgroup
/// paths (hierarchies the sandbox does not use, like `name=systemd`, show other paths).
fn sandbox_cgroup_of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let parent = format!("/{}/", neuroflow_sandbox::cgroup::PARENT_DIR);
    text.lines().find_map(|line| {
        let (_, below) = line.split_once(parent.as_str())?;
        let name = below.split('/').next()?;
        (!name.is_empty()).then(|| name.to_string())
    })
}

/// Removes the (empty) cgroup `name` a killed owner left, in every hierarchy; the kernel
/// may count the last exiting tasks for a moment.
async fn remove_sandbox_cgroup(name: Option<&str>) {
    let (Some(name), Ok(host)) = (name, neuroflow_sandbox::cgroup::detect()) else {
        return;
    };
    let dirs: Vec<_> = host
        .hierarchies()
        .iter()
        .map(|h| {
            h.node_dir
                .join(neuroflow_sandbox::cgroup::PARENT_DIR)
                .join(name)
        })
        .collect();
    eventually(5, || {
        dirs.iter()
            .all(|dir| std::fs::remove_dir(dir).is_ok() || !dir.exists())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_limit_ends_an_interactive_process() {
    let Some(builder) = standard("the_memory_limit_ends_an_interactive_process") else {
        return;
    };
    let sandbox = builder.memory(ByteSize::mib(48)).build().unwrap();
    // Answers, then becomes a memory bomb (tail keeps an endless line in memory).
    let mut process = spawn(
        &sandbox,
        sh(r#"read l; echo "got:$l"; exec tail /dev/zero"#),
    )
    .await;
    let mut stdin = process.take_stdin().unwrap();
    let mut stdout = BufReader::new(process.take_stdout().unwrap());
    stdin.write_all(b"go\n").await.unwrap();
    assert_eq!(next_line(&mut stdout).await, "got:go");
    let exit = within(30, "wait", process.wait()).await.unwrap();
    assert_eq!(exit.end, EndReason::OomKilled, "{exit:?}");
    assert_eq!(exit.signal, Some(libc::SIGKILL), "{exit:?}");
    assert!(exit.usage.peak_memory_bytes <= 48 << 20, "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pids_limit_ends_an_interactive_process() {
    let Some(builder) = standard("the_pids_limit_ends_an_interactive_process") else {
        return;
    };
    let sandbox = builder.pids(16).build().unwrap();
    // Answers, then forks until refused; the shell gives up when it cannot fork.
    let mut process = spawn(
        &sandbox,
        sh(r#"read l; echo "got:$l"; while :; do sleep 60 & done"#),
    )
    .await;
    let mut stdin = process.take_stdin().unwrap();
    let mut stdout = BufReader::new(process.take_stdout().unwrap());
    stdin.write_all(b"go\n").await.unwrap();
    assert_eq!(next_line(&mut stdout).await, "got:go");
    let exit = within(30, "wait", process.wait()).await.unwrap();
    assert_eq!(exit.end, EndReason::PidsExhausted, "{exit:?}");
    assert!(exit.usage.peak_pids <= 16, "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_ends_a_process_that_is_still_talking() {
    let Some(builder) = standard("the_timeout_ends_a_process_that_is_still_talking") else {
        return;
    };
    let sandbox = builder.build().unwrap();
    let limit = Duration::from_millis(1500);
    let req = SpawnRequest {
        timeout: Some(limit),
        ..sh(r#"while read l; do echo "got:$l"; done"#)
    };
    let begun = Instant::now();
    let mut process = spawn(&sandbox, req).await;
    let mut stdin = process.take_stdin().unwrap();
    let mut stdout = BufReader::new(process.take_stdout().unwrap());
    stdin.write_all(b"hi\n").await.unwrap();
    assert_eq!(next_line(&mut stdout).await, "got:hi");
    // stdin stays open: only the timeout can end it.
    let exit = within(20, "wait", process.wait()).await.unwrap();
    assert!(begun.elapsed() >= limit);
    assert_eq!(exit.end, EndReason::Timeout, "{exit:?}");
    assert_eq!(exit.signal, Some(libc::SIGKILL), "{exit:?}");
    drop(stdin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_profile_timeout_is_for_exec_not_for_long_lived_processes() {
    let Some(builder) = standard("the_profile_timeout_is_for_exec_not_for_long_lived_processes")
    else {
        return;
    };
    let sandbox = builder.timeout(Duration::from_millis(500)).build().unwrap();
    let mut process = spawn(&sandbox, sh(r#"while read l; do echo "got:$l"; done"#)).await;
    let mut stdin = process.take_stdin().unwrap();
    let mut stdout = BufReader::new(process.take_stdout().unwrap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stdin.write_all(b"still\n").await.unwrap();
    assert_eq!(next_line(&mut stdout).await, "got:still");
    within(20, "kill", process.kill()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cwd_is_honoured_and_a_missing_one_is_a_clear_error() {
    let Some(builder) = standard("cwd_is_honoured_and_a_missing_one_is_a_clear_error") else {
        return;
    };
    // Warm: these runs take their sandboxes from the pool, as exec does.
    let sandbox = builder.warm(1).build().unwrap();
    for (cwd, expected) in [
        (None, "/workspace"),
        (Some("/tmp"), "/tmp"),
        (Some("/"), "/"),
    ] {
        let req = SpawnRequest {
            command: "pwd".into(),
            cwd: cwd.map(str::to_string),
            ..SpawnRequest::default()
        };
        let mut process = spawn(&sandbox, req).await;
        let mut stdout = BufReader::new(process.take_stdout().unwrap());
        assert_eq!(next_line(&mut stdout).await, expected, "cwd {cwd:?}");
        let exit = within(20, "wait", process.wait()).await.unwrap();
        assert_eq!((exit.end, exit.exit_code), (EndReason::Exited, Some(0)));
    }

    let missing = SpawnRequest {
        cwd: Some("/no/such/dir".into()),
        ..sh("echo should not run")
    };
    let err = within(60, "spawn", sandbox.spawn(missing))
        .await
        .unwrap_err();
    assert_eq!(err.layer_name(), Some("cwd"), "{err}");
    assert!(err.to_string().contains("/no/such/dir"), "{err}");

    let unknown = SpawnRequest {
        command: "no-such-command".into(),
        ..SpawnRequest::default()
    };
    let err = within(60, "spawn", sandbox.spawn(unknown))
        .await
        .unwrap_err();
    assert_eq!(err.layer_name(), Some("exec"), "{err}");
    assert!(err.to_string().contains("command not found"), "{err}");
}

#[tokio::test]
async fn a_profile_that_does_not_isolate_refuses_long_lived_processes() {
    let sandbox = Sandbox::builder(Profile::builtin("minimal").unwrap())
        .init_program(support::init_program())
        .build()
        .unwrap();
    let err = sandbox.spawn(sh("cat")).await.unwrap_err();
    assert_eq!(err.layer_name(), Some("pid-namespace"), "{err}");
    assert!(err.to_string().contains("minimal"), "{err}");
}
