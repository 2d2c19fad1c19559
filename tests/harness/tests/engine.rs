//! Black-box tests of `berth` (issue 4's "How it is shown"): the seed's lab, each run flag seen
//! from inside the container by the probe, Docker's defaults and exit codes, `-ti` through a
//! real pty, logs, exec, stop, restart policies, a killed monitor, many containers at once, and
//! failing creates that leave nothing behind.
//!
//! Needs root and `cargo build -p berth` beforehand; every test has its own data root
//! ([`Berth`]) whose drop removes every container and fails the test if a mount or cgroup is
//! left.

#[path = "engine/defaults.rs"]
mod defaults;
#[path = "engine/flags.rs"]
mod flags;
#[path = "engine/lab.rs"]
mod lab;
#[path = "engine/lifecycle.rs"]
mod lifecycle;
#[path = "engine/more_flags.rs"]
mod more_flags;
#[path = "engine/robustness.rs"]
mod robustness;
#[path = "engine/tty.rs"]
mod tty;

pub(crate) use berth_harness::{eventually, need_root, scaled, PATIENCE};
use std::fs;
use std::path::Path;

pub use berth_harness::monitors_of;
use serde_json::Value;

/// `run -d --name <name> --restart <policy> IMAGE sh -c <script>`: a container its restart
/// policy brings back; returns its id.
pub fn run_restarting(
    berth: &berth_harness::image::Berth,
    name: &str,
    policy: &str,
    script: &str,
) -> String {
    berth.ok(&[
        "run",
        "-d",
        "--name",
        name,
        "--restart",
        policy,
        berth_harness::image::IMAGE,
        "sh",
        "-c",
        script,
    ])
}

/// The namespace inode `kind` of `pid` ("self" for this process), from /proc/<pid>/ns.
pub fn ns_of(pid: &str, kind: &str) -> u64 {
    let link = fs::read_link(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{kind}: {e}"));
    let link = link.to_string_lossy();
    let inode = link
        .split_once(":[")
        .and_then(|(_, rest)| rest.strip_suffix(']'));
    inode
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected namespace link {link}"))
}

/// The probe's inode for namespace `kind`.
pub fn probe_ns(report: &Value, kind: &str) -> u64 {
    report["ns"][kind].as_u64().unwrap_or_else(|| {
        panic!(
            "no {kind} namespace in the probe's report: {}",
            report["ns"]
        )
    })
}

/// Whether the probe saw `entry` (`NAME=value`) in its environment.
pub fn has_env(report: &Value, entry: &str) -> bool {
    env_list(report).iter().any(|e| e == entry)
}

pub fn env_list(report: &Value) -> Vec<String> {
    report["env"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The value of the probe's `NAME` environment variable.
pub fn env_var(report: &Value, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    env_list(report)
        .into_iter()
        .find_map(|e| e.strip_prefix(&prefix).map(String::from))
}

/// The probe's mount at `mount_point`, if any (the last one there, which is the visible one).
pub fn mount_at<'a>(report: &'a Value, mount_point: &str) -> Option<&'a Value> {
    report["mounts"]
        .as_array()?
        .iter()
        .rfind(|m| m["mount_point"] == mount_point)
}

/// A capability mask (`CapEff` etc.) as a number.
pub fn cap_mask(report: &Value, set: &str) -> u64 {
    let hex = report["caps"][set]
        .as_str()
        .unwrap_or_else(|| panic!("no {set} in the probe's report"));
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{set} {hex}: {e}"))
}

/// Fields of /proc/<pid>/stat after the command name: [0] is the state, [1] the parent.
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(String::from).collect())
}

pub fn ppid(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// The command line of `pid`, NULs as spaces.
pub fn cmdline(pid: i32) -> String {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    String::from_utf8_lossy(&raw)
        .trim_end_matches('\0')
        .replace('\0', " ")
}

/// Every pid whose parent is `parent`.
pub fn children(parent: i32) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| ppid(pid) == Some(parent))
        .collect()
}

/// Whether `pid` exists and is not a zombie.
pub fn running(pid: i32) -> bool {
    stat_fields(pid).is_some_and(|f| f.first().map(String::as_str) != Some("Z"))
}

/// `inspect`'s State.Pid of a running container.
pub fn state_pid(inspect: &Value) -> i32 {
    inspect["State"]["Pid"]
        .as_i64()
        .and_then(|p| i32::try_from(p).ok())
        .filter(|&p| p > 0)
        .unwrap_or_else(|| panic!("no State.Pid: {}", inspect["State"]))
}

/// A temporary directory on the host, for bind mounts and files handed to berth.
pub fn host_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("berth-engine-host-")
        .tempdir()
        .expect("host temp dir")
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The leak check every test relies on must itself be able to fail.
#[test]
fn the_cleanup_check_sees_a_leftover_mount() {
    need_root!();
    let berth = berth_harness::image::Berth::new();
    let dir = berth.root().join("containers/leak");
    fs::create_dir_all(&dir).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "leak"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(mounted.success());
    let left = berth.clean();
    let unmounted = std::process::Command::new("umount")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(unmounted.success());
    assert!(
        left.iter().any(|l| l.contains("containers/leak")),
        "{left:?}"
    );
    assert!(berth.clean().is_empty());
}
