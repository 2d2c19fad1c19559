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
//! bip = "10.99.0.1/24"              # the default network's bridge address (berth0's)
//! bridge = "berth1"                 # a default network of this data root's own
//! default-address-pools = [{ base = "10.10.0.0/16", size = 24 }]
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

/// The data root when neither the command line nor a file names one: `/var/lib/berth`, or
/// for rootless berth the user's (`$XDG_DATA_HOME/berth`, `~/.local/share/berth`).
pub fn default_data_root() -> PathBuf {
    if berth_sys::rootless::is_rootless() {
        if let Some(dir) = berth_sys::rootless::user_data_dir() {
            return dir;
        }
    }
    berth_image::store::DEFAULT_ROOT.into()
}

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
    /// The default network's gateway address and prefix (dockerd's `bip`).
    pub bip: Option<String>,
    /// The default network's bridge instead of `berth0` (dockerd's `bridge`).
    pub bridge: Option<String>,
    /// Where user networks' subnets come from when `--subnet` is not given.
    #[serde(default)]
    pub default_address_pools: Vec<AddressPool>,
    /// `--userns` for a container that names none (Docker's `userns-remap`).
    pub default_userns: Option<String>,
    /// The files read, in order (not a key of the file).
    #[serde(skip_deserializing)]
    pub sources: Vec<PathBuf>,
}

const SYSTEM_FILE: &str = "/etc/berth/config.toml";

/// One of dockerd's `default-address-pools`: subnets of prefix `size` cut from `base`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddressPool {
    pub base: String,
    pub size: u8,
}

/// The variable a monitor finds the front end's configuration files in, one per line.
pub const FILES_ENV: &str = "BERTH_CONFIG_FILES";

/// The system's file, then the user's.
pub fn default_paths() -> Vec<PathBuf> {
    let user = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    let mut paths = vec![PathBuf::from(SYSTEM_FILE)];
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

    /// Names the files read to a child berth (a monitor, `__netns`) in [`FILES_ENV`]: its
    /// environment is its own, and it reads them again itself.
    pub fn pass_files(&self, cmd: &mut std::process::Command) {
        if !self.sources.is_empty() {
            let files: Vec<_> = self.sources.iter().map(|p| p.as_os_str()).collect();
            cmd.env(FILES_ENV, files.join(std::ffi::OsStr::new("\n")));
        }
    }

    /// What a monitor's front end read ([`FILES_ENV`]); the defaults without it.
    pub fn of_monitor() -> Result<Config> {
        use std::os::unix::ffi::OsStrExt;
        let Some(list) = std::env::var_os(FILES_ENV) else {
            return Ok(Config::default());
        };
        let paths: Vec<PathBuf> = list
            .as_bytes()
            .split(|&b| b == b'\n')
            .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p)))
            .collect();
        Config::from_files(&paths)
    }

    pub fn from_files(paths: &[PathBuf]) -> Result<Config> {
        let mut config = Config::default();
        for path in paths {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io("read the configuration", path)(e)),
            };
            let mut read = parse(path, &text)?;
            // The system's data root is root's: rootless berth keeps its own under XDG.
            if path == Path::new(SYSTEM_FILE) && berth_sys::rootless::is_rootless() {
                read.data_root = None;
            }
            config.merge(read);
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
        if later.bip.is_some() {
            self.bip = later.bip;
        }
        if later.bridge.is_some() {
            self.bridge = later.bridge;
        }
        if !later.default_address_pools.is_empty() {
            self.default_address_pools = later.default_address_pools;
        }
        if later.default_userns.is_some() {
            self.default_userns = later.default_userns;
        }
    }

    /// The networks' addressing this configuration asks for (checked when it was read).
    pub fn addressing(&self) -> Result<berth_net::Addressing> {
        let bip = match &self.bip {
            Some(text) => Some(bip(text)?),
            None => None,
        };
        let pools = self
            .default_address_pools
            .iter()
            .map(pool)
            .collect::<Result<_>>()?;
        Ok(berth_net::Addressing {
            bridge: self.bridge.clone(),
            bip,
            pools,
        })
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
            "{}: {reason}: the keys are data-root, insecure-registries, registry-mirrors, log-driver, log-opts, default-ulimits, default-userns, bip, bridge and default-address-pools",
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
    config.addressing().map_err(|e| bad(e.to_string()))?;
    if let Some(b) = &config.bridge {
        let ok = !b.is_empty()
            && b.len() <= 15
            && b.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c));
        if !ok {
            return Err(bad(format!(
                "bridge {b:?}: an interface name of at most 15 letters, digits, '_', '.' or '-'"
            )));
        }
    }
    Ok(config)
}

/// `bip`: the gateway's address with the subnet's prefix, as `10.99.0.1/24`.
fn bip(text: &str) -> Result<(std::net::Ipv4Addr, berth_net::Subnet)> {
    let bad = || {
        Error::Invalid(format!(
            "bip {text:?}: give the bridge's address and prefix, as 10.99.0.1/24"
        ))
    };
    let (ip, prefix) = text.split_once('/').ok_or_else(bad)?;
    let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let subnet = berth_net::Subnet::new(ip, prefix).map_err(|_| bad())?;
    if !subnet.is_host(ip) {
        return Err(bad());
    }
    Ok((ip, subnet))
}

/// A pool of `default-address-pools`: a base subnet, cut into at most 2^16 of `size`.
fn pool(p: &AddressPool) -> Result<(berth_net::Subnet, u8)> {
    let bad = |why: &str| {
        Error::Invalid(format!(
            "default-address-pools base {:?} size {}: {why}",
            p.base, p.size
        ))
    };
    let base: berth_net::Subnet = p
        .base
        .parse()
        .map_err(|_| bad("the base is a subnet such as 10.10.0.0/16"))?;
    if berth_net::Addressing::cut(base, p.size).next().is_none() {
        return Err(bad(
            "size is a prefix from the base's to 30, at most 16 bits longer than the base's",
        ));
    }
    Ok((base, p.size))
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
