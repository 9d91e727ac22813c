//! Unit tests of the configuration layers.

use std::collections::HashMap;

use super::*;

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn file(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Origin::File(PathBuf::from("node.toml")))
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn sandbox_profiles_resolve_and_errors_name_the_key() {
    let config = file(
        r#"
        [sandbox]
        warm = 2
        [sandbox.profiles.python]
        base = "standard"
        env = { PYTHONDONTWRITEBYTECODE = "1" }
        network = { allow = ["pypi.org:443", "files.pythonhosted.org:443"] }
        [sandbox.profiles.python.limits]
        memory = "1G"
        timeout = "2m"
        "#,
    )
    .unwrap();
    config.validate(&Origin::Merged).unwrap();
    assert_eq!(config.sandbox.warm, 2);
    let python = config.sandbox.profiles["python"].resolve("python").unwrap();
    assert_eq!(
        python.limits.memory,
        Some(neuroflow_sandbox::ByteSize::gib(1))
    );

    let err = file("[sandbox.profiles.x]\nhostname = \"no spaces\"\n").unwrap_err();
    assert_eq!(
        err.key.as_deref(),
        Some("sandbox.profiles.x.hostname"),
        "{err}"
    );
    let err = file("[sandbox.profiles.standard]\n").unwrap_err();
    assert_eq!(
        err.key.as_deref(),
        Some("sandbox.profiles.standard"),
        "{err}"
    );
    let err = file("[sandbox.profiles.x.limits]\nmemory = \"lots\"\n").unwrap_err();
    assert!(err.to_string().contains("invalid size"), "{err}");
}

#[test]
fn providers_pricing_and_tools_parse() {
    let config = file(
        r#"
        [providers.local]
        kind = "openai"
        base_url = "http://127.0.0.1:11434/v1"
        [pricing]
        "gpt-4o*" = { input = 2.5, output = 10.0 }
        [tools]
        shards = 4
        timeout_ms = 60000
        http_allow = []
        "#,
    )
    .unwrap();
    assert!(config.providers.contains_key("local"));
    assert!(config.pricing.price("gpt-4o-mini").is_some());
    assert_eq!(config.tools.shards, 4);
    let err = file("[tools]\nshards = 0\n").unwrap_err();
    assert_eq!(err.key.as_deref(), Some("tools.shards"), "{err}");
    let err = file("[providers.x]\nkind = \"gpt\"\n").unwrap_err();
    assert!(err.to_string().contains("providers"), "{err}");
}

#[test]
fn defaults() {
    let config = Config::load(None, &no_env, &Overrides::default()).unwrap();
    assert_eq!(config.node.listen, addr("127.0.0.1:7700"));
    assert_eq!(config.node.data_dir, PathBuf::from("./.neuroflow"));
    assert_eq!(config.shutdown_timeout(), Duration::from_secs(10));
    assert_eq!(config.log.level, "info");
    assert_eq!(config.log.format, LogFormat::Text);
    assert!(!config.debug.test_hooks);
    assert_eq!(config.backoff().initial, Duration::from_millis(50));
}

#[test]
fn full_file_is_read() {
    let config = file(
        r#"
        [node]
        listen = "0.0.0.0:8080"
        data_dir = "/var/lib/neuroflow"
        shutdown_timeout_secs = 3
        [supervision]
        max_restarts = 2
        within_secs = 60
        backoff_initial_ms = 10
        backoff_max_ms = 100
        [log]
        level = "warn,neuroflow=debug"
        format = "json"
        [debug]
        test_hooks = true
        "#,
    )
    .unwrap();
    assert_eq!(config.node.listen, addr("0.0.0.0:8080"));
    assert_eq!(config.node.data_dir, PathBuf::from("/var/lib/neuroflow"));
    assert_eq!(config.node.shutdown_timeout_secs, 3);
    assert_eq!(config.supervision.max_restarts, 2);
    assert_eq!(config.restart_window(), Duration::from_secs(60));
    assert_eq!(config.backoff().max, Duration::from_millis(100));
    assert_eq!(config.log.format, LogFormat::Json);
    assert!(config.debug.test_hooks);
}

#[test]
fn partial_file_keeps_defaults() {
    let config = file("[node]\nshutdown_timeout_secs = 2\n").unwrap();
    assert_eq!(config.node.shutdown_timeout_secs, 2);
    assert_eq!(config.node.listen, addr("127.0.0.1:7700"));
    assert_eq!(config.supervision, SupervisionConfig::default());
}

