//! `neuroflow-node sandbox exec|check`.
//!
//! `exec` mirrors the sandboxed command's exit status (its exit code, or 128 + the signal
//! that ended it), so it composes in scripts like the command itself; when the sandbox
//! refuses to run the command at all it exits 125, as `docker run` and `env` do.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use neuroflow_kit::protocol::sandbox::{EndReason, ExecRequest};
use neuroflow_sandbox::{
    ByteSize, HostSupport, InitProgram, OutputChunk, Profile, Sandbox, SandboxError, Span, Stream,
};
use tokio::sync::mpsc;

use super::EXIT_CONFIG;

/// Exit status when the sandbox refuses to run the command.
pub const EXIT_REFUSED: u8 = 125;
/// Largest standard input passed to a sandboxed command.
const MAX_STDIN: u64 = 16 << 20;

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Run a command in a fresh sandbox; exits with the command's status.
    Exec(Box<ExecArgs>),
    /// Print which isolation layers this host supports and which profiles can run.
    Check,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Profile: minimal (not isolating), standard or strict.
    #[arg(long, default_value = "standard")]
    pub profile: String,
    /// Wall-clock limit, e.g. 10s or 500ms.
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<Span>,
    /// Memory limit of the whole process tree, e.g. 256M.
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<ByteSize>,
    /// Swap allowed on top of the memory limit.
    #[arg(long, value_name = "SIZE")]
    pub swap: Option<ByteSize>,
    /// CPU bandwidth in thousandths of a core (1000 = one core).
    #[arg(long, value_name = "MILLICORES")]
    pub cpu: Option<u64>,
    /// CPU time limit of each process, e.g. 5s.
    #[arg(long, value_name = "DURATION")]
    pub cpu_time: Option<Span>,
    /// Most processes and threads at once.
    #[arg(long, value_name = "N")]
    pub pids: Option<u64>,
    /// Output kept (stdout + stderr); more ends the command.
    #[arg(long, value_name = "SIZE")]
    pub output: Option<ByteSize>,
    /// Allow egress to HOST:PORT, CIDR:PORT or [V6]:PORT (repeatable).
    #[arg(long = "allow-net", value_name = "DEST")]
    pub allow_net: Vec<String>,
    /// Environment variable for the command, KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Bind a host directory: SRC:DST, read-only, or SRC:DST:rw (repeatable).
    #[arg(long = "mount", value_name = "SRC:DST[:rw]")]
    pub mounts: Vec<String>,
    /// Run in a user namespace even as root.
    #[arg(long)]
    pub user_namespace: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

pub fn run(command: SandboxCommand) -> ExitCode {
    match command {
        SandboxCommand::Check => check(),
        SandboxCommand::Exec(args) => exec(*args),
    }
}

fn check() -> ExitCode {
    let host = HostSupport::detect();
    println!(
        "running as {}",
        if host.is_root {
            "root"
        } else {
            "a regular user"
        }
    );
    if let Some(cgroups) = &host.cgroups {
        println!("cgroup layout: {}", cgroups.layout_name());
    }
    println!();
    println!("{:<20} {:<6} detail", "layer", "ok");
    for status in &host.layers {
        let ok = if status.available { "yes" } else { "NO" };
        println!("{:<20} {:<6} {}", status.layer, ok, status.detail);
    }
    println!();
    for name in Profile::BUILTIN_NAMES {
        let Some(profile) = Profile::builtin(name) else {
            continue;
        };
        let verdict = match host.missing(&profile) {
            None if !profile.isolates() => "runs (does NOT isolate)".to_string(),
            None => "runs".to_string(),
            Some(missing) => format!("refused: needs {}", missing.layer),
        };
        println!("profile {name:<10} {verdict}");
    }
    ExitCode::SUCCESS
}

