//! Supervision: strategies, restart types, intensity and escalation, backoff, calls to
//! actors that die, and the tree and metrics a supervisor reports.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Journal, Worker, WorkerMsg, WorkerReply, eventually};
use neuroflow_kit::actor::{ActorHandle, CallError};
use neuroflow_kit::envelope::{Envelope, Timestamp};
use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::supervisor::{
    Backoff, ChildSpec, ChildStatus, Restart, RootExit, Strategy, Supervisor, SupervisorError,
    SupervisorHandle, SupervisorSpec,
};

const T: Duration = Duration::from_secs(2);

fn worker(journal: &Journal, name: &'static str) -> (ChildSpec, ActorHandle<Worker>) {
    let journal = journal.clone();
    ChildSpec::actor(name, move || {
        (
            Worker {
                name,
                journal: journal.clone(),
            },
            (),
        )
    })
}

fn spec(strategy: Strategy) -> SupervisorSpec {
    SupervisorSpec::new("root", strategy)
        .backoff(Backoff::NONE)
        .intensity(10, Duration::from_secs(10))
}

struct Three {
    root: SupervisorHandle,
    join: tokio::task::JoinHandle<RootExit>,
    journal: Journal,
    metrics: Arc<Metrics>,
    a: ActorHandle<Worker>,
    b: ActorHandle<Worker>,
    c: ActorHandle<Worker>,
}

async fn three(strategy: Strategy) -> Three {
    let journal = Journal::default();
    let (sa, a) = worker(&journal, "a");
    let (sb, b) = worker(&journal, "b");
    let (sc, c) = worker(&journal, "c");
    let metrics = Metrics::new().unwrap();
    let (root, join) = Supervisor::start_root(
        spec(strategy).child(sa).child(sb).child(sc),
        metrics.clone(),
    )
    .await
    .unwrap();
    Three {
        root,
        join,
        journal,
        metrics,
        a,
        b,
        c,
    }
}

async fn incarnation(h: &ActorHandle<Worker>) -> u32 {
    match h.call(WorkerMsg::Ping, T).await.unwrap() {
        WorkerReply::Pong { incarnation } => incarnation,
    }
}

async fn crash_and_wait(t: &Three, target: &ActorHandle<Worker>, name: &'static str) {
    let before = t.journal.starts(name);
    let err = target.call(WorkerMsg::Fail, T).await.unwrap_err();
    assert!(matches!(err, CallError::Failed { .. }), "{err:?}");
    eventually("restart", || t.journal.starts(name) > before).await;
    eventually("handle re-attached", || target.is_up()).await;
}

#[tokio::test]
async fn one_for_one_restarts_only_the_failed_child() {
    let t = three(Strategy::OneForOne).await;
    crash_and_wait(&t, &t.b, "b").await;
    assert_eq!(incarnation(&t.a).await, 1);
    assert_eq!(incarnation(&t.b).await, 2);
    assert_eq!(incarnation(&t.c).await, 1);
    let tree = t.root.tree(T).await.unwrap();
    let restarts: Vec<u64> = tree.children.iter().map(|c| c.restarts).collect();
    assert_eq!(restarts, [0, 1, 0]);
    t.root.stop(T).await;
}

#[tokio::test]
async fn one_for_all_restarts_every_child_in_order() {
    let t = three(Strategy::OneForAll).await;
    crash_and_wait(&t, &t.b, "b").await;
    eventually("all restarted", || {
        ["a", "b", "c"].iter().all(|n| t.journal.starts(n) == 2)
    })
    .await;
    for h in [&t.a, &t.b, &t.c] {
        eventually("up", || h.is_up()).await;
        assert_eq!(incarnation(h).await, 2);
    }
    // Siblings are stopped last-started first, then all start again in order.
    let events = t.journal.events();
    let tail: Vec<&str> = events[3..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "c stopped",
            "a stopped",
            "a started",
            "b started",
            "c started"
        ]
    );
    t.root.stop(T).await;
}

#[tokio::test]
async fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
    let t = three(Strategy::RestForOne).await;
    crash_and_wait(&t, &t.b, "b").await;
    eventually("c restarted", || t.journal.starts("c") == 2).await;
    eventually("c up", || t.c.is_up()).await;
    assert_eq!(incarnation(&t.a).await, 1);
    assert_eq!(incarnation(&t.b).await, 2);
    assert_eq!(incarnation(&t.c).await, 2);
    t.root.stop(T).await;
}

