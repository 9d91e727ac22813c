//! [`Tools`]: the local face of the router (register, unregister, list, call), and how the
//! router's actors are built.

mod add_shard;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use neuroflow_kit::actor::{ActorHandle, CallError};
use neuroflow_kit::metrics::Metrics;
use neuroflow_kit::propagation;
use neuroflow_kit::protocol::router::{
    RouterMsg, RouterReply, ToolCallRequest, ToolError, ToolOutput, ToolSpec,
};
use neuroflow_kit::supervisor::{ChildSpec, Strategy, SupervisorSpec};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::config::RouterConfig;
use crate::error::{BuildError, RegisterError};
use crate::export;
use crate::hash::shard_of;
use crate::metrics::ToolMetrics;
use crate::registry::{Entry, ShardSlot};
use crate::router::ToolRouter;
use crate::schema::Schema;
use crate::shard::{PortMsg, RouterShard, ShardArgs, ShardCall};
use crate::tool::Tool;

/// How long past its deadline a caller waits for a result before giving up on the task.
/// The task itself enforces the deadline, so this only matters if the runtime is dying.
const RESULT_GRACE: Duration = Duration::from_secs(1);

/// Handle to a router: cheap to clone, usable before and after its actors start (calls
/// fail as unavailable while no shard is running).
#[derive(Clone)]
pub struct Tools {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<RouterConfig>,
    metrics: ToolMetrics,
    /// The shards, replaced whole when one is added, so a call reads it without waiting.
    shards: RwLock<Arc<Vec<Shard>>>,
    /// Serializes changes of what each shard holds (register, unregister, add a shard).
    writes: Mutex<()>,
}

#[derive(Clone)]
struct Shard {
    slot: Arc<ShardSlot>,
    handle: ActorHandle<RouterShard>,
}

/// A built router: its handle, its router actor and the children to supervise (the K
/// shards, then the router) in start order.
pub struct RouterParts {
    pub tools: Tools,
    pub router: ActorHandle<ToolRouter>,
    pub children: Vec<ChildSpec>,
}

impl RouterParts {
    /// A one-for-one supervisor named `name` over the router's actors (the node's `tools`).
    pub fn supervisor_spec(&self, name: &str) -> SupervisorSpec {
        let spec = SupervisorSpec::new(name, Strategy::OneForOne);
        self.children
            .iter()
            .cloned()
            .fold(spec, SupervisorSpec::child)
    }
}

impl Tools {
    /// Builds a router and registers its metric families in `metrics`.
    pub fn build(config: RouterConfig, metrics: &Metrics) -> Result<RouterParts, BuildError> {
        config.validate().map_err(BuildError::Config)?;
        let config = Arc::new(config);
        let mut children = Vec::with_capacity(config.shards + 1);
        let mut shards = Vec::with_capacity(config.shards);
        for index in 0..config.shards {
            let (spec, shard) = new_shard(index, &config);
            children.push(spec);
            shards.push(shard);
        }
        let tools = Tools {
            inner: Arc::new(Inner {
                config,
                metrics: ToolMetrics::register(metrics)?,
                shards: RwLock::new(Arc::new(shards)),
                writes: Mutex::new(()),
            }),
        };
        let for_router = tools.clone();
        let (spec, router) = ChildSpec::actor("router", move || (ToolRouter, for_router.clone()));
        children.push(spec);
        Ok(RouterParts {
            tools,
            router,
            children,
        })
    }

    pub fn config(&self) -> &RouterConfig {
        &self.inner.config
    }

