//! `neuroflow-node login`: trades a username and password for a token and saves it, so
//! that the commands that talk to the node can send it.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::client::ApiClient;
use super::credentials::{self, Credentials};
use super::remote::{self, CommandError, NodeArgs};
use super::table::printable;

/// Environment variable holding the password, for scripts.
const ENV_PASSWORD: &str = "NEUROFLOW_PASSWORD";
/// Bound on the password line read from stdin.
const MAX_PASSWORD_BYTES: u64 = 4096;

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Who to log in as.
    #[arg(long, default_value = "admin")]
    pub username: String,
}

pub fn run(args: &LoginArgs) -> ExitCode {
    // Where the token will go is settled first, so that a password is not asked for in
    // vain; both before the runtime starts, since reading the password blocks.
    let prepared = credentials::config_dir(credentials::process_env)
        .map_err(CommandError::from)
        .and_then(|dir| Ok((dir, password(args)?)));
    match prepared {
        Ok((dir, password)) => remote::execute(login(args, dir, password)),
        Err(err) => remote::report(&err),
    }
}

async fn login(args: &LoginArgs, dir: PathBuf, password: String) -> Result<(), CommandError> {
    let client = ApiClient::new(args.node.url.url().clone(), None)?;
    let answer = client.login(&args.username, &password).await?;
    let url = args.node.url.to_string();
    credentials::save(
        &dir,
        &Credentials {
            url: url.clone(),
            token: answer.access_token,
            expires_at: credentials::now_unix().saturating_add(answer.expires_in),
        },
    )?;
    println!(
        "logged in to {url} as {} ({}), token valid for {} min",
        args.username,
        printable(&answer.role, 32),
        answer.expires_in / 60
    );
    Ok(())
}

/// The password: `NEUROFLOW_PASSWORD`, else one line of stdin (asked for on stderr, not
/// echoed, when stdin is a terminal).
fn password(args: &LoginArgs) -> Result<String, CommandError> {
    if let Some(password) = std::env::var(ENV_PASSWORD).ok().filter(|p| !p.is_empty()) {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    if interactive {
        eprint!("password for {} at {}: ", args.username, args.node.url);
        let _ = std::io::stderr().flush();
    }
    let mut line = Vec::new();
    let read = {
        let _quiet = interactive.then(EchoOff::start);
        stdin
            .lock()
            .take(MAX_PASSWORD_BYTES)
            .read_until(b'\n', &mut line)
    };
    if interactive {
        // The Enter the user typed was not echoed either.
        eprintln!();
    }
    read.map_err(|err| CommandError::Usage(format!("cannot read the password: {err}")))?;
    let line = String::from_utf8(line)
        .map_err(|_| CommandError::Usage("the password is not UTF-8".into()))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        return Err(CommandError::Usage(format!(
            "no password: type it, pipe it to stdin or set {ENV_PASSWORD}"
        )));
    }
    Ok(password.to_string())
}

/// Terminal echo off on stdin for as long as it lives; restored on drop. Does nothing if
/// the terminal's settings cannot be read.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn start() -> Self {
        // SAFETY: tcgetattr only writes the termios it is given, which is a plain C struct
        // for which all-zero bytes are a valid value.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut saved) } != 0 {
            return Self(None);
        }
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        // SAFETY: a valid termios, on a descriptor this process owns.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) } != 0 {
            return Self(None);
        }
        Self(Some(saved))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restores settings tcgetattr returned for the same descriptor.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved) };
        }
    }
}
