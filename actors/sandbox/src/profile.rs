//! Sandbox profiles: how much isolation, which limits, what the sandbox sees.
//!
//! Three built-in profiles — `minimal` (a subprocess with rlimits; it does not isolate and
//! is used only when asked for by name), `standard` and `strict` — and any number of
//! user-defined ones from the node config (`[sandbox.profiles.NAME]`), each starting from a
//! built-in one (`base = "standard"`) and changing what it names.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::{ByteSize, Span};

/// What a sandbox looks like and what it may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub isolation: Isolation,
    /// Run inside a user namespace even when the node runs as root (it always does when
    /// the node is not root).
    #[serde(default)]
    pub user_namespace: bool,
    /// The read-only lower layers of the sandbox's file system.
    pub root: RootFs,
    /// Mount the lower layers read-only instead of copy-on-write: writes go only to
    /// /workspace and /tmp.
    #[serde(default)]
    pub read_only_root: bool,
    /// Name of the seccomp profile in the policy file (`policy/seccomp.toml`).
    pub seccomp: String,
    pub limits: Limits,
    #[serde(default)]
    pub network: Network,
    /// The command's environment: nothing of the node's own environment is passed on.
    pub env: BTreeMap<String, String>,
    pub hostname: String,
    /// User and group the command runs as when the node is root and no user namespace is
    /// used (by default `nobody`, so that files of the host's root stay out of reach).
    pub uid: u32,
    pub gid: u32,
    /// Host directories bound into the sandbox.
    #[serde(default)]
    pub mounts: Vec<BindMount>,
}

/// How the command is isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    /// A plain subprocess with rlimits and a clean environment. NOT an isolation boundary.
    Minimal,
    /// New namespaces, overlay root, cgroups, capabilities dropped, seccomp.
    Namespaces,
}

/// The lower layers of the sandbox's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum RootFs {
    /// These directories of the host (e.g. `/usr`, `/etc`), each at the same place.
    HostDirs(Vec<PathBuf>),
    /// A whole root file system tree (e.g. an unpacked image) as the sandbox's `/`.
    Tree(PathBuf),
}

/// A host directory made visible inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindMount {
    pub source: PathBuf,
    pub target: PathBuf,
    #[serde(default)]
    pub writable: bool,
}

/// Resource limits. A limit that ends the command gives it a clear end reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// CPU bandwidth in thousandths of a core (cgroup quota).
    pub cpu_millicores: Option<u64>,
    /// CPU time of each process (RLIMIT_CPU); ends the command with `cpu-time`.
    pub cpu_time: Option<Span>,
    /// Memory of the whole tree (cgroup); exceeding it ends with `oom-killed`.
    pub memory: Option<ByteSize>,
    /// Swap on top of `memory` (cgroup; `0` means none).
    pub swap: Option<ByteSize>,
    /// Processes and threads of the whole tree (cgroup); `pids-exhausted` when hit.
    pub pids: Option<u64>,
    /// Wall-clock limit; `timeout` when hit.
    pub timeout: Span,
    /// stdout + stderr bytes kept; more ends the command with `output-capped`.
    pub output: ByteSize,
    /// Size of the tmpfs at /tmp.
    pub tmp: ByteSize,
    /// Size of the writable layer (the copy-on-write upper layer and /workspace).
    pub disk: ByteSize,
    /// Largest file a process may write (RLIMIT_FSIZE).
    pub file_size: ByteSize,
    /// Open files per process (RLIMIT_NOFILE).
    pub open_files: u64,
}

/// Network access. Empty `allow` means no network at all: only a loopback interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    /// Egress allowlist entries: `host:port`, `CIDR:port`, `[v6]:port` (`*` for any port).
    #[serde(default)]
    pub allow: Vec<String>,
}

/// Directories of the host that make a usable system (programs, libraries, `/etc`).
const HOST_SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"];

/// The `nobody` user and `nogroup` group of Debian and most distributions.
const NOBODY: u32 = 65534;

impl Profile {
    /// The built-in profile called `name`.
    pub fn builtin(name: &str) -> Option<Profile> {
        match name {
            "minimal" => Some(Self::minimal()),
            "standard" => Some(Self::standard()),
            "strict" => Some(Self::strict()),
            _ => None,
        }
    }

