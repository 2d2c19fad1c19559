//! berth's configuration file, as dockerd's daemon.json is Docker's: `/etc/berth/config.toml`,
//! then `$XDG_CONFIG_HOME/berth/config.toml` (or `~/.config/berth/config.toml`), a later file's
//! keys over an earlier's. Every front end reads it through here; flags override it.
//!
//! ```toml
//! data-root = "/var/lib/berth"
//! insecure-registries = ["registry.lan:5000"]
//! registry-mirrors = ["http://127.0.0.1:5000"]
//! log-driver = "json-file"
//! log-opts = { max-size = "10m", max-file = "3" }
//! default-ulimits = ["nofile=1024:2048"]
//! default-userns = "auto"
//! ```
//!
//! `default-userns` (`private`, `auto` or `auto:size=N`) is what Docker's `userns-remap` is: a
//! user namespace of its own for every container that names no `--userns` (`--userns host`
//! opts out), except a privileged one or one sharing a host namespace (pid, ipc, uts,
//! network), which stays in the host's as Docker requires for those. The host ids come from
//! systemd's range for containers (524288-1879048191) less what /etc/subuid and /etc/subgid
//! give users, one range per container (see `userns`): no key sets them.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What the files set; `None` or empty where none did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// The data root (`--root`).
    pub data_root: Option<PathBuf>,
    /// Registries spoken to over plain HTTP (`--insecure-registry`).
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Mirrors of Docker Hub, tried in order before it (Docker's `registry-mirrors`).
    #[serde(default)]
    pub registry_mirrors: Vec<String>,
    /// A container's log driver when it names none (`json-file` or `none`).
    pub log_driver: Option<String>,
    /// Its options, when the container gives none.
    #[serde(default)]
    pub log_opts: std::collections::BTreeMap<String, String>,
    /// `--ulimit`s every container gets unless it sets that limit itself.
    #[serde(default)]
    pub default_ulimits: Vec<String>,
    /// `--userns` for a container that names none (Docker's `userns-remap`).
    pub default_userns: Option<String>,
    /// The files read, in order (not a key of the file).
    #[serde(skip_deserializing)]
    pub sources: Vec<PathBuf>,
}

/// The system's file, then the user's.
pub fn default_paths() -> Vec<PathBuf> {
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    let mut paths = vec![PathBuf::from("/etc/berth/config.toml")];
    paths.extend(user.map(|d| d.join("berth/config.toml")));
    paths
}

impl Config {
    /// The configuration in force: `$BERTH_CONFIG` alone when set, else the default paths.
    /// A missing file is no error; a file that cannot be read or parsed is, naming it.
    pub fn load() -> Result<Config> {
        match std::env::var_os("BERTH_CONFIG") {
            Some(path) => Config::from_files(&[PathBuf::from(path)]),
            None => Config::from_files(&default_paths()),
        }
    }

    pub fn from_files(paths: &[PathBuf]) -> Result<Config> {
        let mut config = Config::default();
        for path in paths {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("read the configuration", path)(e)),
            };
            config.merge(parse(path, &text)?);
            config.sources.push(path.clone());
        }
        Ok(config)
    }

    /// `later`'s keys over this one's.
    fn merge(&mut self, later: Config) {
        if later.data_root.is_some() {
            self.data_root = later.data_root;
        }
        if !later.insecure_registries.is_empty() {
            self.insecure_registries = later.insecure_registries;
        }
        if !later.registry_mirrors.is_empty() {
            self.registry_mirrors = later.registry_mirrors;
        }
        if later.log_driver.is_some() {
            self.log_driver = later.log_driver;
            self.log_opts = later.log_opts;
        }
        if !later.default_ulimits.is_empty() {
            self.default_ulimits = later.default_ulimits;
        }
        if later.default_userns.is_some() {
            self.default_userns = later.default_userns;
        }
    }

    /// What a container that does not say takes from the configuration: its log driver (and
    /// that driver's options), and every default ulimit it does not set itself.
    pub fn apply_defaults(&self, req: &mut crate::request::RunRequest) -> Result<()> {
        if req.log_driver.is_empty() {
            match &self.log_driver {
                Some(driver) => {
                    req.log_driver = driver.clone();
                    if req.log_opts.is_empty() {
                        req.log_opts = self.log_opts.clone();
                    }
                }
                None => req.log_driver = "json-file".into(),
            }
        }
        for text in &self.default_ulimits {
            let limit = crate::options::ulimit(text)?;
            if !req.ulimits.iter().any(|u| u.name == limit.name) {
                req.ulimits.push(limit);
            }
        }
        let shares_host = [&req.pid, &req.ipc, &req.uts, &req.netns]
            .iter()
            .any(|m| **m == crate::request::NsMode::Host);
        if let Some(mode) = &self.default_userns {
            if req.userns_unset && !req.privileged && !shares_host {
                (req.userns, req.userns_auto) = crate::userns::parse_mode(Some(mode))?;
            }
        }
        Ok(())
    }

    /// The mirrors as registry hosts (`host[:port]`): Docker writes them as URLs.
    pub fn mirror_hosts(&self) -> Vec<String> {
        self.registry_mirrors
            .iter()
            .map(|m| {
                let m = m
                    .strip_prefix("https://")
                    .or_else(|| m.strip_prefix("http://"))
                    .unwrap_or(m);
                m.trim_end_matches('/').to_string()
            })
            .collect()
    }
}

fn parse(path: &Path, text: &str) -> Result<Config> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let reason = e.message().to_string();
        Error::Invalid(format!(
            "{}: {reason}: the keys are data-root, insecure-registries, registry-mirrors, log-driver, log-opts, default-ulimits and default-userns",
            path.display()
        ))
    })?;
    // Checked here, so that a bad value names its file.
    let bad = |what: String| Error::Invalid(format!("{}: {what}", path.display()));
    for u in &config.default_ulimits {
        crate::options::ulimit(u).map_err(|e| bad(format!("default-ulimits: {e}")))?;
    }
    if let Some(mode) = &config.default_userns {
        match crate::userns::parse_mode(Some(mode)) {
            Ok((crate::request::NsMode::Private, _)) => {}
            _ => {
                return Err(bad(format!(
                    "default-userns {mode:?}: use private, auto or auto:size=N"
                )))
            }
        }
    }
    if let Some(d) = &config.log_driver {
        if !["json-file", "none"].contains(&d.as_str()) {
            return Err(bad(format!(
                "log-driver {d:?}: berth has json-file and none"
            )));
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_files_override_and_unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let system = dir.path().join("system.toml");
        let user = dir.path().join("user.toml");
        std::fs::write(
            &system,
            "data-root = \"/srv/berth\"\ninsecure-registries = [\"a:5000\"]\n",
        )
        .unwrap();
        std::fs::write(&user, "registry-mirrors = [\"http://127.0.0.1:5000/\"]\n").unwrap();
        let missing = dir.path().join("missing.toml");
        let c = Config::from_files(&[system.clone(), missing, user.clone()]).unwrap();
        assert_eq!(c.data_root, Some(PathBuf::from("/srv/berth")));
        assert_eq!(c.insecure_registries, ["a:5000"]);
        assert_eq!(c.mirror_hosts(), ["127.0.0.1:5000"]);
        assert_eq!(c.sources, [system, user.clone()]);
        std::fs::write(&user, "registry_mirror = 1\n").unwrap();
        let e = Config::from_files(&[user]).unwrap_err().to_string();
        assert!(
            e.contains("user.toml") && e.contains("registry_mirror"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }
}
