//! Agents and their conversations.

use neuroflow_kit::protocol::agent::{AgentSpec, ChatMessage, Usage};
use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Reply;

use super::{Answer, json, ok};
use crate::api::ApiContext;
use crate::api::error::ApiError;
use crate::api::request::{PageQuery, Request};
use crate::node::agents::{Agent, AgentError};

/// Most steps an agent created through the API may take per turn.
const MAX_STEPS: u32 = 1000;

/// An agent as the API shows it.
#[derive(Debug, Serialize)]
pub struct AgentView {
    name: String,
    spec: AgentSpec,
    /// Whether a turn is running.
    busy: bool,
    spent: Usage,
    /// The conversation the next turn continues.
    conversation: String,
    /// Created through the API (and kept across restarts), or spawned by code.
    stored: bool,
}

impl AgentView {
    pub fn of(agent: &Agent) -> Self {
        let spec = agent.state.spec().clone();
        Self {
            name: spec.name.clone(),
            spec,
            busy: agent.state.busy(),
            spent: agent.state.spent(),
            conversation: agent.state.conversation_id(),
            stored: agent.stored,
        }
    }
}

/// The running agent `name`, or a 404.
pub fn find(ctx: &ApiContext, name: &str) -> Result<Agent, ApiError> {
    ctx.agents()?
        .get(name)
        .ok_or_else(|| ApiError::not_found(format!("no agent named {name:?}")))
}

/// `GET /api/v1/agents`
pub fn list(ctx: &ApiContext, req: &Request) -> Answer {
    let page: PageQuery = req.query()?;
    let agents: Vec<AgentView> = ctx.agents()?.list().iter().map(AgentView::of).collect();
    ok(&page.page_by_key(agents, |a| a.name.as_str())?)
}

/// `GET /api/v1/agents/{name}`
pub fn get(ctx: &ApiContext, name: &str) -> Answer {
    ok(&AgentView::of(&find(ctx, name)?))
}

/// `POST /api/v1/agents`
pub async fn create(ctx: &ApiContext, mut req: Request) -> Answer {
    let spec: AgentSpec = req.json().await?;
    check_spec(ctx, &spec)?;
    let agent = ctx.agents()?.create(spec).await?;
    tracing::info!(agent = %agent.state.spec().name, by = req.user(), "agent created");
    Ok(json(StatusCode::CREATED, &AgentView::of(&agent)))
}

/// `PUT /api/v1/agents/{name}`
pub async fn update(ctx: &ApiContext, mut req: Request) -> Answer {
    let name = req.param(0).to_string();
    let spec: AgentSpec = req.json().await?;
    if spec.name != name {
        return Err(AgentError::NameMismatch {
            path: name,
            spec: spec.name,
        }
        .into());
    }
    check_spec(ctx, &spec)?;
    let agent = ctx.agents()?.update(spec).await?;
    tracing::info!(agent = %name, by = req.user(), "agent updated");
    ok(&AgentView::of(&agent))
}

/// `DELETE /api/v1/agents/{name}`
pub async fn delete(ctx: &ApiContext, name: &str) -> Answer {
    if !ctx.agents()?.delete(name).await? {
        return Err(ApiError::not_found(format!("no agent named {name:?}")));
    }
    tracing::info!(agent = %name, "agent deleted");
    Ok(warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response())
}

/// What the spec's types do not say: limits an agent of the API must keep to, and a
/// sandbox profile the node has.
fn check_spec(ctx: &ApiContext, spec: &AgentSpec) -> Result<(), ApiError> {
    let profiles = ctx.sandboxes()?.profiles();
    if !profiles.contains(&spec.sandbox_profile) {
        return Err(ApiError::invalid(
            "sandbox_profile",
            format!(
                "no sandbox profile {:?} (known: {})",
                spec.sandbox_profile,
                profiles.join(", ")
            ),
        ));
    }
    if !(1..=MAX_STEPS).contains(&spec.max_steps) {
        return Err(ApiError::invalid(
            "max_steps",
            format!("must be between 1 and {MAX_STEPS} (got {})", spec.max_steps),
        ));
    }
    if let Some(cost) = spec.budget.max_cost_usd
        && !(cost.is_finite() && cost >= 0.0)
    {
        return Err(ApiError::invalid(
            "budget.max_cost_usd",
            "must be a non-negative number",
        ));
    }
    for (field, text, max) in [
        ("description", &spec.description, 4096),
        ("system_prompt", &spec.system_prompt, 100_000),
        ("model", &spec.model, 256),
    ] {
        super::users::check_len(field, text, 0, max)?;
    }
    super::users::check_len("provider", &spec.provider, 1, 64)?;
    if spec.tools.len() > 256 {
        return Err(ApiError::invalid("tools", "at most 256 patterns"));
    }
    for (i, pattern) in spec.tools.iter().enumerate() {
        super::users::check_len(&format!("tools[{i}]"), pattern, 1, 256)?;
    }
    if spec.context.len() > 64 {
        return Err(ApiError::invalid("context", "at most 64 resources"));
    }
    for (i, resource) in spec.context.iter().enumerate() {
        super::users::check_len(&format!("context[{i}].server"), &resource.server, 1, 64)?;
        super::users::check_len(&format!("context[{i}].uri"), &resource.uri, 1, 4096)?;
    }
    Ok(())
}

/// `GET /api/v1/agents/{name}/conversations`
pub async fn conversations(ctx: &ApiContext, req: &Request) -> Answer {
    let name = req.param(0);
    let page: PageQuery = req.query()?;
    let agents = ctx.agents()?;
    let store = agents.store();
    if agents.get(name).is_none() && store.agent(name).await?.is_none() {
        return Err(ApiError::not_found(format!("no agent named {name:?}")));
    }
    let items = store
        .conversations(name, page.offset()?, page.limit()? + 1)
        .await?;
    ok(&page.page_by_offset(items)?)
}

/// A conversation with every message.
#[derive(Debug, Serialize)]
struct ConversationView {
    id: String,
    agent: String,
    created_at: i64,
    updated_at: i64,
    messages: Vec<MessageView>,
}

#[derive(Debug, Serialize)]
struct MessageView {
    seq: i64,
    message: ChatMessage,
    usage: Option<Usage>,
    created_at: i64,
}

/// `GET /api/v1/conversations/{id}`
pub async fn conversation(ctx: &ApiContext, id: &str) -> Answer {
    let store = ctx.agents()?.store();
    let found = store
        .conversation(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no conversation {id:?}")))?;
    let messages = store
        .messages(id)
        .await?
        .into_iter()
        .map(|m| MessageView {
            seq: m.seq,
            message: m.message,
            usage: m.usage,
            created_at: m.created_at,
        })
        .collect();
    ok(&ConversationView {
        id: found.id,
        agent: found.agent,
        created_at: found.created_at,
        updated_at: found.updated_at,
        messages,
    })
}