    pub const BUILTIN_NAMES: [&'static str; 3] = ["minimal", "standard", "strict"];

    fn standard() -> Profile {
        Profile {
            name: "standard".into(),
            isolation: Isolation::Namespaces,
            user_namespace: false,
            root: RootFs::HostDirs(HOST_SYSTEM_DIRS.iter().map(PathBuf::from).collect()),
            read_only_root: false,
            seccomp: "standard".into(),
            limits: Limits {
                cpu_millicores: Some(1000),
                cpu_time: Some(Span(Duration::from_secs(60))),
                memory: Some(ByteSize::mib(512)),
                swap: Some(ByteSize(0)),
                pids: Some(256),
                timeout: Span(Duration::from_secs(30)),
                output: ByteSize::mib(1),
                tmp: ByteSize::mib(64),
                disk: ByteSize::mib(256),
                file_size: ByteSize::mib(64),
                open_files: 1024,
            },
            network: Network::default(),
            env: default_env(),
            hostname: "sandbox".into(),
            uid: NOBODY,
            gid: NOBODY,
            mounts: Vec::new(),
        }
    }

    fn strict() -> Profile {
        let standard = Self::standard();
        Profile {
            name: "strict".into(),
            read_only_root: true,
            seccomp: "strict".into(),
            limits: Limits {
                cpu_millicores: Some(500),
                cpu_time: Some(Span(Duration::from_secs(10))),
                memory: Some(ByteSize::mib(256)),
                swap: Some(ByteSize(0)),
                pids: Some(64),
                timeout: Span(Duration::from_secs(10)),
                output: ByteSize::kib(256),
                tmp: ByteSize::mib(16),
                disk: ByteSize::mib(32),
                file_size: ByteSize::mib(16),
                open_files: 256,
            },
            ..standard
        }
    }

    fn minimal() -> Profile {
        let standard = Self::standard();
        Profile {
            name: "minimal".into(),
            isolation: Isolation::Minimal,
            limits: Limits {
                cpu_millicores: None,
                memory: None,
                swap: None,
                pids: None,
                ..standard.limits.clone()
            },
            ..standard
        }
    }

    /// Whether this profile isolates the command at all.
    pub fn isolates(&self) -> bool {
        self.isolation == Isolation::Namespaces
    }

    /// Checks what a user-defined profile could get wrong.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let bad = |field: &'static str, problem: String| ProfileError {
            profile: self.name.clone(),
            field,
            problem,
        };
        if self.hostname.is_empty()
            || self.hostname.len() > 64
            || !self
                .hostname
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            return Err(bad(
                "hostname",
                "must be 1-64 letters, digits, '-' or '.'".into(),
            ));
        }
        let dirs: Vec<&PathBuf> = match &self.root {
            RootFs::HostDirs(dirs) => dirs.iter().collect(),
            RootFs::Tree(tree) => vec![tree],
        };
        for dir in dirs {
            if !dir.is_absolute() {
                return Err(bad(
                    "root",
                    format!("{} is not an absolute path", dir.display()),
                ));
            }
        }
        for mount in &self.mounts {
            for path in [&mount.source, &mount.target] {
                if !path.is_absolute() || path.components().any(|c| c.as_os_str() == "..") {
                    return Err(bad(
                        "mounts",
                        format!("{} must be absolute, without '..'", path.display()),
                    ));
                }
            }
        }
        for (key, value) in &self.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
                return Err(bad("env", format!("invalid variable {key:?}")));
            }
        }
        if self.limits.timeout.0.is_zero() {
            return Err(bad("limits.timeout", "must be more than zero".into()));
        }
        if self.limits.pids == Some(0) {
            return Err(bad("limits.pids", "must be at least 1".into()));
        }
        Ok(())
    }
}

/// A profile defined in the node config (`[sandbox.profiles.NAME]`): a built-in base and
/// what to change of it. Absent keys keep the base's value; `env` and `mounts` add to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileConfig {
    /// The built-in profile this one starts from (default `standard`).
    pub base: Option<String>,
    pub user_namespace: Option<bool>,
    pub root: Option<RootFs>,
    pub read_only_root: Option<bool>,
    pub seccomp: Option<String>,
    pub hostname: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub env: BTreeMap<String, String>,
    pub mounts: Vec<BindMount>,
    pub network: Option<Network>,
    pub limits: LimitsConfig,
}

/// `[sandbox.profiles.NAME.limits]`: each key replaces the base's limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub cpu_millicores: Option<u64>,
    pub cpu_time: Option<Span>,
    pub memory: Option<ByteSize>,
    pub swap: Option<ByteSize>,
    pub pids: Option<u64>,
    pub timeout: Option<Span>,
    pub output: Option<ByteSize>,
    pub tmp: Option<ByteSize>,
    pub disk: Option<ByteSize>,
    pub file_size: Option<ByteSize>,
    pub open_files: Option<u64>,
}

