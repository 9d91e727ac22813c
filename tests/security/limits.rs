//! Resource attacks: each ends the sandbox with its own clear reason and leaves the host
//! as it was.

use std::time::{Duration, Instant};

use neuroflow::kit::protocol::sandbox::EndReason;
use neuroflow_sandbox::ByteSize;

use crate::{Report, attack_in, builder, require_isolation, shell_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fork_bomb_hits_the_pids_limit() {
    require_isolation!();
    let sandbox = builder("standard")
        .pids(32)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let outcome = shell_in(&sandbox, "bomb() { bomb | bomb & }; bomb; sleep 10").await;
    assert_eq!(outcome.end, EndReason::PidsExhausted, "{outcome:?}");
    assert!(outcome.usage.peak_pids <= 32, "{:?}", outcome.usage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_is_oom_killed() {
    require_isolation!();
    let sandbox = builder("standard")
        .memory(ByteSize::mib(64))
        .build()
        .unwrap();
    let outcome = attack_in(
        &sandbox,
        r#"
chunks = []
while True:
    chunks.append(bytearray(16 * 1024 * 1024))
"#,
    )
    .await;
    assert_eq!(outcome.end, EndReason::OomKilled, "{outcome:?}");
    assert_eq!(outcome.signal, Some(libc::SIGKILL));
    assert!(
        outcome.usage.peak_memory_bytes <= 64 << 20,
        "{:?}",
        outcome.usage
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_burn_hits_the_cpu_time_limit() {
    require_isolation!();
    let sandbox = builder("standard")
        .cpu_time(Duration::from_secs(1))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let outcome = shell_in(&sandbox, "while :; do :; done").await;
    assert_eq!(outcome.end, EndReason::CpuTime, "{outcome:?}");
    assert!(outcome.usage.cpu_time_us >= 900_000, "{:?}", outcome.usage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_quota_throttles_a_busy_loop() {
    require_isolation!();
    let sandbox = builder("standard")
        .cpu_millicores(100)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let outcome = shell_in(&sandbox, "while :; do :; done").await;
    assert_eq!(outcome.end, EndReason::Timeout, "{outcome:?}");
    // A tenth of a core for two seconds: about 0.2 s of CPU, far from 2 s.
    let cpu = Duration::from_micros(outcome.usage.cpu_time_us);
    assert!(
        cpu < Duration::from_millis(700) && cpu > Duration::ZERO,
        "{cpu:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_fill_stops_at_the_disk_and_tmp_limits() {
    require_isolation!();
    let sandbox = builder("standard")
        .disk(ByteSize::mib(8))
        .tmp(ByteSize::mib(4))
        .file_size(ByteSize::mib(64))
        .build()
        .unwrap();
    let r = Report::of(
        attack_in(
            &sandbox,
            r#"
def fill(path):
    with open(path, "wb") as f:
        for _ in range(64):
            f.write(b"\0" * (1 << 20))
            f.flush()
attempt("workspace", lambda: fill("/workspace/fill"))
attempt("tmp", lambda: fill("/tmp/fill"))
"#,
        )
        .await,
    );
    r.refused("workspace", &["ENOSPC"]);
    r.refused("tmp", &["ENOSPC"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_cannot_outgrow_the_file_size_limit() {
    require_isolation!();
    let sandbox = builder("standard")
        .file_size(ByteSize::mib(1))
        .build()
        .unwrap();
    let r = Report::of(
        attack_in(
            &sandbox,
            r#"
attempt("big", lambda: open("/workspace/big", "wb").write(b"\0" * (2 << 20)))
print("size=" + str(os.path.getsize("/workspace/big")))
"#,
        )
        .await,
    );
    r.refused("big", &["EFBIG"]);
    assert_eq!(r.get("size"), (1 << 20).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_flood_is_capped() {
    require_isolation!();
    let sandbox = builder("standard")
        .output(ByteSize::kib(64))
        .build()
        .unwrap();
    let begun = Instant::now();
    let outcome = shell_in(&sandbox, "yes flood; sleep 60").await;
    assert_eq!(outcome.end, EndReason::OutputCapped);
    assert!(outcome.output_truncated);
    assert_eq!(outcome.stdout.len() + outcome.stderr.len(), 64 << 10);
    assert!(outcome.usage.bytes_out > 64 << 10);
    assert!(begun.elapsed() < Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonized_orphans_die_with_the_command() {
    require_isolation!();
    let sandbox = builder("standard").build().unwrap();
    let outcome = shell_in(
        &sandbox,
        "setsid sleep 4242.25 & nohup sleep 4242.5 >/dev/null 2>&1 & (sleep 4242.75 &) ; echo spawned",
    )
    .await;
    assert_eq!(outcome.end, EndReason::Exited);
    assert_eq!(outcome.stdout, b"spawned\n");
    std::thread::sleep(Duration::from_millis(200));
    let survivors: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains("4242."))
        .collect();
    assert!(survivors.is_empty(), "{survivors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_command_is_ended_at_its_timeout() {
    require_isolation!();
    let sandbox = builder("standard")
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let begun = Instant::now();
    let outcome = shell_in(&sandbox, "trap '' TERM; sleep 60").await;
    assert_eq!(outcome.end, EndReason::Timeout);
    assert_eq!(outcome.signal, Some(libc::SIGKILL));
    assert!(
        begun.elapsed() < Duration::from_secs(10),
        "{:?}",
        begun.elapsed()
    );
}
