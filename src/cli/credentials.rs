//! The token `login` saves, and the token a client command uses.
//!
//! The file is `credentials.json` in `$NEUROFLOW_CONFIG_DIR`, else
//! `$XDG_CONFIG_HOME/neuroflow`, else `$HOME/.config/neuroflow`. It holds one node's URL,
//! token and expiry. The token is a secret, so the file is written with mode 0600 (in a
//! directory created 0700) and replaced whole by a rename, so that no reader ever sees
//! half of it and no other user ever can.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Name of the file inside the configuration directory.
pub const FILE_NAME: &str = "credentials.json";
/// Environment variable holding a token, which wins over the saved one.
pub const ENV_TOKEN: &str = "NEUROFLOW_TOKEN";

/// What `login` saves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The node the token is for (as [`super::remote::NodeUrl`] normalises it).
    pub url: String,
    pub token: String,
    /// Unix seconds.
    pub expires_at: u64,
}

#[derive(Debug, Error)]
pub enum CredentialsError {
    #[error(
        "no configuration directory: set NEUROFLOW_CONFIG_DIR, XDG_CONFIG_HOME or HOME, \
         or give the token in {ENV_TOKEN}"
    )]
    NoConfigDir,
    #[error("not logged in to {url}: run `neuroflow-node login --url {url}` or set {ENV_TOKEN}")]
    NotLoggedIn { url: String },
    #[error(
        "not logged in to {url} (the saved token is for {saved}): run \
         `neuroflow-node login --url {url}` or set {ENV_TOKEN}"
    )]
    OtherNode { url: String, saved: String },
    #[error(
        "the saved token for {url} has expired: log in again with `neuroflow-node login --url {url}`"
    )]
    Expired { url: String },
    #[error("cannot read {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("cannot save the token in {}: {source}", path.display())]
    Unwritable {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The configuration directory, from the environment `var` reads.
pub fn config_dir(var: impl Fn(&str) -> Option<String>) -> Result<PathBuf, CredentialsError> {
    let set = |name: &str| var(name).filter(|value| !value.is_empty());
    if let Some(dir) = set("NEUROFLOW_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    // The XDG rules say a relative XDG_CONFIG_HOME is to be ignored.
    if let Some(dir) = set("XDG_CONFIG_HOME").filter(|dir| Path::new(dir).is_absolute()) {
        return Ok(Path::new(&dir).join("neuroflow"));
    }
    match set("HOME") {
        Some(home) => Ok(Path::new(&home).join(".config").join("neuroflow")),
        None => Err(CredentialsError::NoConfigDir),
    }
}

/// The process environment, as [`config_dir`] and [`token_for`] read it.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The credentials saved in `dir`, if there are any.
pub fn load(dir: &Path) -> Result<Option<Credentials>, CredentialsError> {
    let path = dir.join(FILE_NAME);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(CredentialsError::Unreadable {
                path,
                reason: err.to_string(),
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|err| CredentialsError::Unreadable {
            path,
            reason: err.to_string(),
        })
}

/// Saves `credentials` in `dir` (created 0700 if missing) as a 0600 file, replacing any
/// earlier one. Returns the file's path.
pub fn save(dir: &Path, credentials: &Credentials) -> Result<PathBuf, CredentialsError> {
    let path = dir.join(FILE_NAME);
    let unwritable = |source| CredentialsError::Unwritable {
        path: path.clone(),
        source,
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(unwritable)?;
    // A fresh file takes its mode at creation, whatever mode an earlier file had.
    let temporary = dir.join(format!(".{FILE_NAME}.{}", std::process::id()));
    let _ = fs::remove_file(&temporary);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| {
            let json = serde_json::to_vec_pretty(credentials).map_err(std::io::Error::other)?;
            file.write_all(&json)?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&temporary, &path));
    if let Err(err) = written {
        let _ = fs::remove_file(&temporary);
        return Err(unwritable(err));
    }
    Ok(path)
}

/// The token to send to the node at `url`: `NEUROFLOW_TOKEN` if set, else the saved one,
/// provided it is for this URL and has not expired at `now`.
pub fn token_for(
    url: &str,
    var: impl Fn(&str) -> Option<String>,
    now: u64,
) -> Result<String, CredentialsError> {
    if let Some(token) = var(ENV_TOKEN).filter(|token| !token.is_empty()) {
        return Ok(token);
    }
    let dir = config_dir(&var)?;
    let url = url.to_string();
    match load(&dir)? {
        None => Err(CredentialsError::NotLoggedIn { url }),
        Some(saved) if saved.url != url => Err(CredentialsError::OtherNode {
            url,
            saved: saved.url,
        }),
        Some(saved) if saved.expires_at <= now => Err(CredentialsError::Expired { url }),
        Some(saved) => Ok(saved.token),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "neuroflow-credentials-{tag}-{}-{}",
                std::process::id(),
                now_unix()
            ));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            Self(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn saved(url: &str, expires_at: u64) -> Credentials {
        Credentials {
            url: url.into(),
            token: "tok".into(),
            expires_at,
        }
    }

    const NODE: &str = "http://127.0.0.1:7700";

    #[test]
    fn the_directory_comes_from_the_first_variable_set() {
        let dir = |pairs: &[(&str, &str)]| config_dir(env(pairs)).ok();
        assert_eq!(
            dir(&[("NEUROFLOW_CONFIG_DIR", "/a"), ("HOME", "/h")]),
            Some(PathBuf::from("/a"))
        );
        assert_eq!(
            dir(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]),
            Some(PathBuf::from("/x/neuroflow"))
        );
        assert_eq!(
            dir(&[
                ("NEUROFLOW_CONFIG_DIR", ""),
                ("XDG_CONFIG_HOME", "rel"),
                ("HOME", "/h")
            ]),
            Some(PathBuf::from("/h/.config/neuroflow"))
        );
        assert!(matches!(
            config_dir(env(&[])),
            Err(CredentialsError::NoConfigDir)
        ));
    }

    #[test]
    fn the_file_is_private_and_round_trips() {
        let scratch = Scratch::new("mode");
        let dir = scratch.0.join("new").join("neuroflow");
        // An earlier, world-readable file does not lend its mode to the new one.
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(FILE_NAME), "{}").unwrap();
        fs::set_permissions(dir.join(FILE_NAME), fs::Permissions::from_mode(0o644)).unwrap();
        let path = save(&dir, &saved(NODE, 10)).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load(&dir).unwrap(), Some(saved(NODE, 10)));
        // Nothing else is left in the directory.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);

        let fresh = scratch.0.join("fresh");
        save(&fresh, &saved(NODE, 10)).unwrap();
        let mode = fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn the_saved_token_is_used_only_for_its_node_and_until_it_expires() {
        let scratch = Scratch::new("use");
        let dir = scratch.0.to_str().unwrap();
        let vars = env(&[("NEUROFLOW_CONFIG_DIR", dir)]);
        assert!(matches!(
            token_for(NODE, &vars, 100),
            Err(CredentialsError::NotLoggedIn { .. })
        ));
        save(&scratch.0, &saved(NODE, 200)).unwrap();
        assert_eq!(token_for(NODE, &vars, 100).unwrap(), "tok");

        let other = token_for("http://10.0.0.1:7700", &vars, 100).unwrap_err();
        assert!(
            matches!(other, CredentialsError::OtherNode { .. }),
            "{other}"
        );
        assert!(other.to_string().contains(NODE), "{other}");

        let expired = token_for(NODE, &vars, 200).unwrap_err();
        assert!(matches!(expired, CredentialsError::Expired { .. }));
        assert!(expired.to_string().contains("log in again"), "{expired}");
    }

    #[test]
    fn the_environment_token_wins() {
        let vars = env(&[(ENV_TOKEN, "from-env")]);
        assert_eq!(token_for(NODE, vars, 0).unwrap(), "from-env");
    }

    #[test]
    fn a_damaged_file_is_reported_not_ignored() {
        let scratch = Scratch::new("bad");
        fs::write(scratch.0.join(FILE_NAME), "not json").unwrap();
        let err = load(&scratch.0).unwrap_err();
        assert!(err.to_string().contains(FILE_NAME), "{err}");
    }
}
