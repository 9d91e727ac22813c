//! The API gateway under concurrent load, beside a bare warp hello-world route measured in
//! the same run on the same machine:
//!
//! - `bare GET`: a warp route answering `hello` (no auth, no routing table, no actors);
//! - `auth GET`: `GET /api/v1/agents/{name}` with a bearer token (JWT check, route table,
//!   the agent's state, JSON);
//! - `message`: `POST /api/v1/agents/{name}/messages` to a scripted agent (one agent per
//!   connection, since an agent runs one turn at a time), answered once the turn is stored.
//!
//! Both servers run as processes of their own (this bench re-executes itself for the bare
//! one), so that the load generator's threads are not theirs. Each connection sends its
//! next request when the last one is answered (closed loop); rounds alternate between the
//! targets so that drift in the machine's load falls on all of them alike.
//!
//! ```sh
//! cargo bench --bench gateway                   # 16 connections, 3 rounds of 4 s
//! cargo bench --bench gateway -- 32 5 6         # connections, rounds, seconds per round
//! ```
//! Targets: authenticated GET P50 ≤ 1.5× the bare route's, P99 < 2 ms.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinSet;
use warp::Filter;

const ROLE_VAR: &str = "NEUROFLOW_GATEWAY_BENCH_ROLE";
const PASSWORD: &str = "bench-admin-password";
const SECRET: &str = "bench-secret-bench-secret-bench-secret-00";

fn main() {
    if std::env::var(ROLE_VAR).as_deref() == Ok("bare") {
        bare_server();
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    // `cargo test --all-targets` runs this without `--bench`: a short smoke run then.
    let measuring = std::env::args().any(|a| a == "--bench");
    let number = |i: usize, measured: u64, smoke: u64| {
        let default = if measuring { measured } else { smoke };
        args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default)
    };
    let connections = number(0, 16, 2) as usize;
    let rounds = number(1, 3, 1) as usize;
    let seconds = number(2, 4, 1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(connections, rounds, Duration::from_secs(seconds)));
}

/// The baseline: warp's hello world, on the node's runtime settings (one worker per core).
fn bare_server() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!(
            "listening on http://{}",
            listener.local_addr().expect("addr")
        );
        let _ = std::io::stdout().flush();
        let hello = warp::path!("hello").map(|| "hello");
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let _ = std::io::stdin().lines().count();
        });
        warp::serve(hello)
            .incoming(listener)
            .graceful(async {
                let _ = stdin_closed.await;
            })
            .run()
            .await;
    });
}

