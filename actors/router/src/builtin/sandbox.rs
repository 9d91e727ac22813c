//! `sandbox.exec`: a shell command (`sh -c`) or a Python snippet (`python3 -c`) in a
//! sandbox of the calling agent's profile.
//!
//! The router does not link the sandbox crate. The node hands the tool an [`ExecFn`]
//! (its sandbox service: profile + request → reply) and a [`ProfileFn`] (which profile an
//! agent's spec names, or none if the agent may not run code).

use std::sync::Arc;
use std::time::Duration;

use neuroflow_kit::protocol::router::ToolOutput;
use neuroflow_kit::protocol::sandbox::{EndReason, ExecRequest, SandboxMsg, SandboxReply};
use neuroflow_kit::recipient::{BoxFuture, Recipient};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::builtin::text::capped_text;
use crate::tool::{Tool, ToolCtx, ToolExec, spec};

/// Runs a request in a sandbox of the named profile.
pub type ExecFn =
    Arc<dyn Fn(String, ExecRequest) -> BoxFuture<'static, SandboxReply> + Send + Sync>;

/// The sandbox profile of the calling agent (`None` for calls made for no agent), or
/// `None` if that caller may not run code.
pub type ProfileFn = Arc<dyn Fn(Option<&str>) -> Option<String> + Send + Sync>;

/// Time kept back from the router's deadline for the sandbox to start and report.
const MARGIN: Duration = Duration::from_millis(500);

/// Limits of `sandbox.exec`.
#[derive(Debug, Clone)]
pub struct SandboxToolConfig {
    /// Most bytes of stdout, and of stderr, shown to the model.
    pub max_output_bytes: usize,
    /// Longest command or snippet accepted.
    pub max_code_bytes: usize,
}

impl Default for SandboxToolConfig {
    fn default() -> Self {
        Self {
            max_output_bytes: 16 << 10,
            max_code_bytes: 64 << 10,
        }
    }
}

/// An [`ExecFn`] from an async closure.
pub fn exec_fn<F, Fut>(f: F) -> ExecFn
where
    F: Fn(String, ExecRequest) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = SandboxReply> + Send + 'static,
{
    Arc::new(move |profile, request| Box::pin(f(profile, request)))
}

/// An [`ExecFn`] sending every request to one sandbox actor (whatever the profile).
pub fn exec_via(sandbox: Recipient<SandboxMsg, SandboxReply>, timeout: Duration) -> ExecFn {
    exec_fn(move |_, request| {
        let sandbox = sandbox.clone();
        async move {
            match sandbox.call(SandboxMsg::Exec(request), timeout).await {
                Ok(reply) => reply,
                Err(err) => {
                    SandboxReply::Refused(neuroflow_kit::protocol::sandbox::SandboxFailure {
                        layer: None,
                        message: err.to_string(),
                    })
                }
            }
        }
    })
}

/// The `sandbox.exec` tool.
pub fn tool(exec: ExecFn, profile_of: ProfileFn, config: SandboxToolConfig) -> Tool {
    let mut spec = spec(
        "sandbox.exec",
        "Run a shell command or a Python snippet in an isolated sandbox; returns exit code, \
         stdout and stderr.",
        json!({
            "type": "object",
            "properties": {
                "code": {"type": "string", "description": "The command line, or the Python code."},
                "language": {"type": "string", "enum": ["sh", "python"]},
                "stdin": {"type": "string"},
                "timeout_ms": {"type": "integer", "minimum": 1}
            },
            "required": ["code"],
            "additionalProperties": false
        }),
    );
    spec.provider = "builtin".into();
    Tool::new(
        spec,
        SandboxExec {
            exec,
            profile_of,
            config,
        },
    )
}

#[derive(Deserialize)]
struct ExecArgs {
    code: String,
    language: Option<String>,
    #[serde(default)]
    stdin: String,
    timeout_ms: Option<u64>,
}

struct SandboxExec {
    exec: ExecFn,
    profile_of: ProfileFn,
    config: SandboxToolConfig,
}

impl ToolExec for SandboxExec {
    fn call(&self, args: Value, ctx: ToolCtx) -> BoxFuture<'_, ToolOutput> {
        Box::pin(async move {
            match self.run(args, &ctx).await {
                Ok(output) => output,
                Err(message) => ToolOutput::error(message),
            }
        })
    }
}

impl SandboxExec {
    async fn run(&self, args: Value, ctx: &ToolCtx) -> Result<ToolOutput, String> {
        let args: ExecArgs = serde_json::from_value(args).map_err(|e| e.to_string())?;
        if args.code.len() + args.stdin.len() > self.config.max_code_bytes {
            let limit = self.config.max_code_bytes;
            return Err(format!("code and stdin exceed {limit} bytes"));
        }
        let (command, flag) = match args.language.as_deref() {
            None | Some("sh") => ("sh", "-c"),
            Some("python") => ("python3", "-c"),
            Some(other) => return Err(format!("language {other} is not supported")),
        };
        let Some(profile) = (self.profile_of)(ctx.caller()) else {
            let who = ctx.caller().unwrap_or("this caller");
            return Err(format!(
                "{who} has no sandbox profile: code execution is off"
            ));
        };
        let budget = ctx.remaining().saturating_sub(MARGIN);
        let timeout = args
            .timeout_ms
            .map_or(budget, |ms| Duration::from_millis(ms).min(budget));
        let request = ExecRequest {
            command: command.into(),
            args: vec![flag.into(), args.code],
            stdin: args.stdin.into_bytes(),
            env: Vec::new(),
            timeout_ms: Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
        };
        let outcome = match (self.exec)(profile, request).await {
            SandboxReply::Done(outcome) => outcome,
            SandboxReply::Refused(failure) => {
                let layer = failure.layer.map(|l| format!(" ({l})")).unwrap_or_default();
                return Err(format!(
                    "the sandbox refused to run it{layer}: {}",
                    failure.message
                ));
            }
        };
        let cap = self.config.max_output_bytes;
        let (stdout, stdout_truncated) = capped_text(&outcome.stdout, cap);
        let (stderr, stderr_truncated) = capped_text(&outcome.stderr, cap);
        let failed = outcome.end != EndReason::Exited || outcome.exit_code != Some(0);
        let output = json!({
            "exit_code": outcome.exit_code,
            "signal": outcome.signal,
            "end": outcome.end.as_str(),
            "stdout": stdout,
            "stderr": stderr,
            "stdout_truncated": stdout_truncated,
            "stderr_truncated": stderr_truncated,
            // The sandbox itself cut the output off (and ended the command).
            "output_capped": outcome.output_truncated,
            "wall_time_ms": outcome.usage.wall_time_us / 1000,
        })
        .to_string();
        Ok(if failed {
            ToolOutput::error(output)
        } else {
            ToolOutput::ok(output)
        })
    }
}
