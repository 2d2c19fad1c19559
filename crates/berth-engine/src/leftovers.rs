//! What the system may still hold for a container id when its record cannot tell (lost,
//! corrupt, or behind a monitor that died): the cgroups the engine derives from the id, and
//! the mounts under the container's directory as the kernel lists them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::mount::MntFlags;

use crate::engine::Engine;

/// SIGKILL to every process in the container's cgroups, whatever the runtime's state says (its
/// init may be gone while others live on).
pub fn kill_cgroup(id: &str) {
    use berth_runtime::cgroup::CgroupManager;
    let relative = PathBuf::from(Engine::cgroups_path(id));
    if let Ok(cg) = berth_runtime::cgroup::open(&relative) {
        let _ = cg.kill_all(berth_sys::signal::SignalNumber::KILL);
    }
}

/// Whether the container's cgroups are gone (never made, or removed): nothing of it can run.
/// False when they cannot be looked at.
pub fn cgroup_gone(id: &str) -> bool {
    use berth_runtime::cgroup::CgroupManager;
    let relative = PathBuf::from(Engine::cgroups_path(id));
    berth_runtime::cgroup::open(&relative).is_ok_and(|cg| cg.pids().is_err())
}

/// Kills and removes the container's cgroups (`berth/<id>` in every hierarchy), which the
/// runtime's delete leaves when its own state of the container is gone.
pub fn cgroups(id: &str) -> Vec<String> {
    use berth_runtime::cgroup::CgroupManager;
    let relative = PathBuf::from(Engine::cgroups_path(id));
    let cg = match berth_runtime::cgroup::open(&relative) {
        Ok(cg) => cg,
        Err(e) => return vec![e.to_string()],
    };
    // Never made, or removed already: nothing to do (and nothing to read pids from).
    if cg.pids().is_err() {
        return Vec::new();
    }
    let wait = berth_runtime::cgroup::kill_and_wait_empty(&cg, &relative, Duration::from_secs(10));
    match wait.and_then(|()| Ok(cg.destroy()?)) {
        Ok(()) => Vec::new(),
        Err(e) => vec![e.to_string()],
    }
}

/// Unmounts everything mounted at or under `dir`, deepest first: the root and /dev/shm the
/// monitor mounted, and anything else found there.
pub fn unmount_under(dir: &Path) -> Vec<String> {
    let text = match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(t) => t,
        Err(e) => return vec![format!("read /proc/self/mountinfo: {e}")],
    };
    let mut points = mounts_under(&text, dir);
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    points.dedup();
    let mut errors = Vec::new();
    for p in points {
        match nix::mount::umount2(&p, MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => errors.push(format!("unmount {}: {e}", p.display())),
        }
    }
    errors
}

/// Whether something is mounted at `path` itself.
pub(crate) fn is_mount_point(path: &Path) -> bool {
    std::fs::read_to_string("/proc/self/mountinfo")
        .is_ok_and(|text| mounts_under(&text, path).iter().any(|p| p == path))
}

/// The mount points of mountinfo `text` at or under `dir`.
fn mounts_under(text: &str, dir: &Path) -> Vec<PathBuf> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// mountinfo's octal escapes (`\040` for a space, `\134` for a backslash...).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                let n = d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(n).unwrap_or(b'?'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_under_a_directory_with_escapes() {
        let text = "36 25 0:32 / /data/my\\040root/c/rootfs rw - overlay overlay rw\n\
                    37 25 0:33 / /data/my\\040root/c2/rootfs rw - overlay overlay rw\n\
                    38 36 0:34 / /data/my\\040root/c/shm rw - tmpfs shm rw\n";
        let found = mounts_under(text, Path::new("/data/my root/c"));
        assert_eq!(
            found,
            [
                PathBuf::from("/data/my root/c/rootfs"),
                PathBuf::from("/data/my root/c/shm")
            ]
        );
    }
}
