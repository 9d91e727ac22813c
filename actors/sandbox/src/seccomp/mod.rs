//! Seccomp: the system-call allowlist of a sandbox.
//!
//! The policy is data: `policy/seccomp.toml` (built in, and replaceable by a file of the
//! same format) names sets of allowed calls, argument rules and profiles, plus a `never`
//! list no profile may allow. The file is read and checked into a [`Policy`]; the node
//! compiles a profile once into a [`Bpf`] program with libseccomp, and the sandbox init
//! loads that program with [`Bpf::install`] right before it execs the command.
//!
//! ```no_run
//! use neuroflow_sandbox::seccomp::Policy;
//!
//! let policy = Policy::builtin()?;
//! let program = policy.compile("standard")?;
//! // ... send `program` to the init, which after setting no_new_privs calls:
//! program.install()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod args;
mod bpf;
mod compile;
mod consts;
mod cubes;
mod error;
mod policy;

pub use bpf::{Bpf, SeccompError};
pub use error::{POLICY_VERSION, PolicyError};

/// The policy shipped with the crate.
const BUILTIN: &str = include_str!("../../policy/seccomp.toml");

/// A parsed and checked seccomp policy: every profile in it compiles.
#[derive(Debug, Clone)]
pub struct Policy {
    resolved: policy::Resolved,
}

impl Policy {
    /// The policy shipped with the crate (`policy/seccomp.toml`).
    pub fn builtin() -> Result<Policy, PolicyError> {
        Policy::from_toml(BUILTIN)
    }

    /// Read a policy file. Fails on the first mistake, naming it: syntax, version,
    /// unknown syscall, set, rule or constant, bad action or comparison, a `never` call
    /// allowed, or rules libseccomp could not honour as written.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyError> {
        Ok(Policy {
            resolved: policy::parse(text)?,
        })
    }

    /// The profiles of the policy, sorted by name.
    pub fn profile_names(&self) -> Vec<&str> {
        self.resolved.profiles.keys().map(String::as_str).collect()
    }

    /// Compile a profile into a BPF program for the native architecture.
    pub fn compile(&self, profile: &str) -> Result<Bpf, PolicyError> {
        let Some(found) = self.resolved.profiles.get(profile) else {
            return Err(PolicyError::UnknownProfile {
                name: profile.to_owned(),
                known: self.profile_names().join(", "),
            });
        };
        compile::compile(&self.resolved, profile, found)
    }
}
