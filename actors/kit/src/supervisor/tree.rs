//! A snapshot of a live supervision tree, as reported by supervisors.

use serde::{Deserialize, Serialize};

/// State of one actor as its supervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildStatus {
    Running,
    /// Exited and waiting for its backoff to elapse (or for a sibling group to restart).
    Restarting,
    /// Exited normally and not restarted (a transient child's clean exit).
    Stopped,
}

impl ChildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ChildStatus::Running => "running",
            ChildStatus::Restarting => "restarting",
            ChildStatus::Stopped => "stopped",
        }
    }
}

/// One actor in the tree and, for supervisors, its children in start order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeNode {
    pub kind: String,
    pub name: String,
    pub path: String,
    pub status: ChildStatus,
    /// Times the actor has been restarted by its supervisor.
    pub restarts: u64,
    /// What the actor reports about the thing it manages (e.g. an MCP server's state and
    /// restarts), when it reports anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<TreeNode>,
}

impl TreeNode {
    /// The node at `path` (slash-separated, relative to `self`), if any.
    pub fn find(&self, path: &str) -> Option<&TreeNode> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .try_fold(self, |node, seg| {
                node.children.iter().find(|c| c.name == seg)
            })
    }
}
