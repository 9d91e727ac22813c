//! Taking a sandbox down once its command has ended (or has been killed).

use std::time::Duration;

use tokio::net::unix::pipe;
use tokio::process::Child;

use crate::net::EgressProxy;
use crate::prepare::{CgroupGuard, StateDir};

/// How long the init may take to exit once the command has ended.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// A sandbox whose command was sent: everything that must stay alive while it runs and
/// be released, in order, afterwards. Dropped without [`Remains::tear_down`] it still goes
/// (the init is killed on drop, PID 1 reads the closed control pipe as the order to kill
/// the namespace, the cgroup and state directory remove themselves), only less politely.
pub(crate) struct Remains {
    pub child: Child,
    /// The lifeline: PID 1 kills the sandbox when the node closes it (or dies).
    pub control: pipe::Sender,
    pub cgroup: CgroupGuard,
    pub state: StateDir,
    /// The node side of the sandbox's egress, when it has any; stops when dropped.
    pub proxy: Option<EgressProxy>,
}

impl Remains {
    /// Lets the init exit (its namespaces take a moment to unmount), killing it if it
    /// lingers, then removes the cgroup, closes the lifeline and removes the state dir.
    pub async fn tear_down(self) {
        let Remains {
            mut child,
            control,
            cgroup,
            state,
            proxy,
        } = self;
        if tokio::time::timeout(DRAIN_GRACE, child.wait())
            .await
            .is_err()
        {
            cgroup.kill_all().await;
            let _ = child.kill().await;
        }
        if let Err(e) = cgroup.destroy().await {
            tracing::warn!(error = %e, "sandbox cgroup teardown failed");
        }
        // Closed only now: PID 1 takes the end of the control pipe as the node letting go
        // and kills the sandbox (this is how a dropped run, or a dead node, ends it).
        drop((control, state, proxy));
    }

    /// Kills every process of the sandbox, then tears it down.
    pub async fn kill_and_tear_down(self) {
        self.cgroup.kill_all().await;
        self.tear_down().await;
    }
}
