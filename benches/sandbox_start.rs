//! Start-to-exit of `true`: NeuroFlow's `standard` sandbox side by side with bubblewrap and
//! util-linux `unshare`, measured in one run, alternating so that drift hits all alike.
//!
//! ```sh
//! cargo bench --bench sandbox_start            # 200 rounds
//! cargo bench --bench sandbox_start -- 50      # fewer
//! ```
//!
//! NeuroFlow is timed from `Sandbox::exec` to its outcome inside a running process (as the
//! node runs it); the baselines from spawning their command to its exit. NeuroFlow does
//! more: seccomp, a cgroup with limits, an overlay root, a fresh /proc and /dev, and the
//! clean teardown of all of it. Needs root; prints why and exits 0 otherwise.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use neuroflow::kit::protocol::sandbox::{EndReason, ExecRequest};
use neuroflow_sandbox::{HostSupport, InitProgram, Profile, Sandbox};

fn main() {
    // Under `cargo test --benches` the harness runs a few rounds as a smoke test.
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if std::env::args().any(|a| a == "--bench") {
            200
        } else {
            3
        });
    let host = HostSupport::detect();
    if let Some(missing) = host.missing(&Profile::builtin("standard").unwrap()) {
        println!("sandbox_start: skipped, this host lacks {}", missing.layer);
        return;
    }
    let init = PathBuf::from(env!("CARGO_BIN_EXE_neuroflow-node"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let build = |warm: usize| {
        let _guard = runtime.enter();
        Sandbox::builder(Profile::builtin("standard").unwrap())
            .init_program(InitProgram {
                path: init.clone(),
                args: vec!["sandbox-init".into()],
            })
            .warm(warm)
            .build()
            .expect("standard sandbox")
    };
    // As the node runs it: one sandbox kept built ahead of requests.
    let warm = build(1);
    // Every request builds its own: the cost of a burst that outruns the spares.
    let cold = build(0);
    let neuroflow = |sandbox: &Sandbox| {
        let begun = Instant::now();
        let outcome = runtime
            .block_on(sandbox.exec(ExecRequest {
                command: "true".into(),
                ..ExecRequest::default()
            }))
            .expect("exec");
        assert_eq!(
            (outcome.end, outcome.exit_code),
            (EndReason::Exited, Some(0))
        );
        begun.elapsed()
    };
    let spawn = |program: &str, args: &[&str]| {
        let begun = Instant::now();
        let status = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .status()
            .expect(program);
        assert!(status.success(), "{program} failed");
        begun.elapsed()
    };
    let bwrap = || spawn("bwrap", &["--unshare-all", "--ro-bind", "/", "/", "true"]);
    let unshare = || {
        spawn(
            "unshare",
            &[
                "--pid", "--fork", "--mount", "--net", "--ipc", "--uts", "true",
            ],
        )
    };
    let have_bwrap = Command::new("bwrap").arg("--version").output().is_ok();
    // Warm-up: page cache, the init binary, the compiled filter.
    for _ in 0..5 {
        neuroflow(&warm);
        neuroflow(&cold);
        if have_bwrap {
            bwrap();
        }
        unshare();
    }
    let (mut nf, mut nc, mut bw, mut us) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        nf.push(neuroflow(&warm));
        nc.push(neuroflow(&cold));
        if have_bwrap {
            bw.push(bwrap());
        }
        us.push(unshare());
    }
    let p = |v: &mut Vec<Duration>, q: f64| {
        v.sort();
        v[((v.len() - 1) as f64 * q) as usize]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("sandbox_start: start-to-exit of `true`, {rounds} rounds each, alternating");
    println!(
        "  neuroflow standard (1 kept ready) P50 {:7.2} ms  P90 {:7.2} ms",
        ms(p(&mut nf, 0.5)),
        ms(p(&mut nf, 0.9))
    );
    println!(
        "  neuroflow standard (built on request) P50 {:7.2} ms  P90 {:7.2} ms",
        ms(p(&mut nc, 0.5)),
        ms(p(&mut nc, 0.9))
    );
    println!(
        "  unshare (util-linux) P50 {:7.2} ms  P90 {:7.2} ms",
        ms(p(&mut us, 0.5)),
        ms(p(&mut us, 0.9))
    );
    println!(
        "  neuroflow / unshare = {:.2}",
        ms(p(&mut nf, 0.5)) / ms(p(&mut us, 0.5))
    );
    if have_bwrap {
        println!(
            "  bwrap               P50 {:7.2} ms  P90 {:7.2} ms",
            ms(p(&mut bw, 0.5)),
            ms(p(&mut bw, 0.9))
        );
        println!(
            "  neuroflow / bwrap = {:.2} (target <= 0.70); built on request: {:.2}",
            ms(p(&mut nf, 0.5)) / ms(p(&mut bw, 0.5)),
            ms(p(&mut nc, 0.5)) / ms(p(&mut bw, 0.5))
        );
    } else {
        println!("  bwrap not installed (Debian package bubblewrap): no ratio");
    }
}
