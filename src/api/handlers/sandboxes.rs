//! The router's tools, and the node's sandboxes.

use std::collections::BTreeMap;

use neuroflow_kit::protocol::sandbox::{EndReason, ExecRequest, ResourceUsage, SandboxReply};
use neuroflow_kit::supervisor::TreeNode;
use serde::{Deserialize, Serialize};

use super::node::supervisor_error;
use super::users::check_len;
use super::{Answer, ok};
use crate::api::error::ApiError;
use crate::api::request::{PageQuery, Request};
use crate::api::{ApiContext, CALL_TIMEOUT};

/// Longest command timeout the API accepts, in milliseconds (an hour).
const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// `GET /api/v1/tools`
pub async fn tools(ctx: &ApiContext, req: &Request) -> Answer {
    let page: PageQuery = req.query()?;
    let tools = ctx.tools().list(&[]);
    ok(&page.page_by_key(tools, |t| t.name.as_str())?)
}

#[derive(Debug, Serialize)]
struct SandboxList {
    profiles: Vec<String>,
    running: Vec<RunningSandbox>,
}

#[derive(Debug, Serialize)]
struct RunningSandbox {
    /// Its actor's name under `node/sandboxes`.
    name: String,
    path: String,
    status: serde_json::Value,
    detail: Option<serde_json::Value>,
}

/// `GET /api/v1/sandboxes`
pub async fn list(ctx: &ApiContext) -> Answer {
    let profiles = ctx.sandboxes()?.profiles();
    let tree = ctx
        .root()
        .tree(CALL_TIMEOUT)
        .await
        .map_err(supervisor_error)?;
    let running = tree
        .find("sandboxes")
        .map(|node| node.children.iter().map(running_sandbox).collect())
        .unwrap_or_default();
    ok(&SandboxList { profiles, running })
}

fn running_sandbox(node: &TreeNode) -> RunningSandbox {
    RunningSandbox {
        name: node.name.clone(),
        path: node.path.clone(),
        status: serde_json::to_value(node.status).unwrap_or_default(),
        detail: node.detail.clone(),
    }
}

/// Body of `POST /api/v1/sandboxes/exec`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Exec {
    #[serde(default = "standard")]
    profile: String,
    command: String,
    #[serde(default)]
    args: Vec<String>,
    /// Text fed to the command's standard input.
    #[serde(default)]
    stdin: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    timeout_ms: Option<u64>,
}

fn standard() -> String {
    "standard".into()
}

/// What a command did, with its output as text (invalid UTF-8 replaced).
#[derive(Debug, Serialize)]
struct Executed {
    end: EndReason,
    exit_code: Option<i32>,
    signal: Option<i32>,
    stdout: String,
    stderr: String,
    output_truncated: bool,
    usage: ResourceUsage,
}

/// `POST /api/v1/sandboxes/exec`
pub async fn exec(ctx: &ApiContext, mut req: Request) -> Answer {
    let body: Exec = req.json().await?;
    let sandboxes = ctx.sandboxes()?;
    if !sandboxes.profiles().contains(&body.profile) {
        return Err(ApiError::invalid(
            "profile",
            format!(
                "no sandbox profile {:?} (known: {})",
                body.profile,
                sandboxes.profiles().join(", ")
            ),
        ));
    }
    check_len("command", &body.command, 1, 4096)?;
    if body.args.len() > 1024 {
        return Err(ApiError::invalid("args", "at most 1024 arguments"));
    }
    if let Some(ms) = body.timeout_ms
        && !(1..=MAX_TIMEOUT_MS).contains(&ms)
    {
        return Err(ApiError::invalid(
            "timeout_ms",
            format!("must be between 1 and {MAX_TIMEOUT_MS} (got {ms})"),
        ));
    }
    let request = ExecRequest {
        command: body.command,
        args: body.args,
        stdin: body.stdin.into_bytes(),
        env: body.env.into_iter().collect(),
        timeout_ms: body.timeout_ms,
    };
    tracing::info!(profile = %body.profile, command = %request.command, by = req.user(), "sandbox exec");
    match sandboxes.exec(&body.profile, request).await {
        SandboxReply::Done(outcome) => ok(&Executed {
            end: outcome.end,
            exit_code: outcome.exit_code,
            signal: outcome.signal,
            stdout: String::from_utf8_lossy(&outcome.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&outcome.stderr).into_owned(),
            output_truncated: outcome.output_truncated,
            usage: outcome.usage,
        }),
        SandboxReply::Refused(failure) => Err(ApiError::unavailable(match failure.layer {
            Some(layer) => format!(
                "the sandbox could not run the command ({layer}): {}",
                failure.message
            ),
            None => format!("the sandbox could not run the command: {}", failure.message),
        })),
    }
}
