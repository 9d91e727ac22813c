//! The node under a real Prometheus: Debian's `prometheus` server, on a loopback port of its
//! own, scrapes the node every second and evaluates deploy/prometheus/alerts.yml; its query
//! API must show the node up, NeuroFlow's series, and every alert rule evaluating cleanly.
//! Without a `prometheus` binary the test says why and returns, unless
//! NEUROFLOW_REQUIRE_PROMETHEUS=1 (scripts/test sets it once it has installed the package),
//! in which case it fails.

mod common;

use std::fs::File;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{NodeBuilder, TempDir, client};
use serde_json::Value;

/// Bound on Prometheus starting, and on each state the test waits for.
const WAIT: Duration = Duration::from_secs(30);
/// The scrape job of the node.
const JOB: &str = "neuroflow";

/// Whether a missing `prometheus` fails the test rather than skipping it.
fn required() -> bool {
    std::env::var("NEUROFLOW_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1")
}

/// Whether a `prometheus` binary is on PATH.
fn prometheus_installed() -> bool {
    match Command::new("prometheus")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => panic!("cannot run prometheus: {e}"),
    }
}

/// A Prometheus server on 127.0.0.1, with its configuration, data and log in a temp dir.
/// Killed on drop.
struct Prometheus {
    child: Child,
    /// `http://127.0.0.1:PORT`
    url: String,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus with `config` and waits (bounded) until it is ready. The port is a
    /// free one picked by binding port 0; should another process take it in between,
    /// Prometheus exits and another port is tried.
    async fn start(config: &str, http: &reqwest::Client) -> Self {
        let mut dir = TempDir::new("prometheus");
        let config = dir.file("prometheus.yml", config);
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free loopback port")
                .port();
            let log = File::create(dir.path().join("prometheus.log")).expect("log file");
            let child = Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("spawn prometheus");
            let mut prometheus = Self {
                child,
                url: format!("http://127.0.0.1:{port}"),
                dir,
            };
            if prometheus.wait_ready(http).await {
                return prometheus;
            }
            let log = prometheus.log();
            assert!(
                log.contains("address already in use"),
                "prometheus exited:\n{log}"
            );
            dir = prometheus.into_dir();
        }
        panic!("prometheus found no free port in 3 tries");
    }

    /// Polls `/-/ready` until it answers 200 (true) or the process exits (false).
    async fn wait_ready(&mut self, http: &reqwest::Client) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.child.try_wait().expect("try_wait").is_some() {
                return false;
            }
            if let Ok(response) = http.get(format!("{}/-/ready", self.url)).send().await
                && response.status().is_success()
            {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within {WAIT:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// Stops the process and hands back its directory (for another try).
    fn into_dir(mut self) -> TempDir {
        self.stop();
        std::mem::replace(&mut self.dir, TempDir::new("moved"))
    }

    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// `GET /api/v1/{path}` with `query` → its `data` (panics unless the status is
    /// success).
    async fn api(&self, http: &reqwest::Client, path: &str, query: &[(&str, &str)]) -> Value {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/{path}", self.url), query)
            .expect("API URL");
        let response = http.get(url).send().await.expect("prometheus API");
        let body: Value = response.json().await.expect("JSON from prometheus");
        assert_eq!(body["status"], "success", "{path} {query:?}: {body}");
        body["data"].clone()
    }

    /// The instant vector `promql` evaluates to now.
    async fn query(&self, http: &reqwest::Client, promql: &str) -> Vec<Value> {
        let data = self.api(http, "query", &[("query", promql)]).await;
        data["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `promql` until it has a sample whose value `accept` takes, for at most
    /// [`WAIT`]; returns that sample.
    async fn eventually<F>(&self, http: &reqwest::Client, promql: &str, accept: F) -> Value
    where
        F: Fn(f64) -> bool,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            let result = self.query(http, promql).await;
            if let Some(sample) = result.iter().find(|s| sample_value(s).is_some_and(&accept)) {
                return sample.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{promql}: no accepted sample within {WAIT:?}; last result {result:?}\n\
                 targets: {}\nprometheus log:\n{}",
                self.api(http, "targets", &[]).await,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The value of an instant-vector sample (`"value": [time, "string"]`).
fn sample_value(sample: &Value) -> Option<f64> {
    sample["value"][1].as_str()?.parse().ok()
}

/// Scrapes `target` every second and evaluates the alert rules at `rules`.
fn config(target: std::net::SocketAddr, rules: &Path) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {rules:?}\n\
         scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: [\"{target}\"]\n",
        rules = rules.display().to_string(),
    )
}

#[tokio::test]
async fn a_real_prometheus_scrapes_the_node_and_evaluates_the_alert_rules() {
    if !prometheus_installed() {
        assert!(
            !required(),
            "NEUROFLOW_REQUIRE_PROMETHEUS=1 but no prometheus binary is on PATH"
        );
        eprintln!("SKIPPED: no prometheus binary on PATH (Debian package prometheus)");
        return;
    }
    let node = NodeBuilder::serve().start();
    let instance = node.addr().to_string();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/alerts.yml");
    let alert_count = std::fs::read_to_string(&rules)
        .expect("deploy/prometheus/alerts.yml")
        .matches("- alert:")
        .count();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let prometheus = Prometheus::start(&config(node.addr(), &rules), &http).await;

    // The node is scraped: up == 1 for its job, with the node's address as the instance.
    let up = prometheus
        .eventually(&http, &format!("up{{job=\"{JOB}\"}}"), |v| v == 1.0)
        .await;
    assert_eq!(up["metric"]["instance"], instance.as_str(), "{up}");

    // NeuroFlow's own series are queryable, labelled with the job and instance the
    // dashboard's variables take.
    let uptime = prometheus
        .eventually(
            &http,
            &format!("neuroflow_node_uptime_seconds{{job=\"{JOB}\"}}"),
            |v| v > 0.0,
        )
        .await;
    assert_eq!(uptime["metric"]["instance"], instance.as_str(), "{uptime}");
    let info = prometheus
        .eventually(&http, "neuroflow_node_info", |v| v == 1.0)
        .await;
    assert_eq!(
        info["metric"]["version"],
        env!("CARGO_PKG_VERSION"),
        "{info}"
    );
    assert_eq!(info["metric"]["job"], JOB, "{info}");

    // A request to the node shows up in neuroflow_http_requests_total, by route.
    let response = client().get(node.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    prometheus
        .eventually(
            &http,
            &format!(
                "neuroflow_http_requests_total{{job=\"{JOB}\",instance=\"{instance}\",route=\"/healthz\",status=\"200\"}}"
            ),
            |v| v >= 1.0,
        )
        .await;

    // Every alert rule of deploy/ is loaded and evaluates without error against the live
    // series (health "ok" once evaluated; "unknown" before the first evaluation).
    let deadline = Instant::now() + WAIT;
    loop {
        let data = prometheus.api(&http, "rules", &[("type", "alert")]).await;
        let alerts: Vec<(String, String, String)> = data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
            .map(|rule| {
                let text = |key: &str| rule[key].as_str().unwrap_or_default().to_string();
                (text("name"), text("health"), text("lastError"))
            })
            .collect();
        assert_eq!(alerts.len(), alert_count, "{data}");
        for (name, health, error) in &alerts {
            assert_ne!(health, "err", "{name}: {error}");
        }
        if alerts.iter().all(|(_, health, _)| health == "ok") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alert rules not evaluated within {WAIT:?}: {alerts:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
