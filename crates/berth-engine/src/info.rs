//! `info`: what Docker's `system.Info` tells, with the fields berth has an answer for, read
//! from the containers' records, the image store and the host (cgroups, kernel, os-release).

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Serialize;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records::Status;

/// Where the cgroup hierarchies are mounted.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The runtime's name, as `Runtimes` and `Default Runtime` show it.
pub const RUNTIME: &str = "berth-runtime";

/// The version of every crate of the workspace.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Docker's `system.Info`, under its field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    #[serde(rename = "ID")]
    pub id: String,
    pub containers: usize,
    pub containers_running: usize,
    pub containers_paused: usize,
    pub containers_stopped: usize,
    pub images: usize,
    pub driver: String,
    pub driver_status: Vec<[String; 2]>,
    pub cgroup_driver: String,
    /// "1" or "2".
    pub cgroup_version: String,
    /// berth's: "unified", "hybrid" or "legacy".
    pub cgroup_setup: String,
    pub runtimes: BTreeMap<String, serde_json::Value>,
    pub default_runtime: String,
    pub security_options: Vec<String>,
    pub kernel_version: String,
    pub operating_system: String,
    #[serde(rename = "OSType")]
    pub os_type: String,
    pub architecture: String,
    #[serde(rename = "NCPU")]
    pub ncpu: usize,
    pub mem_total: u64,
    pub name: String,
    pub server_version: String,
    pub docker_root_dir: String,
    pub registry_config: RegistryConfig,
    /// berth's: every registry reached over plain HTTP, loopback included.
    pub insecure_registries: Vec<String>,
    /// berth's: the configuration files read, in order (later ones override).
    pub config_files: Vec<String>,
    pub logging_driver: String,
    /// The configuration's `default-address-pools` (Docker's field, omitted when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub default_address_pools: Vec<AddressPool>,
    pub live_restore_enabled: bool,
    pub labels: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddressPool {
    pub base: String,
    pub size: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegistryConfig {
    #[serde(rename = "InsecureRegistryCIDRs")]
    pub insecure_registry_cidrs: Vec<String>,
    pub index_configs: BTreeMap<String, serde_json::Value>,
    pub mirrors: Vec<String>,
}

/// `info`, with how the caller reaches registries (plain HTTP besides loopback, Hub mirrors)
/// and the configuration files it read.
pub fn info(
    engine: &Engine,
    registry: &berth_image::registry::RegistryOptions,
    config_files: &[std::path::PathBuf],
) -> Result<Info> {
    let insecure_registries = &registry.insecure_registries;
    let [running, paused, stopped] = container_counts(engine)?;
    let images: HashSet<_> = engine
        .images()?
        .images()?
        .iter()
        .map(|i| i.id().clone())
        .collect();
    let setup = berth_cgroups::detect(Path::new(CGROUP_ROOT))
        .map_err(|e| Error::Invalid(format!("detect the cgroup setup under {CGROUP_ROOT}: {e}")))?;
    let (cgroup_version, setup_name) = match setup {
        berth_cgroups::Setup::Unified => ("2", "unified"),
        berth_cgroups::Setup::Hybrid => ("1", "hybrid"),
        berth_cgroups::Setup::Legacy => ("1", "legacy"),
    };
    let mut security = vec!["name=seccomp,profile=builtin".to_string()];
    if setup == berth_cgroups::Setup::Unified {
        // As Docker on cgroup v2, containers get a private cgroup namespace by default.
        security.push("name=cgroupns".into());
    }
    let mut driver_status = vec![[
        "Backing Filesystem".to_string(),
        backing_filesystem(&engine.root),
    ]];
    let mut cgroup_driver = "cgroupfs";
    if berth_sys::rootless::is_rootless() {
        // As rootless Docker says it: the security option, and no cgroup driver without
        // delegation. The overlay is the kernel's, mounted in the user's namespace.
        security.push("name=rootless".into());
        driver_status.push(["Overlay".into(), crate::rootless::fuse::describe().into()]);
        if crate::rootless::without_cgroups() {
            cgroup_driver = "none";
        }
    }
    // berth-image's RegistryOptions: loopback always speaks plain HTTP, as in Docker.
    let mut insecure: Vec<String> = ["127.0.0.0/8", "::1/128", "localhost"]
        .map(String::from)
        .into();
    insecure.extend(insecure_registries.iter().cloned());
    let index_configs = insecure_registries
        .iter()
        .map(|r| {
            let config = serde_json::json!({"Name": r, "Secure": false, "Mirrors": []});
            (r.clone(), config)
        })
        .collect();
    let uts = nix::sys::utsname::uname().ok();
    let runtime = serde_json::json!({"path": "", "status": {"mode": "in-process"}});
    Ok(Info {
        id: String::new(),
        containers: running + paused + stopped,
        containers_running: running,
        containers_paused: paused,
        containers_stopped: stopped,
        images: images.len(),
        driver: "overlay2".into(),
        driver_status,
        cgroup_driver: cgroup_driver.into(),
        cgroup_version: cgroup_version.into(),
        cgroup_setup: setup_name.into(),
        runtimes: BTreeMap::from([(RUNTIME.to_string(), runtime)]),
        default_runtime: RUNTIME.into(),
        security_options: security,
        kernel_version: uts
            .as_ref()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        operating_system: operating_system(),
        os_type: std::env::consts::OS.into(),
        architecture: uts
            .as_ref()
            .map(|u| u.machine().to_string_lossy().into_owned())
            .unwrap_or_default(),
        ncpu: std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem_total: mem_total(),
        name: nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
        server_version: VERSION.into(),
        docker_root_dir: engine.root.display().to_string(),
        registry_config: RegistryConfig {
            insecure_registry_cidrs: vec!["127.0.0.0/8".into(), "::1/128".into()],
            index_configs,
            mirrors: registry
                .mirrors
                .iter()
                .map(|m| format!("http://{m}/"))
                .collect(),
        },
        insecure_registries: insecure,
        config_files: config_files
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        logging_driver: "json-file".into(),
        default_address_pools: engine
            .config
            .default_address_pools
            .iter()
            .map(|p| AddressPool {
                base: p.base.clone(),
                size: p.size,
            })
            .collect(),
        // Daemonless: containers outlive every berth command, as Docker's with live restore.
        live_restore_enabled: true,
        labels: Vec::new(),
        warnings: network_warnings(engine),
    })
}

/// A configured `bip` not in force yet: the default network keeps its address while
/// containers use it.
fn network_warnings(engine: &Engine) -> Vec<String> {
    let pending = crate::network::store(engine)
        .ok()
        .and_then(|store| store.default_pending());
    pending
        .map(|(wanted, now)| {
            format!(
                "the default network keeps {now} while containers use it; bip {wanted} applies once none does"
            )
        })
        .into_iter()
        .collect()
}

/// Containers by state, as Docker counts them: running (restarting counts), paused, stopped.
/// Each refreshed: the record says running until someone notices its monitor died.
fn container_counts(engine: &Engine) -> Result<[usize; 3]> {
    let mut counts = [0; 3];
    for record in crate::lifecycle::list(engine)?.records {
        let slot = match record.state.status {
            Status::Running | Status::Restarting => 0,
            Status::Paused => 1,
            _ => 2,
        };
        counts[slot] += 1;
    }
    Ok(counts)
}

/// Docker's name for the filesystem under the data root (graphdriver's FsNames).
fn backing_filesystem(root: &Path) -> String {
    let Ok(fs) = nix::sys::statfs::statfs(root) else {
        return "<unknown>".into();
    };
    #[allow(clippy::unnecessary_cast)] // the field's width differs between architectures
    let magic = fs.filesystem_type().0 as u64;
    match magic {
        0xEF53 => "extfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x794C_7630 => "overlayfs".into(),
        0x2FC1_2FC1 => "zfs".into(),
        0x6969 => "nfs".into(),
        0x6573_5546 => "fuse".into(),
        0x5346_544E => "ntfs".into(),
        other => format!("<unknown: 0x{other:x}>"),
    }
}

/// PRETTY_NAME from /etc/os-release, as Docker's OperatingSystem.
fn operating_system() -> String {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "<unknown>".into())
}

/// MemTotal of /proc/meminfo, in bytes.
pub fn mem_total() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
