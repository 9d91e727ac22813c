//! sandbox.exec through a fake sandbox service, and time.now.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use neuroflow_kit::actor::{Actor, ActorError, Ctx};
use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::protocol::sandbox::{
    EndReason, ExecOutcome, ExecRequest, ResourceUsage, SandboxFailure, SandboxMsg, SandboxReply,
};
use neuroflow_kit::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorSpec};
use neuroflow_router::builtin::sandbox::{SandboxToolConfig, exec_fn, exec_via, tool};
use neuroflow_router::builtin::time;
use serde_json::json;

type Seen = Arc<Mutex<Vec<(String, ExecRequest)>>>;

fn outcome(end: EndReason, exit_code: Option<i32>, stdout: &[u8]) -> ExecOutcome {
    ExecOutcome {
        end,
        exit_code,
        signal: None,
        stdout: stdout.to_vec(),
        stderr: b"warn".to_vec(),
        output_truncated: false,
        usage: ResourceUsage {
            wall_time_us: 12_000,
            ..ResourceUsage::default()
        },
    }
}

async fn router_with_fake_sandbox(reply: SandboxReply) -> (Running, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let exec = exec_fn(move |profile, req| {
        record.lock().unwrap().push((profile, req));
        let reply = reply.clone();
        async move { reply }
    });
    // alice runs code in "strict"; calls for no agent use "standard"; bob may not.
    let profiles = Arc::new(|caller: Option<&str>| match caller {
        Some("alice") => Some("strict".to_string()),
        None => Some("standard".to_string()),
        _ => None,
    });
    let config = SandboxToolConfig {
        max_output_bytes: 8,
        ..SandboxToolConfig::default()
    };
    let r = start(1).await;
    r.tools.register(tool(exec, profiles, config)).unwrap();
    (r, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_and_snippets_go_to_the_callers_profile() {
    let done = SandboxReply::Done(outcome(EndReason::Exited, Some(0), b"0123456789abc"));
    let (r, seen) = router_with_fake_sandbox(done).await;
    let mut req = as_agent(
        "sandbox.exec",
        json!({"code": "echo hi", "stdin": "in"}),
        "alice",
    );
    req.timeout_ms = Some(10_000);
    let out = r.tools.call(req).await.unwrap();
    assert!(!out.is_error, "{}", out.content);
    let got = content(&out);
    assert_eq!(got["exit_code"], 0);
    assert_eq!(got["end"], "exited");
    assert_eq!(got["stdout"], "01234567");
    assert_eq!(got["stdout_truncated"], true);
    assert_eq!(got["stderr"], "warn");
    assert_eq!(got["wall_time_ms"], 12);

    let out = r
        .tools
        .call(request(
            "sandbox.exec",
            json!({"code": "print(1)", "language": "python", "timeout_ms": 60_000}),
        ))
        .await
        .unwrap();
    assert!(!out.is_error);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let (profile, shell) = &seen[0];
    assert_eq!(profile, "strict");
    assert_eq!(
        (shell.command.as_str(), shell.args.clone()),
        ("sh", vec!["-c".into(), "echo hi".into()])
    );
    assert_eq!(shell.stdin, b"in");
    // The sandbox's limit never outlasts the call's deadline.
    assert!(shell.timeout_ms.unwrap() <= 10_000);
    let (profile, python) = &seen[1];
    assert_eq!(profile, "standard");
    assert_eq!(python.command, "python3");
    assert_eq!(python.args, vec!["-c".to_string(), "print(1)".into()]);
    assert!(
        python.timeout_ms.unwrap() <= 30_000,
        "{:?}",
        python.timeout_ms
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_refusals_and_agents_without_a_profile_are_failed_results() {
    let failed = SandboxReply::Done(outcome(EndReason::Timeout, None, b""));
    let (r, seen) = router_with_fake_sandbox(failed).await;
    let out = r
        .tools
        .call(as_agent(
            "sandbox.exec",
            json!({"code": "sleep 99"}),
            "alice",
        ))
        .await
        .unwrap();
    assert!(out.is_error);
    assert_eq!(content(&out)["end"], "timeout");

    let out = r
        .tools
        .call(as_agent("sandbox.exec", json!({"code": "id"}), "bob"))
        .await
        .unwrap();
    assert!(
        out.is_error && out.content.contains("no sandbox profile"),
        "{}",
        out.content
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "bob's code reached the sandbox"
    );
    r.stop().await;

    let refused = SandboxReply::Refused(SandboxFailure {
        layer: Some("seccomp".into()),
        message: "no libseccomp".into(),
    });
    let (r, _) = router_with_fake_sandbox(refused).await;
    let out = r
        .tools
        .call(as_agent("sandbox.exec", json!({"code": "true"}), "alice"))
        .await
        .unwrap();
    assert!(out.is_error);
    assert!(
        out.content.contains("(seccomp)") && out.content.contains("no libseccomp"),
        "{}",
        out.content
    );
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_now_gives_rfc3339_utc_and_unix_seconds() {
    let r = start(1).await;
    r.tools.register(time::tool()).unwrap();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let out = r.tools.call(request("time.now", json!({}))).await.unwrap();
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let got = content(&out);
    let unix = got["unix"].as_u64().unwrap();
    assert!((before..=after).contains(&unix));
    let utc = got["utc"].as_str().unwrap();
    assert_eq!(utc, time::rfc3339(unix as i64));
    let b = utc.as_bytes();
    assert_eq!(b.len(), 20, "{utc}");
    assert!(utc.ends_with('Z') && b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':');
    assert!(
        r.tools
            .call(request("time.now", json!({"x": 1})))
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::ZERO).await;
    r.stop().await;
}

/// A stand-in sandbox actor: answers every command with its own argv as stdout.
struct FakeSandbox;

impl Actor for FakeSandbox {
    const KIND: &'static str = "sandbox";
    type Msg = SandboxMsg;
    type Reply = SandboxReply;
    type State = ();
    type Args = ();

    async fn started(&self, _: &Ctx<Self>, (): ()) -> Result<(), ActorError> {
        Ok(())
    }

    async fn handle(
        &self,
        _: &Ctx<Self>,
        msg: SandboxMsg,
        _: &mut (),
    ) -> Result<SandboxReply, ActorError> {
        let SandboxMsg::Exec(req) = msg;
        let argv = format!("{} {}", req.command, req.args.join(" "));
        Ok(SandboxReply::Done(outcome(
            EndReason::Exited,
            Some(0),
            argv.as_bytes(),
        )))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_actor_can_serve_the_tool_through_its_protocol() {
    let metrics = Metrics::new().unwrap();
    let (child, sandbox) = ChildSpec::actor("sandbox", || (FakeSandbox, ()));
    let spec = SupervisorSpec::new("sandboxes", Strategy::OneForOne).child(child);
    let (sandboxes, _join) = Supervisor::start_root(spec, metrics).await.unwrap();
    let exec = exec_via(sandbox.recipient(), Duration::from_secs(5));
    let r = start(1).await;
    let anyone = Arc::new(|_: Option<&str>| Some("standard".to_string()));
    let config = SandboxToolConfig::default();
    r.tools.register(tool(exec, anyone, config)).unwrap();
    let out = r
        .tools
        .call(request("sandbox.exec", json!({"code": "ls"})))
        .await
        .unwrap();
    assert_eq!(content(&out)["stdout"], "sh -c ls");
    // With the sandbox down, the call is a failed result, not a hang.
    sandboxes.stop(WAIT).await;
    let out = r
        .tools
        .call(request("sandbox.exec", json!({"code": "ls"})))
        .await
        .unwrap();
    assert!(
        out.is_error && out.content.contains("refused"),
        "{}",
        out.content
    );
    r.stop().await;
}