/// A child server, killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    /// Starts `command` and waits for its line `... listening on http://ADDR`.
    fn start(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("listening line");
        let url = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Self { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one connection asks, again and again.
#[derive(Clone)]
enum Ask {
    Get(String),
    Post(String, Value),
}

/// What each connection of a target asks, with the token it sends.
type Load = Vec<(Ask, Option<String>)>;

/// Latencies and count of one round of one target.
struct Round {
    latencies: Vec<Duration>,
    errors: u64,
    elapsed: Duration,
}

async fn load(http: &reqwest::Client, asks: Load, duration: Duration) -> Round {
    let began = Instant::now();
    let deadline = began + duration;
    let mut tasks = JoinSet::new();
    for (ask, token) in asks {
        let http = http.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let request = match &ask {
                    Ask::Get(url) => http.get(url),
                    Ask::Post(url, body) => http.post(url).json(body),
                };
                let request = match &token {
                    Some(token) => request.bearer_auth(token),
                    None => request,
                };
                let sent = Instant::now();
                let ok = match request.send().await {
                    Ok(response) => {
                        let ok = response.status().is_success();
                        ok && response.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                if ok {
                    latencies.push(sent.elapsed());
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        });
    }
    let mut round = Round {
        latencies: Vec::new(),
        errors: 0,
        elapsed: Duration::ZERO,
    };
    while let Some(joined) = tasks.join_next().await {
        if let Ok((latencies, errors)) = joined {
            round.latencies.extend(latencies);
            round.errors += errors;
        }
    }
    round.elapsed = began.elapsed();
    round
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// P50, P99 and requests per second over every round of a target.
struct Figures {
    p50: Duration,
    p99: Duration,
    rps: f64,
    requests: usize,
    errors: u64,
}

fn figures(rounds: &[Round]) -> Figures {
    let mut all: Vec<Duration> = rounds.iter().flat_map(|r| r.latencies.clone()).collect();
    all.sort();
    let seconds: f64 = rounds.iter().map(|r| r.elapsed.as_secs_f64()).sum();
    Figures {
        p50: percentile(&all, 0.50),
        p99: percentile(&all, 0.99),
        rps: all.len() as f64 / seconds.max(f64::EPSILON),
        requests: all.len(),
        errors: rounds.iter().map(|r| r.errors).sum(),
    }
}

async fn run(connections: usize, rounds: usize, duration: Duration) {
    let data = std::env::temp_dir().join(format!("neuroflow-gateway-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut node = Command::new(env!("CARGO_BIN_EXE_neuroflow-node"));
    node.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("NEUROFLOW_ADMIN_PASSWORD", PASSWORD)
        .env("NEUROFLOW_JWT_SECRET", SECRET)
        .env("NEUROFLOW_LOG", "warn");
    let node = Server::start(node);
    let mut bare = Command::new(std::env::current_exe().expect("this bench"));
    bare.env(ROLE_VAR, "bare");
    let bare = Server::start(bare);

    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(connections * 2)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let login: Value = http
        .post(format!("{}/api/v1/auth/login", node.url))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login answer");
    let token = login["access_token"].as_str().expect("a token").to_string();
    for i in 0..connections {
        let response = http
            .post(format!("{}/api/v1/agents", node.url))
            .bearer_auth(&token)
            .json(&json!({"name": format!("bench-{i}")}))
            .send()
            .await
            .expect("create agent");
        assert!(
            response.status().is_success(),
            "agent not created: {}",
            response.status()
        );
    }

    let targets: Vec<(&str, Load)> = vec![
        (
            "bare GET /hello",
            (0..connections)
                .map(|_| (Ask::Get(format!("{}/hello", bare.url)), None))
                .collect(),
        ),
        (
            "auth GET /api/v1/agents/{name}",
            (0..connections)
                .map(|i| {
                    let url = format!("{}/api/v1/agents/bench-{i}", node.url);
                    (Ask::Get(url), Some(token.clone()))
                })
                .collect(),
        ),
        (
            "POST /api/v1/agents/{name}/messages",
            (0..connections)
                .map(|i| {
                    let url = format!("{}/api/v1/agents/bench-{i}/messages", node.url);
                    (
                        Ask::Post(url, json!({"message": "hello"})),
                        Some(token.clone()),
                    )
                })
                .collect(),
        ),
    ];
    // Warm-up: connections open, caches and allocators settle.
    for (_, asks) in &targets {
        load(&http, asks.clone(), Duration::from_millis(500)).await;
    }
    let mut results: Vec<Vec<Round>> = targets.iter().map(|_| Vec::new()).collect();
    for _ in 0..rounds {
        for (i, (_, asks)) in targets.iter().enumerate() {
            results[i].push(load(&http, asks.clone(), duration).await);
        }
    }

    println!(
        "gateway: {connections} connections, {rounds} rounds of {} s per target\n",
        duration.as_secs()
    );
    println!(
        "{:<40} {:>10} {:>10} {:>10} {:>10} {:>7}",
        "target", "P50", "P99", "req/s", "requests", "errors"
    );
    let all: Vec<Figures> = results.iter().map(|r| figures(r)).collect();
    for ((name, _), f) in targets.iter().zip(&all) {
        println!(
            "{name:<40} {:>10.1?} {:>10.1?} {:>10.0} {:>10} {:>7}",
            f.p50, f.p99, f.rps, f.requests, f.errors
        );
    }
    let (bare, auth) = (&all[0], &all[1]);
    println!(
        "\nauth GET / bare: P50 ×{:.2} (target ≤ 1.5), P99 {:.2} ms (target < 2), req/s ×{:.2}",
        auth.p50.as_secs_f64() / bare.p50.as_secs_f64().max(f64::EPSILON),
        auth.p99.as_secs_f64() * 1e3,
        auth.rps / bare.rps.max(f64::EPSILON),
    );
    let _ = std::fs::remove_dir_all(&data);
    for ((name, _), f) in targets.iter().zip(&all) {
        assert!(
            f.errors == 0 && f.requests > 0,
            "{name}: {} errors, {} answered",
            f.errors,
            f.requests
        );
    }
}
