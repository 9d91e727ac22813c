//! Why a sandbox could not run a command.

use neuroflow_kit::protocol::sandbox::SandboxFailure;

use crate::net::AllowlistError;
use crate::profile::ProfileError;
use crate::seccomp::PolicyError;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The profile asks for something that cannot work.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// No such profile (built-in or configured).
    #[error("unknown sandbox profile {0:?}")]
    UnknownProfile(String),
    /// The host cannot give a layer the profile needs: the sandbox refuses to start.
    #[error("the host cannot provide the {layer} layer this profile needs: {detail}")]
    Unsupported { layer: String, detail: String },
    /// An egress allowlist entry does not parse.
    #[error(transparent)]
    Allowlist(#[from] AllowlistError),
    /// The seccomp policy does not compile.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Setting up a layer failed (before the command ran).
    #[error("sandbox set-up failed at the {layer} layer: {message}")]
    Setup { layer: String, message: String },
    #[error("sandbox I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl SandboxError {
    pub(crate) fn layer(layer: &str, message: impl std::fmt::Display) -> Self {
        Self::Setup {
            layer: layer.to_string(),
            message: message.to_string(),
        }
    }

    pub(crate) fn io(err: std::io::Error) -> Self {
        Self::Io(err)
    }

    /// The layer at fault, if one is.
    pub fn layer_name(&self) -> Option<&str> {
        match self {
            Self::Unsupported { layer, .. } | Self::Setup { layer, .. } => Some(layer),
            Self::Policy(_) => Some("seccomp"),
            Self::Allowlist(_) => Some("egress"),
            _ => None,
        }
    }
}

impl From<&SandboxError> for SandboxFailure {
    fn from(err: &SandboxError) -> Self {
        SandboxFailure {
            layer: err.layer_name().map(str::to_string),
            message: err.to_string(),
        }
    }
}