#[tokio::test]
async fn a_panicking_handler_is_a_failure_and_its_caller_gets_an_error() {
    let t = three(Strategy::OneForOne).await;
    let err = t.a.call(WorkerMsg::Panic, T).await.unwrap_err();
    assert!(matches!(err, CallError::Stopped { .. }), "{err:?}");
    eventually("a restarted", || t.journal.starts("a") == 2).await;
    let m = t.a.metrics().unwrap();
    eventually("failure counted", || m.failures() == 1).await;
    assert_eq!(m.restarts(), 1);
    t.root.stop(T).await;
}

async fn single(restart: Restart) -> (SupervisorHandle, ActorHandle<Worker>, Journal) {
    let journal = Journal::default();
    let (s, h) = worker(&journal, "w");
    let (root, _) = Supervisor::start_root(
        spec(Strategy::OneForOne).child(s.restart(restart)),
        Metrics::new().unwrap(),
    )
    .await
    .unwrap();
    (root, h, journal)
}

#[tokio::test]
async fn permanent_children_restart_even_after_a_normal_exit() {
    let (root, w, journal) = single(Restart::Permanent).await;
    w.call(WorkerMsg::Exit, T).await.unwrap();
    eventually("restarted", || journal.starts("w") == 2).await;
    eventually("up", || w.is_up()).await;
    assert_eq!(incarnation(&w).await, 2);
    root.stop(T).await;
}

#[tokio::test]
async fn transient_children_restart_after_failure_but_not_after_a_normal_exit() {
    let (root, w, journal) = single(Restart::Transient).await;
    let _ = w.call(WorkerMsg::Fail, T).await;
    eventually("restarted after failure", || journal.starts("w") == 2).await;
    eventually("up", || w.is_up()).await;
    w.call(WorkerMsg::Exit, T).await.unwrap();
    eventually("down", || !w.is_up()).await;
    let tree = root.tree(T).await.unwrap();
    assert_eq!(tree.children[0].status, ChildStatus::Stopped);
    assert_eq!(journal.starts("w"), 2);
    let err = w.call(WorkerMsg::Ping, T).await.unwrap_err();
    assert!(matches!(err, CallError::Unavailable { .. }), "{err:?}");
    root.stop(T).await;
}

