//! `berth info` (and `system info`): what `docker info` tells, read from the engine's records,
//! the image store and the host (cgroups, kernel, os-release), or rendered by `--format`
//! over Docker's `system.Info` field names.

use std::path::Path;

use anyhow::{Context as _, Result};
use berth_cgroups::Setup;
use berth_engine::records::Status;
use clap::Args;
use serde_json::{json, Value};

use super::version::{kernel_version, VERSION};
use super::Context;
use crate::format::{bytes_size, print_formatted};

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Format output using a Go template ("{{.Containers}}", "{{json .}}")
    #[arg(short, long)]
    pub format: Option<String>,
}

/// Where the cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The runtime's name, as `Runtimes` and `Default Runtime` show it.
const RUNTIME: &str = "berth-runtime";

pub fn run(ctx: &Context, args: InfoArgs) -> Result<()> {
    let data = info_json(ctx)?;
    print_formatted(args.format.as_deref(), &data, text)
}

/// Containers by state, as Docker counts them: paused, running (restarting counts), stopped.
fn container_counts(ctx: &Context) -> Result<[usize; 3]> {
    let engine = ctx.engine()?;
    let mut counts = [0; 3];
    // The record says running until someone notices its monitor died: refreshed.
    for record in super::listed(berth_engine::lifecycle::list(&engine)?) {
        let slot = match record.state.status {
            Status::Running | Status::Restarting => 0,
            Status::Paused => 1,
            _ => 2,
        };
        counts[slot] += 1;
    }
    Ok(counts)
}

