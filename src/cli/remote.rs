//! What the commands that talk to a running node share: where the node is, the token
//! they send, how their failures become exit statuses.

use std::fmt;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use reqwest::Url;
use thiserror::Error;

use super::client::{ApiClient, ClientError};
use super::credentials::{self, CredentialsError};
use super::{EXIT_CONFIG, EXIT_FAILURE};
use crate::config::NodeConfig;

/// `--url`, shared by every command that talks to a node.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// The node's URL (its `node.listen` address by default).
    #[arg(long, env = "NEUROFLOW_URL", value_name = "URL", default_value_t = NodeUrl::default())]
    pub url: NodeUrl,
}

/// An `http` or `https` URL of a node, without a trailing slash, so that the saved token
/// is found again however the URL is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUrl(Url);

impl NodeUrl {
    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl Default for NodeUrl {
    fn default() -> Self {
        let listen = NodeConfig::default().listen;
        Self(Url::parse(&format!("http://{listen}")).expect("a socket address is a valid host"))
    }
}

impl FromStr for NodeUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut url =
            Url::parse(text).map_err(|err| format!("{err} (e.g. http://127.0.0.1:7700)"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err("use an http:// or https:// URL with a host".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("a node's URL has no query or fragment".into());
        }
        let path = url.path().trim_end_matches('/').to_string();
        url.set_path(&path);
        Ok(Self(url))
    }
}

impl fmt::Display for NodeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str().trim_end_matches('/'))
    }
}

/// Why a client command failed, and so its exit status.
#[derive(Debug, Error)]
pub enum CommandError {
    /// The command cannot be run as given (exit 2).
    #[error("{0}")]
    Usage(String),
    /// No usable token (exit 2).
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// The node could not be reached or refused the request (exit 1).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The node ran the request and it failed, e.g. a turn (exit 1).
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Credentials(_) => EXIT_CONFIG,
            Self::Client(_) | Self::Failed(_) => EXIT_FAILURE,
        }
    }
}

/// A client of the node `args` names, with the token for it (see [`credentials`]).
pub fn connect(args: &NodeArgs) -> Result<ApiClient, CommandError> {
    let url = args.url.to_string();
    let token = credentials::token_for(&url, credentials::process_env, credentials::now_unix())?;
    Ok(ApiClient::new(args.url.url().clone(), Some(token))?)
}

/// Runs a client command to its end: its failure is printed and becomes the exit status.
pub fn execute(work: impl Future<Output = Result<(), CommandError>>) -> ExitCode {
    let runtime = match super::async_runtime(Some(1), EXIT_FAILURE) {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let result = runtime.block_on(work);
    // A read of stdin still blocked on a thread must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err),
    }
}

/// Prints `err` and returns its exit status.
pub fn report(err: &CommandError) -> ExitCode {
    eprintln!("neuroflow-node: {err}");
    ExitCode::from(err.exit_code())
}

/// Refuses an agent name that could not be one path segment of a URL.
pub fn check_name(name: &str) -> Result<(), CommandError> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(CommandError::Usage(format!(
            "{name:?} is not an agent name"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised_and_checked() {
        let url = |text: &str| text.parse::<NodeUrl>().map(|u| u.to_string());
        assert_eq!(
            url("http://127.0.0.1:7700/").unwrap(),
            "http://127.0.0.1:7700"
        );
        assert_eq!(
            url("https://node.example/neuroflow/").unwrap(),
            "https://node.example/neuroflow"
        );
        assert_eq!(
            url("HTTP://Node.Example:80").unwrap(),
            "http://node.example"
        );
        assert!(url("ftp://x").is_err());
        assert!(url("127.0.0.1:7700").is_err());
        assert!(url("http://x/?a=1").is_err());
    }

    #[test]
    fn the_default_is_the_node_default_listen_address() {
        assert_eq!(NodeUrl::default().to_string(), "http://127.0.0.1:7700");
    }
}