#[tokio::test]
async fn temporary_children_are_never_restarted_and_leave_the_tree() {
    let (root, w, journal) = single(Restart::Temporary).await;
    let _ = w.call(WorkerMsg::Fail, T).await;
    eventually("down", || !w.is_up()).await;
    let tree = root.tree(T).await.unwrap();
    assert!(tree.children.is_empty(), "{tree:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(journal.starts("w"), 1);
    root.stop(T).await;
}

#[tokio::test]
async fn exceeding_restart_intensity_fails_the_supervisor_and_escalates() {
    let journal = Journal::default();
    let (sw, w) = worker(&journal, "w");
    let inner = SupervisorSpec::new("inner", Strategy::OneForOne)
        .backoff(Backoff::NONE)
        .intensity(2, Duration::from_secs(10))
        .child(sw);
    let (inner_spec, inner_handle) = ChildSpec::supervisor(inner);
    let metrics = Metrics::new().unwrap();
    let (root, _) =
        Supervisor::start_root(spec(Strategy::OneForOne).child(inner_spec), metrics.clone())
            .await
            .unwrap();

    // Two restarts are within the intensity of "inner"...
    for n in 2..=3 {
        let _ = w.call(WorkerMsg::Fail, T).await;
        eventually("restart", || journal.starts("w") == n).await;
        eventually("up", || w.is_up()).await;
    }
    let inner_restarts = || metrics.actor("supervisor", "root/inner").restarts();
    assert_eq!(inner_restarts(), 0);
    // ...the third is not: "inner" stops its child and fails; "root" restarts it, and the
    // new "inner" starts a fresh worker.
    let _ = w.call(WorkerMsg::Fail, T).await;
    eventually("inner restarted by root", || inner_restarts() == 1).await;
    eventually("worker back", || w.is_up()).await;
    assert_eq!(journal.starts("w"), 4);
    eventually("inner up", || inner_handle.is_up()).await;
    let tree = root.tree(T).await.unwrap();
    let inner_node = tree.find("inner").unwrap();
    assert_eq!(inner_node.restarts, 1);
    assert_eq!(inner_node.status, ChildStatus::Running);
    assert_eq!(inner_node.children[0].path, "root/inner/w");
    root.stop(T).await;
}

#[tokio::test]
async fn a_root_that_exceeds_its_intensity_stops_with_its_children() {
    let journal = Journal::default();
    let (sw, w) = worker(&journal, "w");
    let (root, join) = Supervisor::start_root(
        SupervisorSpec::new("root", Strategy::OneForOne)
            .backoff(Backoff::NONE)
            .intensity(1, Duration::from_secs(10))
            .child(sw),
        Metrics::new().unwrap(),
    )
    .await
    .unwrap();
    let _ = w.call(WorkerMsg::Fail, T).await;
    eventually("restart", || journal.starts("w") == 2).await;
    eventually("up", || w.is_up()).await;
    let _ = w.call(WorkerMsg::Fail, T).await;
    let exit = tokio::time::timeout(T, join).await.unwrap().unwrap();
    match exit {
        RootExit::Failed(reason) => {
            assert!(
                reason
                    .contains("root: restart intensity exceeded (more than 1 restarts within 10s)"),
                "{reason}"
            );
            assert!(
                reason.contains("last exit of root/w: w told to fail"),
                "{reason}"
            );
        }
        RootExit::Stopped => panic!("the root should have failed"),
    }
    assert!(!root.is_up());
    assert!(!w.is_up());
    assert_eq!(journal.starts("w"), 2);
}

#[tokio::test]
async fn backoff_delays_restarts_and_calls_meanwhile_fail_fast() {
    let journal = Journal::default();
    let (sw, w) = worker(&journal, "w");
    let backoff = Backoff {
        initial: Duration::from_millis(300),
        max: Duration::from_secs(1),
        reset_after: Duration::from_secs(30),
    };
    let (root, _) = Supervisor::start_root(
        spec(Strategy::OneForOne).backoff(backoff).child(sw),
        Metrics::new().unwrap(),
    )
    .await
    .unwrap();
    let crashed = Instant::now();
    let _ = w.call(WorkerMsg::Fail, T).await;
    eventually("down", || !w.is_up()).await;
    let tree = root.tree(T).await.unwrap();
    assert_eq!(tree.children[0].status, ChildStatus::Restarting);

    let asked = Instant::now();
    let err = w.call(WorkerMsg::Ping, T).await.unwrap_err();
    assert!(
        asked.elapsed() < Duration::from_millis(100),
        "did not fail fast"
    );
    match err {
        CallError::Unavailable { actor, reason } => {
            assert_eq!(actor, "root/w");
            assert_eq!(reason, "restarting");
        }
        other => panic!("unexpected {other:?}"),
    }
    eventually("back up", || w.is_up()).await;
    assert!(crashed.elapsed() >= Duration::from_millis(300));
    assert_eq!(incarnation(&w).await, 2);
    root.stop(T).await;
}

#[test]
fn backoff_doubles_and_is_capped() {
    let b = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
        reset_after: Duration::from_secs(1),
    };
    let delays: Vec<u128> = (0..6).map(|n| b.delay(n).as_millis()).collect();
    assert_eq!(delays, [50, 100, 200, 400, 500, 500]);
    assert_eq!(b.delay(u32::MAX), Duration::from_millis(500));
    assert_eq!(Backoff::NONE.delay(3), Duration::ZERO);
}

