//! What a pod may leave behind once the CRI has removed it, counted (processes, mounts,
//! cgroups, runtime state directories), and the last-resort cleanup of each.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Cri;
use crate::clients::Teardown;

/// Everything found left over, each entry naming what it is.
#[derive(Debug, Default)]
pub struct Leaks {
    pub processes: Vec<String>,
    pub mounts: Vec<String>,
    pub cgroups: Vec<String>,
    pub state: Vec<String>,
}

impl Leaks {
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
            && self.mounts.is_empty()
            && self.cgroups.is_empty()
            && self.state.is_empty()
    }

    /// One line of counts, for the soak's report.
    pub fn counts(&self) -> String {
        format!(
            "processes {}, mounts {}, cgroups {}, state dirs {}",
            self.processes.len(),
            self.mounts.len(),
            self.cgroups.len(),
            self.state.len()
        )
    }
}

/// With no pod left in the CRI: any process in our cgroups or naming our directory (other than
/// containerd), any mount under our directory, any cgroup below a pod's, any container state
/// left in either runtime's root.
pub fn find(cri: &Cri) -> Leaks {
    let root = cri.cgroup_root();
    let dir = cri.dir().to_string_lossy().into_owned();
    let daemon = cri.daemon_pid().to_string();
    let mut leaks = Leaks::default();
    for pid in pids() {
        if pid == daemon || pid == std::process::id().to_string() {
            continue;
        }
        let proc = Path::new("/proc").join(&pid);
        let cgroup = fs::read_to_string(proc.join("cgroup")).unwrap_or_default();
        let cmdline = fs::read(proc.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cgroup.contains(&format!("{root}/")) || cmdline.contains(&dir) {
            leaks
                .processes
                .push(format!("{pid}: {}", cmdline.trim_end()));
        }
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for point in mountinfo.lines().filter_map(|l| l.split(' ').nth(4)) {
        if point.starts_with(&dir) {
            leaks.mounts.push(point.to_string());
        }
    }
    for hierarchy in hierarchies() {
        // <hierarchy>/<root>/<pod>/<container or sandbox>: only the pods' parents may stay
        // (the kubelet owns and removes them, as here the teardown does).
        for pod in subdirs(&hierarchy.join(root.trim_start_matches('/'))) {
            for left in subdirs(&pod) {
                leaks.cgroups.push(left.display().to_string());
            }
        }
    }
    for handler in ["berth", "runc"] {
        for id in subdirs(&cri.runtime_state_root(handler)) {
            leaks.state.push(id.display().to_string());
        }
    }
    leaks
}

fn pids() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .collect()
}

/// Every cgroup hierarchy mounted under /sys/fs/cgroup (v1 controllers and the unified one), or
/// /sys/fs/cgroup itself on a v2-only host.
fn hierarchies() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.controllers").exists() {
        return vec![base.to_owned()];
    }
    subdirs(base)
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir() && !t.is_symlink()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

/// `delete --force` of every container the handler's runtime still has state for.
pub fn force_delete_all(cri: &Cri, handler: &str, teardown: &mut Teardown) {
    let root = cri.runtime_state_root(handler);
    for id in subdirs(&root) {
        let id = id.file_name().unwrap_or_default().to_owned();
        println!(
            "teardown: {handler}: delete --force {}",
            id.to_string_lossy()
        );
        let mut delete = Command::new(cri.runtime_binary(handler));
        delete
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force"])
            .arg(&id);
        if !teardown.quiet(&mut delete) {
            teardown.note(format!(
                "{handler} delete --force {} failed",
                id.to_string_lossy()
            ));
        }
    }
}

/// Removes the cgroup tree at `root` in every hierarchy, deepest first.
pub fn remove_cgroups(root: &str, teardown: &mut Teardown) {
    for hierarchy in hierarchies() {
        remove_tree(&hierarchy.join(root.trim_start_matches('/')), teardown);
    }
}

fn remove_tree(dir: &Path, teardown: &mut Teardown) {
    if !dir.is_dir() {
        return;
    }
    for child in subdirs(dir) {
        remove_tree(&child, teardown);
    }
    if let Err(e) = fs::remove_dir(dir) {
        teardown.note(format!("rmdir {}: {e}", dir.display()));
    }
}