/// Docker's `system.Info` with the fields berth has an answer for.
fn info_json(ctx: &Context) -> Result<Value> {
    let [running, paused, stopped] = container_counts(ctx)?;
    let store = ctx.store()?;
    let images: std::collections::HashSet<_> =
        store.images()?.iter().map(|i| i.id().clone()).collect();
    let root = &ctx.global.root;
    let setup = berth_cgroups::detect(Path::new(CGROUP_ROOT))
        .with_context(|| format!("detect the cgroup setup under {CGROUP_ROOT}"))?;
    let (cgroup_version, setup_name) = match setup {
        Setup::Unified => ("2", "unified"),
        Setup::Hybrid => ("1", "hybrid"),
        Setup::Legacy => ("1", "legacy"),
    };
    let mut security = vec!["name=seccomp,profile=builtin".to_string()];
    if setup == Setup::Unified {
        // As Docker on cgroup v2, containers get a private cgroup namespace by default.
        security.push("name=cgroupns".into());
    }
    // berth-image's RegistryOptions: loopback always speaks plain HTTP, as in Docker.
    let mut insecure: Vec<String> = ["127.0.0.0/8", "::1/128", "localhost"]
        .map(String::from)
        .into();
    insecure.extend(ctx.global.insecure_registries.iter().cloned());
    let index_configs: serde_json::Map<String, Value> = ctx
        .global
        .insecure_registries
        .iter()
        .map(|r| {
            (
                r.clone(),
                json!({"Name": r, "Secure": false, "Mirrors": []}),
            )
        })
        .collect();
    let uts = nix::sys::utsname::uname().ok();
    Ok(json!({
        "ID": "",
        "Containers": running + paused + stopped,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images.len(),
        "Driver": "overlay2",
        "DriverStatus": [["Backing Filesystem", backing_filesystem(root)]],
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "CgroupSetup": setup_name,
        "Runtimes": {RUNTIME: {"path": "", "status": {"mode": "in-process"}}},
        "DefaultRuntime": RUNTIME,
        "SecurityOptions": security,
        "KernelVersion": kernel_version(),
        "OperatingSystem": operating_system(),
        "OSType": std::env::consts::OS,
        "Architecture": uts.as_ref().map(|u| u.machine().to_string_lossy().into_owned()),
        "NCPU": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "MemTotal": mem_total(),
        "Name": nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
        "ServerVersion": VERSION,
        "DockerRootDir": root.display().to_string(),
        "RegistryConfig": {
            "InsecureRegistryCIDRs": ["127.0.0.0/8", "::1/128"],
            "IndexConfigs": index_configs,
        },
        "InsecureRegistries": insecure,
        "LoggingDriver": "json-file",
        "LiveRestoreEnabled": true,
        "Labels": [],
        "Warnings": [],
    }))
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
fn mem_total() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The text form, laid out as `docker info` prints its Client and Server sections.
fn text(v: &Value) -> String {
    let s = |x: &Value| match x {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut out = format!(
        "Client:\n Version:    {VERSION}\n Context:    default\n Debug Mode: false\n\nServer:\n"
    );
    let mut line = |indent: usize, text: String| out += &format!("{:indent$}{text}\n", "");
    line(1, format!("Containers: {}", s(&v["Containers"])));
    line(2, format!("Running: {}", s(&v["ContainersRunning"])));
    line(2, format!("Paused: {}", s(&v["ContainersPaused"])));
    line(2, format!("Stopped: {}", s(&v["ContainersStopped"])));
    line(1, format!("Images: {}", s(&v["Images"])));
    line(1, format!("Server Version: {}", s(&v["ServerVersion"])));
    line(1, format!("Storage Driver: {}", s(&v["Driver"])));
    for pair in v["DriverStatus"].as_array().into_iter().flatten() {
        line(2, format!("{}: {}", s(&pair[0]), s(&pair[1])));
    }
    line(1, format!("Logging Driver: {}", s(&v["LoggingDriver"])));
    line(1, format!("Cgroup Driver: {}", s(&v["CgroupDriver"])));
    let cgroup = match s(&v["CgroupSetup"]).as_str() {
        "hybrid" => format!(
            "{} (hybrid: v1 controllers, cgroup2 unified hierarchy at {CGROUP_ROOT}/unified)",
            s(&v["CgroupVersion"])
        ),
        _ => s(&v["CgroupVersion"]),
    };
    line(1, format!("Cgroup Version: {cgroup}"));
    line(1, format!("Runtimes: {RUNTIME} (in-process)"));
    line(1, format!("Default Runtime: {}", s(&v["DefaultRuntime"])));
    line(1, "Security Options:".into());
    for option in v["SecurityOptions"].as_array().into_iter().flatten() {
        let option = s(option);
        let mut parts = option.split(',');
        line(
            2,
            parts
                .next()
                .unwrap_or("")
                .trim_start_matches("name=")
                .into(),
        );
        for part in parts {
            if let Some((k, val)) = part.split_once('=') {
                line(3, format!("{}{}: {val}", k[..1].to_uppercase(), &k[1..]));
            }
        }
    }
    line(1, format!("Kernel Version: {}", s(&v["KernelVersion"])));
    line(1, format!("Operating System: {}", s(&v["OperatingSystem"])));
    line(1, format!("OSType: {}", s(&v["OSType"])));
    line(1, format!("Architecture: {}", s(&v["Architecture"])));
    line(1, format!("CPUs: {}", s(&v["NCPU"])));
    let mem = bytes_size(v["MemTotal"].as_u64().unwrap_or(0));
    line(1, format!("Total Memory: {mem}"));
    line(1, format!("Name: {}", s(&v["Name"])));
    line(1, format!("Docker Root Dir: {}", s(&v["DockerRootDir"])));
    line(1, "Debug Mode: false".into());
    line(1, "Experimental: false".into());
    line(1, "Insecure Registries:".into());
    for registry in v["InsecureRegistries"].as_array().into_iter().flatten() {
        line(2, s(registry));
    }
    // Daemonless: containers outlive every berth command, as Docker's with live restore.
    line(1, "Live Restore Enabled: true".into());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_printed_in_binary_units_with_four_digits() {
        assert_eq!(bytes_size(8_345_000_000), "7.772GiB");
        assert_eq!(bytes_size(512 * 1024 * 1024), "512MiB");
        assert_eq!(bytes_size(1023), "1023B");
        assert_eq!(bytes_size(16_741_462_016), "15.59GiB");
    }
}