#[tokio::test]
async fn a_call_that_misses_its_deadline_returns_timeout_in_time() {
    let t = three(Strategy::OneForOne).await;
    let asked = Instant::now();
    let err =
        t.a.call(WorkerMsg::Sleep(5_000), Duration::from_millis(100))
            .await
            .unwrap_err();
    let waited = asked.elapsed();
    assert!(
        matches!(
            err,
            CallError::Timeout {
                timeout_ms: 100,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(waited < Duration::from_millis(1_000), "waited {waited:?}");
    t.root.stop(T).await;
}

#[tokio::test]
async fn a_call_to_an_actor_that_dies_while_the_message_is_queued_returns_an_error() {
    let t = three(Strategy::OneForOne).await;
    // The first message occupies the actor; the second waits in its mailbox when the
    // first fails, and is dropped with the dead incarnation.
    let busy = t.a.call(WorkerMsg::Sleep(100), T);
    let queued = async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let victim = t.a.call(WorkerMsg::Ping, T);
        t.a.inject_failure("test").unwrap();
        victim.await
    };
    let (first, second) = tokio::join!(busy, queued);
    assert!(first.is_ok());
    let err = second.unwrap_err();
    assert!(matches!(err, CallError::Stopped { .. }), "{err:?}");
    let m = t.a.metrics().unwrap();
    eventually("mailbox emptied", || m.mailbox_depth() == 0).await;
    t.root.stop(T).await;
}

#[tokio::test]
async fn expired_messages_are_counted_not_handled() {
    let t = three(Strategy::OneForOne).await;
    let m = t.a.metrics().unwrap();
    // A call whose envelope is already past its deadline is refused without being sent...
    let past = Envelope::new(WorkerMsg::Ping).with_deadline(Timestamp(1));
    let err = t.a.call_envelope(past, T).await.unwrap_err();
    assert!(matches!(err, CallError::Expired { .. }), "{err:?}");
    // ...and a message that reaches the actor past its deadline is dropped and counted.
    t.a.tell_envelope(Envelope::new(WorkerMsg::Ping).with_deadline(Timestamp(1)))
        .unwrap();
    eventually("counted as expired", || m.expired() == 1).await;
    assert_eq!(m.handled(), 0);
    // A call whose caller gave up while it was queued is dropped and counted too.
    t.a.tell(WorkerMsg::Sleep(100)).unwrap();
    let err =
        t.a.call(WorkerMsg::Ping, Duration::from_millis(20))
            .await
            .unwrap_err();
    assert!(matches!(err, CallError::Timeout { .. }), "{err:?}");
    eventually("abandoned call counted as expired", || m.expired() == 2).await;
    assert_eq!(m.handled(), 1);
    // A message with time left is handled.
    let fresh = Envelope::new(WorkerMsg::Ping).with_timeout(T);
    assert!(t.a.call_envelope(fresh, T).await.is_ok());
    assert_eq!(m.handled(), 2);
    t.root.stop(T).await;
}

#[tokio::test]
async fn mailbox_depth_counts_messages_waiting() {
    let t = three(Strategy::OneForOne).await;
    let m = t.a.metrics().unwrap();
    t.a.tell(WorkerMsg::Sleep(200)).unwrap();
    for _ in 0..5 {
        t.a.tell(WorkerMsg::Ping).unwrap();
    }
    eventually("first message taken", || m.mailbox_depth() == 5).await;
    eventually("all handled", || m.handled() == 6).await;
    assert_eq!(m.mailbox_depth(), 0);
    t.root.stop(T).await;
}

#[tokio::test]
async fn metrics_render_failures_and_restarts_per_actor() {
    let t = three(Strategy::OneForOne).await;
    crash_and_wait(&t, &t.b, "b").await;
    let text = t.metrics.render();
    for line in [
        r#"neuroflow_actor_restarts_total{kind="test.worker",name="root/b"} 1"#,
        r#"neuroflow_actor_failures_total{kind="test.worker",name="root/b"} 1"#,
        r#"neuroflow_actor_restarts_total{kind="test.worker",name="root/a"} 0"#,
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(text.contains("# TYPE neuroflow_actor_handling_seconds histogram"));
    t.root.stop(T).await;
}

#[tokio::test]
async fn pooled_children_share_a_bounded_name_label() {
    let journal = Journal::default();
    let metrics = Metrics::new().unwrap();
    let (root, _) = Supervisor::start_root(spec(Strategy::OneForOne), metrics.clone())
        .await
        .unwrap();
    let mut handles = Vec::new();
    for name in ["p1", "p2", "p3"] {
        let (s, h) = worker(&journal, name);
        root.start_child(s.pooled().restart(Restart::Temporary), T)
            .await
            .unwrap();
        handles.push(h);
    }
    for h in &handles {
        incarnation(h).await;
    }
    let text = metrics.render();
    assert!(
        text.contains(r#"neuroflow_actor_messages_handled_total{kind="test.worker",name="*"} 3"#),
        "{text}"
    );
    assert!(!text.contains("root/p1"));
    root.stop(T).await;
}

#[tokio::test]
async fn stopping_a_tree_stops_children_last_started_first() {
    let t = three(Strategy::OneForOne).await;
    t.root.stop(T).await;
    let exit = tokio::time::timeout(T, t.join).await.unwrap().unwrap();
    assert_eq!(exit, RootExit::Stopped);
    let events = t.journal.events();
    assert_eq!(&events[3..], ["c stopped", "b stopped", "a stopped"]);
    assert!(!t.a.is_up());
}

#[tokio::test]
async fn children_can_be_started_and_stopped_at_runtime() {
    let journal = Journal::default();
    let (root, _) = Supervisor::start_root(spec(Strategy::OneForOne), Metrics::new().unwrap())
        .await
        .unwrap();
    let (s, h) = worker(&journal, "dyn");
    root.start_child(s, T).await.unwrap();
    assert_eq!(incarnation(&h).await, 1);
    let (dup, _) = worker(&journal, "dyn");
    assert_eq!(
        root.start_child(dup, T).await.unwrap_err(),
        SupervisorError::DuplicateChild("dyn".into())
    );
    root.stop_child("dyn", T).await.unwrap();
    assert!(!h.is_up());
    assert_eq!(
        root.stop_child("dyn", T).await.unwrap_err(),
        SupervisorError::NoSuchChild("root/dyn".into())
    );
    root.stop(T).await;
}

#[tokio::test]
async fn a_child_that_fails_to_start_fails_the_supervisor_start() {
    let journal = Journal::default();
    journal
        .fail_starts
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let (s, _) = worker(&journal, "w");
    let err =
        match Supervisor::start_root(spec(Strategy::OneForOne).child(s), Metrics::new().unwrap())
            .await
        {
            Ok(_) => panic!("start should fail"),
            Err(err) => err.to_string(),
        };
    assert!(err.contains("root/w failed to start"), "{err}");
    assert!(err.contains("w refuses to start"), "{err}");
}

#[tokio::test]
async fn a_child_that_fails_to_restart_is_retried_until_it_starts() {
    let t = three(Strategy::OneForOne).await;
    t.journal
        .fail_starts
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let _ = t.a.call(WorkerMsg::Fail, T).await;
    eventually("a restarted after failed starts", || {
        t.journal.starts("a") == 2
    })
    .await;
    eventually("up", || t.a.is_up()).await;
    let failed = t
        .journal
        .events()
        .iter()
        .filter(|e| *e == "a start-failed")
        .count();
    assert_eq!(failed, 2);
    assert_eq!(t.a.metrics().unwrap().failures(), 3);
    t.root.stop(T).await;
}

#[tokio::test]
async fn fault_injection_reaches_actors_by_path() {
    let journal = Journal::default();
    let (sw, w) = worker(&journal, "w");
    let (inner, _) = ChildSpec::supervisor(
        SupervisorSpec::new("inner", Strategy::OneForOne)
            .backoff(Backoff::NONE)
            .child(sw),
    );
    let (root, _) = Supervisor::start_root(
        spec(Strategy::OneForOne).child(inner),
        Metrics::new().unwrap(),
    )
    .await
    .unwrap();
    root.inject_failure("inner/w", "drill", T).await.unwrap();
    eventually("restarted", || journal.starts("w") == 2).await;
    assert_eq!(
        root.inject_failure("inner/nope", "drill", T)
            .await
            .unwrap_err(),
        SupervisorError::NoSuchChild("root/inner/nope".into())
    );
    assert_eq!(
        root.inject_failure("inner/w/deeper", "drill", T)
            .await
            .unwrap_err(),
        SupervisorError::NoSuchChild("root/inner/w/deeper".into())
    );
    eventually("up", || w.is_up()).await;
    root.stop(T).await;
}

#[tokio::test]
async fn a_recipient_follows_restarts_like_its_handle() {
    let (root, w, journal) = single(Restart::Transient).await;
    let recipient: neuroflow_kit::Recipient<WorkerMsg, WorkerReply> = w.recipient();
    assert_eq!(recipient.path(), w.path());
    assert!(recipient.path().ends_with("/w"));
    assert_eq!(
        recipient.call(WorkerMsg::Ping, T).await.unwrap(),
        WorkerReply::Pong { incarnation: 1 }
    );
    let err = recipient.call(WorkerMsg::Fail, T).await.unwrap_err();
    assert!(matches!(err, CallError::Failed { .. }), "{err:?}");
    eventually("restarted", || journal.starts("w") == 2).await;
    eventually("up", || w.is_up()).await;
    assert_eq!(
        recipient.call(WorkerMsg::Ping, T).await.unwrap(),
        WorkerReply::Pong { incarnation: 2 }
    );
    w.call(WorkerMsg::Exit, T).await.unwrap();
    eventually("down", || !w.is_up()).await;
    let err = recipient.tell(WorkerMsg::Ping).unwrap_err();
    assert!(matches!(err, CallError::Unavailable { .. }), "{err:?}");
    root.stop(T).await;
}