fn exec(args: ExecArgs) -> ExitCode {
    let Some(profile) = Profile::builtin(&args.profile) else {
        eprintln!(
            "neuroflow-node: unknown sandbox profile {:?} (known: {})",
            args.profile,
            Profile::BUILTIN_NAMES.join(", ")
        );
        return ExitCode::from(EXIT_CONFIG);
    };
    let sandbox = match build(profile, &args) {
        Ok(sandbox) => sandbox,
        Err(BuildError::Usage(message)) => {
            eprintln!("neuroflow-node: {message}");
            return ExitCode::from(EXIT_CONFIG);
        }
        Err(BuildError::Sandbox(err)) => return refused(&err),
    };
    let stdin = match read_stdin() {
        Ok(bytes) => bytes,
        Err(err) => {
            eprintln!("neuroflow-node: cannot read standard input: {err}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let mut command = args.command.into_iter();
    let request = ExecRequest {
        command: command.next().unwrap_or_default(),
        args: command.collect(),
        stdin,
        ..ExecRequest::default()
    };
    let runtime = match super::async_runtime(Some(2), EXIT_REFUSED) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let outcome = runtime.block_on(async {
        let (tx, mut rx) = mpsc::channel::<OutputChunk>(64);
        let copy = tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                // A closed stdout/stderr (e.g. `| head`) must not stop the sandbox.
                let _ = match chunk.stream {
                    Stream::Stdout => std::io::stdout().write_all(&chunk.bytes),
                    Stream::Stderr => std::io::stderr().write_all(&chunk.bytes),
                };
            }
        });
        let outcome = sandbox.exec_streaming(request, tx).await;
        let _ = copy.await;
        outcome
    });
    match outcome {
        Ok(outcome) => {
            if outcome.end != EndReason::Exited {
                eprintln!("neuroflow-node: sandbox ended: {}", outcome.end);
            }
            ExitCode::from(u8::try_from(outcome.shell_status()).unwrap_or(EXIT_REFUSED))
        }
        Err(err) => refused(&err),
    }
}

enum BuildError {
    Usage(String),
    Sandbox(SandboxError),
}

fn build(profile: Profile, args: &ExecArgs) -> Result<Sandbox, BuildError> {
    let init = InitProgram::current_exe(&["sandbox-init"])
        .map_err(|e| BuildError::Sandbox(SandboxError::Io(e)))?;
    let mut builder = Sandbox::builder(profile)
        .init_program(init)
        .user_namespace(args.user_namespace);
    if let Some(t) = args.timeout {
        builder = builder.timeout(t.0);
    }
    if let Some(m) = args.memory {
        builder = builder.memory(m);
    }
    if let Some(s) = args.swap {
        builder = builder.swap(s);
    }
    if let Some(c) = args.cpu {
        builder = builder.cpu_millicores(c);
    }
    if let Some(t) = args.cpu_time {
        builder = builder.cpu_time(Duration::max(t.0, Duration::from_secs(1)));
    }
    if let Some(p) = args.pids {
        builder = builder.pids(p);
    }
    if let Some(o) = args.output {
        builder = builder.output(o);
    }
    for entry in &args.allow_net {
        builder = builder.allow_net(entry.clone());
    }
    for (k, v) in &args.env {
        builder = builder.env(k.clone(), v.clone());
    }
    for spec in &args.mounts {
        let parts: Vec<&str> = spec.split(':').collect();
        let (source, target, writable) = match parts.as_slice() {
            [s, t] => (*s, *t, false),
            [s, t, "rw"] => (*s, *t, true),
            [s, t, "ro"] => (*s, *t, false),
            _ => {
                return Err(BuildError::Usage(format!(
                    "--mount {spec:?}: expected SRC:DST or SRC:DST:rw"
                )));
            }
        };
        builder = builder.mount(source, target, writable);
    }
    builder.build().map_err(BuildError::Sandbox)
}

fn refused(err: &SandboxError) -> ExitCode {
    eprintln!("neuroflow-node: {err}");
    ExitCode::from(EXIT_REFUSED)
}

/// The CLI's own standard input when it is a pipe or file (never an interactive terminal:
/// the sandbox has none).
fn read_stdin() -> std::io::Result<Vec<u8>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(Vec::new());
    }
    let mut bytes = Vec::new();
    stdin.lock().take(MAX_STDIN).read_to_end(&mut bytes)?;
    Ok(bytes)
}