#[test]
fn precedence_defaults_file_env_flags() {
    let dir = std::env::temp_dir().join(format!("neuroflow-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("precedence.toml");
    std::fs::write(
        &path,
        "[node]\nlisten = \"127.0.0.1:1001\"\ndata_dir = \"/file\"\nshutdown_timeout_secs = 4\n[log]\nlevel = \"debug\"\n",
    )
    .unwrap();

    // File over defaults.
    let c = Config::load(Some(&path), &no_env, &Overrides::default()).unwrap();
    assert_eq!(c.node.listen, addr("127.0.0.1:1001"));
    assert_eq!(c.node.data_dir, PathBuf::from("/file"));
    assert_eq!(c.node.shutdown_timeout_secs, 4);
    assert_eq!(c.log.level, "debug");

    // Env over file.
    let env = env_of(&[
        (ENV_LISTEN, "127.0.0.1:1002"),
        (ENV_DATA_DIR, "/env"),
        (ENV_LOG, "error"),
        (ENV_SHUTDOWN_TIMEOUT, "7"),
        (ENV_TEST_HOOKS, "1"),
    ]);
    let c = Config::load(Some(&path), &env, &Overrides::default()).unwrap();
    assert_eq!(c.node.listen, addr("127.0.0.1:1002"));
    assert_eq!(c.node.data_dir, PathBuf::from("/env"));
    assert_eq!(c.log.level, "error");
    assert_eq!(c.node.shutdown_timeout_secs, 7);
    assert!(c.debug.test_hooks);

    // Flags over env.
    let flags = Overrides {
        listen: Some(addr("127.0.0.1:1003")),
        data_dir: Some(PathBuf::from("/flag")),
    };
    let c = Config::load(Some(&path), &env, &flags).unwrap();
    assert_eq!(c.node.listen, addr("127.0.0.1:1003"));
    assert_eq!(c.node.data_dir, PathBuf::from("/flag"));
    // Layers without a flag keep the env value.
    assert_eq!(c.log.level, "error");

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn empty_env_counts_as_unset() {
    let env = env_of(&[(ENV_LISTEN, ""), (ENV_TEST_HOOKS, " ")]);
    let c = Config::load(None, &env, &Overrides::default()).unwrap();
    assert_eq!(c.node.listen, addr("127.0.0.1:7700"));
    assert!(!c.debug.test_hooks);
}

#[test]
fn test_hooks_env_values() {
    for (value, expected) in [
        ("1", true),
        ("TRUE", true),
        ("on", true),
        ("0", false),
        ("no", false),
    ] {
        let env = env_of(&[(ENV_TEST_HOOKS, value)]);
        let c = Config::load(None, &env, &Overrides::default()).unwrap();
        assert_eq!(c.debug.test_hooks, expected, "{value}");
    }
    let env = env_of(&[(ENV_TEST_HOOKS, "maybe")]);
    let err = Config::load(None, &env, &Overrides::default()).unwrap_err();
    assert_eq!(err.key.as_deref(), Some(ENV_TEST_HOOKS));
}

#[test]
fn bad_env_values_name_the_variable() {
    for (name, value) in [
        (ENV_LISTEN, "not-an-address"),
        (ENV_LISTEN, "localhost"),
        (ENV_LOG, "loud"),
        (ENV_SHUTDOWN_TIMEOUT, "soon"),
        (ENV_SHUTDOWN_TIMEOUT, "0"),
    ] {
        let env = env_of(&[(name, value)]);
        let err = Config::load(None, &env, &Overrides::default()).unwrap_err();
        assert_eq!(err.origin, Origin::Env);
        assert_eq!(err.key.as_deref(), Some(name));
        let text = err.to_string();
        assert!(text.contains(name) && text.contains(value), "{text}");
    }
}

#[test]
fn syntax_error_has_position() {
    let err = file("[node\nlisten = 1").unwrap_err();
    assert_eq!(err.key, None);
    assert!(err.to_string().contains("node.toml"), "{err}");
    assert!(err.message.contains("line 1"), "{err}");
}

#[test]
fn unknown_keys_are_errors() {
    let err = file("[node]\nlisten = \"127.0.0.1:1\"\nport = 3\n").unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");
    assert!(
        err.key.as_deref().unwrap_or("").starts_with("node"),
        "{err:?}"
    );

    let err = file("[nodes]\nlisten = \"127.0.0.1:1\"\n").unwrap_err();
    assert!(err.to_string().contains("nodes"), "{err}");
}

#[test]
fn wrong_type_names_the_key() {
    let err = file("[node]\nshutdown_timeout_secs = \"ten\"\n").unwrap_err();
    assert_eq!(
        err.key.as_deref(),
        Some("node.shutdown_timeout_secs"),
        "{err}"
    );
    let err = file("[debug]\ntest_hooks = 1\n").unwrap_err();
    assert_eq!(err.key.as_deref(), Some("debug.test_hooks"), "{err}");
}

#[test]
fn bad_listen_in_file_names_the_key() {
    let err = file("[node]\nlisten = \"127.0.0.1\"\n").unwrap_err();
    assert_eq!(err.key.as_deref(), Some("node.listen"), "{err}");
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn semantic_constraints() {
    let cases = [
        (
            "[node]\nshutdown_timeout_secs = 0\n",
            "node.shutdown_timeout_secs",
        ),
        ("[node]\ndata_dir = \"\"\n", "node.data_dir"),
        (
            "[supervision]\nwithin_secs = 0\n",
            "supervision.within_secs",
        ),
        (
            "[supervision]\nbackoff_initial_ms = 10\nbackoff_max_ms = 5\n",
            "supervision.backoff_initial_ms",
        ),
        (
            "[supervision]\nbackoff_max_ms = 9999999\n",
            "supervision.backoff_max_ms",
        ),
        ("[log]\nlevel = \"verbose\"\n", "log.level"),
        ("[log]\nlevel = \"=debug\"\n", "log.level"),
        ("[log]\nformat = \"xml\"\n", "log.format"),
    ];
    for (text, key) in cases {
        let err = file(text).unwrap_err();
        assert_eq!(err.key.as_deref(), Some(key), "{text}: {err}");
    }
}

#[test]
fn merged_constraints_are_checked_after_env() {
    // Valid file, then an env value that is fine alone; the result still validates.
    let env = env_of(&[(ENV_LOG, "warn,neuroflow=trace")]);
    let c = Config::load(None, &env, &Overrides::default()).unwrap();
    assert_eq!(c.log.level, "warn,neuroflow=trace");
    let filter = c.log.filter();
    assert!(filter.would_enable("neuroflow::node", &tracing::Level::TRACE));
    assert!(!filter.would_enable("hyper", &tracing::Level::INFO));
}

#[test]
fn missing_file_is_an_error() {
    let err = Config::load(
        Some(Path::new("/nonexistent/neuroflow.toml")),
        &no_env,
        &Overrides::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/neuroflow.toml"),
        "{err}"
    );
    assert!(err.to_string().contains("cannot read"), "{err}");
}

#[test]
fn rust_log_sets_the_level_unless_neuroflow_log_does() {
    let env = env_of(&[(ENV_RUST_LOG, "debug")]);
    let c = Config::load(None, &env, &Overrides::default()).unwrap();
    assert_eq!(c.log.level, "debug");
    let env = env_of(&[(ENV_RUST_LOG, "debug"), (ENV_LOG, "error")]);
    let c = Config::load(None, &env, &Overrides::default()).unwrap();
    assert_eq!(c.log.level, "error");
    let env = env_of(&[(ENV_RUST_LOG, "loud")]);
    let err = Config::load(None, &env, &Overrides::default()).unwrap_err();
    assert_eq!(err.key.as_deref(), Some(ENV_RUST_LOG));
}

#[test]
fn telemetry_values_are_checked_and_metrics_follow_traces() {
    let env = env_of(&[(ENV_OTLP_ENDPOINT, "http://127.0.0.1:4318/v1/traces")]);
    let c = Config::load(None, &env, &Overrides::default()).unwrap();
    assert_eq!(
        c.telemetry.metrics_endpoint().as_deref(),
        Some("http://127.0.0.1:4318/v1/metrics")
    );
    for (text, key) in [
        (
            "[telemetry]\nsample_ratio = 1.5\n",
            "telemetry.sample_ratio",
        ),
        (
            "[telemetry]\notlp_endpoint = \"udp://x\"\n",
            "telemetry.otlp_endpoint",
        ),
        ("[telemetry]\nqueue_spans = 0\n", "telemetry.queue_spans"),
    ] {
        let err = Config::from_toml(text, Origin::Merged).unwrap_err();
        assert_eq!(err.key.as_deref(), Some(key), "{text}: {err}");
    }
}