    fn shards(&self) -> Arc<Vec<Shard>> {
        self.inner
            .shards
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.inner.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a tool on the shard its name hashes to. The name must be exportable
    /// (see [`export::check_name`]) and the schema a valid object schema.
    pub fn register(&self, tool: Tool) -> Result<(), RegisterError> {
        let name = tool.spec.name.clone();
        export::check_name(&name).map_err(|reason| RegisterError::InvalidName {
            name: name.clone(),
            reason,
        })?;
        let schema = Schema::compile(&tool.spec.parameters).map_err(|message| {
            RegisterError::InvalidSchema {
                tool: name.clone(),
                message,
            }
        })?;
        let _writes = self.lock_writes();
        let shards = self.shards();
        let owner = &shards[shard_of(&name, shards.len())];
        if owner.slot.contains(&name) {
            return Err(RegisterError::Duplicate(name));
        }
        owner.slot.insert(Arc::new(Entry {
            counters: self.inner.metrics.tool(&name),
            spec: tool.spec,
            schema,
            exec: tool.exec,
        }));
        Ok(())
    }

    /// Registers each tool in turn, stopping at the first refusal.
    pub fn register_all(&self, tools: impl IntoIterator<Item = Tool>) -> Result<(), RegisterError> {
        tools.into_iter().try_for_each(|t| self.register(t))
    }

    /// Removes a tool; calls already running finish. Returns whether it was registered.
    pub fn unregister(&self, name: &str) -> bool {
        let _writes = self.lock_writes();
        let shards = self.shards();
        let removed = shards[shard_of(name, shards.len())].slot.remove(name);
        if removed.is_some() {
            self.inner.metrics.forget(name);
        }
        removed.is_some()
    }

    /// Specs of the tools matching any of `patterns` (all when empty), sorted by name.
    pub fn list(&self, patterns: &[String]) -> Vec<ToolSpec> {
        let mut specs = Vec::new();
        for shard in self.shards().iter() {
            shard.slot.specs_matching(patterns, &mut specs);
        }
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        specs
    }

    /// [`Self::list`] as OpenAI Chat Completions `tools`.
    pub fn export_openai(&self, patterns: &[String]) -> Value {
        export::openai(&self.list(patterns))
    }

    /// [`Self::list`] as Anthropic Messages `tools`.
    pub fn export_anthropic(&self, patterns: &[String]) -> Value {
        export::anthropic(&self.list(patterns))
    }

    /// Runs one call on the shard that owns the tool. The deadline is the request's
    /// `timeout_ms` (or the default), capped by the config and by the deadline of the
    /// message being handled, if the caller is an actor.
    pub async fn call(&self, mut request: ToolCallRequest) -> Result<ToolOutput, ToolError> {
        let config = &self.inner.config;
        let mut timeout = config.timeout_for(request.timeout_ms);
        if let Some(budget) = propagation::inherited_budget() {
            timeout = timeout.min(budget);
        }
        request.timeout_ms = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        let mut shards = self.shards();
        loop {
            let shard = &shards[shard_of(&request.name, shards.len())];
            let name = request.name.clone();
            let (port, result) = oneshot::channel();
            let call = ShardCall::new(request, port);
            let admitted = shard.handle.call(call, config.admission_timeout).await;
            match admitted {
                Ok(Ok(())) => return self.wait(&name, result, timeout).await,
                Ok(Err(ToolError::UnknownTool(_))) => {
                    // Either no such tool, or a shard was added while this call was on its
                    // way and the tool moved: then go again, to its new shard.
                    let now = self.shards();
                    let moved = !Arc::ptr_eq(&now, &shards);
                    match result.await {
                        Ok(PortMsg::NotHere(back)) if moved => (request, shards) = (back, now),
                        _ => {
                            self.inner.metrics.unknown_call();
                            return Err(ToolError::UnknownTool(name));
                        }
                    }
                }
                Ok(Err(refused)) => return Err(refused),
                Err(err) => return Err(unavailable(name, &err)),
            }
        }
    }

    async fn wait(
        &self,
        name: &str,
        result: oneshot::Receiver<PortMsg>,
        timeout: Duration,
    ) -> Result<ToolOutput, ToolError> {
        match tokio::time::timeout(timeout + RESULT_GRACE, result).await {
            Ok(Ok(PortMsg::Done(result))) => result,
            Ok(Ok(PortMsg::NotHere(_)) | Err(_)) => Err(ToolError::Unavailable {
                tool: name.to_string(),
                reason: "the call was dropped before it finished".into(),
            }),
            Err(_) => Err(ToolError::Timeout {
                tool: name.to_string(),
                timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Answers a router message: what the router actor does with each one.
    pub async fn serve(&self, msg: RouterMsg) -> RouterReply {
        match msg {
            RouterMsg::List { patterns } => RouterReply::Tools(self.list(&patterns)),
            RouterMsg::Call(request) => RouterReply::Result(self.call(request).await),
        }
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards().len()
    }

    /// The shard `name` maps to (whether or not such a tool is registered).
    pub fn shard_of(&self, name: &str) -> usize {
        shard_of(name, self.shard_count())
    }

    /// The shard actors, in shard order.
    pub fn shard_handles(&self) -> Vec<ActorHandle<RouterShard>> {
        self.shards().iter().map(|s| s.handle.clone()).collect()
    }

    /// How many tools each shard holds, in shard order.
    pub fn shard_sizes(&self) -> Vec<usize> {
        self.shards().iter().map(|s| s.slot.len()).collect()
    }

    /// The shard that holds the tool `name`, if one does.
    pub fn holder(&self, name: &str) -> Option<usize> {
        self.shards().iter().position(|s| s.slot.contains(name))
    }
}

fn new_shard(index: usize, config: &Arc<RouterConfig>) -> (ChildSpec, Shard) {
    let slot = Arc::new(ShardSlot::new(index, config.max_in_flight_per_shard));
    let (for_actor, config) = (slot.clone(), config.clone());
    let (spec, handle) = ChildSpec::actor(&format!("shard-{index}"), move || {
        let args = ShardArgs {
            slot: for_actor.clone(),
            config: config.clone(),
        };
        (RouterShard, args)
    });
    (spec, Shard { slot, handle })
}

fn unavailable(tool: String, err: &CallError) -> ToolError {
    ToolError::Unavailable {
        tool,
        reason: err.to_string(),
    }
}
