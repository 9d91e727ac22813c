//! The router actor: what agents and remote callers send [`RouterMsg`]s to.
//!
//! It resolves nothing itself: [`Tools::serve`] maps each call onto its shard, which
//! validates and runs it. Because a kit actor answers from its handler, one router actor
//! answers one call at a time, from admission to result; see the crate docs for what that
//! means and what the local [`Tools`] handle does instead.

use neuroflow_kit::actor::{Actor, ActorError, Ctx};
use neuroflow_kit::protocol::router::{RouterMsg, RouterReply};

use crate::tools::Tools;

/// The tool router (kind `tools.router`).
pub struct ToolRouter;

impl Actor for ToolRouter {
    const KIND: &'static str = "tools.router";
    type Msg = RouterMsg;
    type Reply = RouterReply;
    type State = Tools;
    type Args = Tools;

    async fn started(&self, _: &Ctx<Self>, tools: Tools) -> Result<Tools, ActorError> {
        Ok(tools)
    }

    async fn handle(
        &self,
        _: &Ctx<Self>,
        msg: RouterMsg,
        tools: &mut Tools,
    ) -> Result<RouterReply, ActorError> {
        Ok(tools.serve(msg).await)
    }
}