impl ProfileConfig {
    /// The profile `name` this config describes, checked.
    pub fn resolve(&self, name: &str) -> Result<Profile, ProfileError> {
        let base = self.base.as_deref().unwrap_or("standard");
        let mut p = Profile::builtin(base).ok_or_else(|| ProfileError {
            profile: name.to_string(),
            field: "base",
            problem: format!(
                "unknown base profile {base:?} (known: {})",
                Profile::BUILTIN_NAMES.join(", ")
            ),
        })?;
        p.name = name.to_string();
        macro_rules! set {
            ($($field:ident).+ <- $value:expr) => {
                if let Some(v) = $value.clone() {
                    p.$($field).+ = v;
                }
            };
        }
        set!(user_namespace <- self.user_namespace);
        set!(root <- self.root);
        set!(read_only_root <- self.read_only_root);
        set!(seccomp <- self.seccomp);
        set!(hostname <- self.hostname);
        set!(uid <- self.uid);
        set!(gid <- self.gid);
        set!(network <- self.network);
        let l = &self.limits;
        if l.cpu_millicores.is_some() {
            p.limits.cpu_millicores = l.cpu_millicores;
        }
        if l.cpu_time.is_some() {
            p.limits.cpu_time = l.cpu_time;
        }
        if l.memory.is_some() {
            p.limits.memory = l.memory;
        }
        if l.swap.is_some() {
            p.limits.swap = l.swap;
        }
        if l.pids.is_some() {
            p.limits.pids = l.pids;
        }
        set!(limits.timeout <- l.timeout);
        set!(limits.output <- l.output);
        set!(limits.tmp <- l.tmp);
        set!(limits.disk <- l.disk);
        set!(limits.file_size <- l.file_size);
        set!(limits.open_files <- l.open_files);
        p.env.extend(self.env.clone());
        p.mounts.extend(self.mounts.iter().cloned());
        p.validate()?;
        Ok(p)
    }
}

/// What a command sees of the environment by default.
fn default_env() -> BTreeMap<String, String> {
    [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HOME", "/workspace"),
        ("LANG", "C.UTF-8"),
        ("TMPDIR", "/tmp"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A profile setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sandbox profile {profile:?}: {field}: {problem}")]
pub struct ProfileError {
    pub profile: String,
    pub field: &'static str,
    pub problem: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_valid_and_ordered_by_strictness() {
        for name in Profile::BUILTIN_NAMES {
            let p = Profile::builtin(name).unwrap();
            assert_eq!(p.name, name);
            p.validate().unwrap();
        }
        let (standard, strict) = (
            Profile::builtin("standard").unwrap(),
            Profile::builtin("strict").unwrap(),
        );
        assert!(!Profile::builtin("minimal").unwrap().isolates());
        assert!(strict.read_only_root && !standard.read_only_root);
        assert!(strict.limits.memory < standard.limits.memory);
        assert!(strict.limits.pids < standard.limits.pids);
        assert!(Profile::builtin("nope").is_none());
    }

    #[test]
    fn validation_names_the_field() {
        let mut p = Profile::builtin("standard").unwrap();
        p.hostname = "bad host".into();
        assert_eq!(p.validate().unwrap_err().field, "hostname");
        let mut p = Profile::builtin("standard").unwrap();
        p.mounts.push(BindMount {
            source: "/data/../etc".into(),
            target: "/data".into(),
            writable: false,
        });
        assert_eq!(p.validate().unwrap_err().field, "mounts");
    }

    #[test]
    fn configured_profiles_start_from_a_base() {
        let config: ProfileConfig = toml::from_str(
            r#"
            base = "strict"
            env = { PYTHONDONTWRITEBYTECODE = "1" }
            [limits]
            memory = "1G"
            timeout = "2m"
            "#,
        )
        .unwrap();
        let p = config.resolve("python").unwrap();
        assert_eq!(p.name, "python");
        assert!(p.read_only_root, "kept from strict");
        assert_eq!(p.limits.memory, Some(ByteSize::gib(1)));
        assert_eq!(p.limits.timeout, Span(Duration::from_secs(120)));
        assert_eq!(p.limits.pids, Some(64), "kept from strict");
        assert_eq!(p.env["PYTHONDONTWRITEBYTECODE"], "1");
        assert_eq!(p.env["PATH"], "/usr/local/bin:/usr/bin:/bin");

        let bad: Result<ProfileConfig, _> = toml::from_str("[limits]\nmemroy = \"1G\"\n");
        assert!(bad.unwrap_err().to_string().contains("memroy"));
        let err = ProfileConfig {
            base: Some("docker".into()),
            ..Default::default()
        }
        .resolve("x")
        .unwrap_err();
        assert_eq!(err.field, "base");
    }
}
