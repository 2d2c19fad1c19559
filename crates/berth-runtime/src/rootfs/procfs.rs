//! /proc in the container is the kernel's procfs, and nothing is mounted inside it but the few
//! files runc allows (lxcfs's): a mount over `/proc/self/attr` or `/proc/sys/...` would let a
//! bundle (or an image's symlink) defeat AppArmor or sysctl writes (CVE-2019-16884 class).
//! The destination is checked as written, in the plan, and as resolved in the root, at mount
//! time, since a symlink in the root may lead into /proc.

use std::os::fd::AsFd;
use std::path::{Component, Path, PathBuf};

/// What runc lets be mounted inside /proc (the files lxcfs emulates).
const ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
    "/proc/sys/crypto",
];

/// `path` with `.` and `..` resolved lexically, as a path in the container's root (where `..`
/// at the top stays at `/`).
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}

/// Checks a mount's destination as written: nothing inside /proc but the allowed files, and
/// on /proc itself only procfs or a bind (whose source is checked at mount time).
pub fn check_destination(dest: &Path, fstype: &str, is_bind: bool) -> Result<(), String> {
    let dest = clean(dest);
    if dest == Path::new("/proc") {
        return if fstype == "proc" || is_bind {
            Ok(())
        } else {
            Err(format!(
                "{:?} cannot be mounted because it is not of type proc",
                dest
            ))
        };
    }
    if dest.starts_with("/proc") && !ALLOWED.iter().any(|a| dest == Path::new(a)) {
        return Err(format!(
            "{:?} cannot be mounted because it is inside /proc",
            dest
        ));
    }
    Ok(())
}

/// True if `fd` is on a procfs.
pub fn is_procfs(fd: impl AsFd) -> std::io::Result<bool> {
    let st = nix::sys::statfs::fstatfs(fd)?;
    Ok(st.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC)
}

/// Checks a mount's destination as resolved in the root (`target`, the mount point opened):
/// a destination not itself inside /proc must not land in a procfs through a symlink.
pub fn check_resolved(dest: &Path, target: impl AsFd) -> Result<(), String> {
    let logical = clean(dest);
    if logical.starts_with("/proc") {
        return Ok(()); // checked as written
    }
    match is_procfs(target) {
        Ok(false) => Ok(()),
        Ok(true) => Err(format!(
            "{:?} cannot be mounted because it resolves inside /proc",
            dest
        )),
        Err(e) => Err(format!("statfs of mount point {}: {e}", dest.display())),
    }
}

/// What is right below the container's /proc, listed once (one getdents where the masked and
/// read-only paths, most of them there, each cost a mount that failed with ENOENT on a kernel
/// without them, or ENOTDIR for a directory): by name, whether a directory.
pub struct Entries(Option<Vec<(std::ffi::OsString, bool)>>);

impl Entries {
    /// Listed when enough paths are below /proc for the listing to pay (it costs about four
    /// syscalls); a listing that fails leaves every path to be tried.
    pub fn list(plan: &crate::plan::InitPlan) -> Self {
        let below = plan
            .readonly_paths
            .iter()
            .chain(&plan.masked_paths)
            .filter(|p| Self::name(p).is_some())
            .count();
        if below < 6 {
            return Self(None);
        }
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Self(None);
        };
        let entries = dir
            .map(|e| e.map(|e| (e.file_name(), e.file_type().is_ok_and(|t| t.is_dir()))))
            .collect::<Result<Vec<_>, _>>();
        Self(entries.ok())
    }

    /// The first component of `path` below /proc, for a path that is below it.
    fn name(path: &Path) -> Option<&std::ffi::OsStr> {
        let mut rest = path.strip_prefix("/proc").ok()?.components();
        match rest.next()? {
            std::path::Component::Normal(name) => Some(name),
            _ => None,
        }
    }

    /// Whether the entry of /proc that `path` is in (or is) is there; `None`: not known.
    pub fn has(&self, path: &Path) -> Option<bool> {
        let name = Self::name(path)?;
        Some(self.0.as_ref()?.iter().any(|(n, _)| n == name))
    }

    /// True when `path` is itself an entry of /proc, and a directory.
    pub fn is_dir(&self, path: &Path) -> bool {
        let (Some(name), Some(entries)) = (Self::name(path), &self.0) else {
            return false;
        };
        path.parent() == Some(Path::new("/proc"))
            && entries.iter().any(|(n, dir)| n == name && *dir)
    }
}

/// A bind mount onto /proc itself: its source must be the root of a procfs, as runc demands.
pub fn check_bind_source(src: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let refuse =
        || format!("{src:?} cannot be bind mounted on /proc: it is not the root of a procfs");
    let dir = std::fs::File::open(src).map_err(|e| format!("open {}: {e}", src.display()))?;
    let meta = dir
        .metadata()
        .map_err(|e| format!("stat {}: {e}", src.display()))?;
    // procfs's root directory has inode 1.
    if !is_procfs(&dir).map_err(|e| format!("statfs {}: {e}", src.display()))? || meta.ino() != 1 {
        return Err(refuse());
    }
    Ok(())
}

/// After the mounts: the root's /proc, if it has one, is a procfs (nothing stacked a tmpfs or
/// a bind of some directory over it), before anything writes to files under it.
pub fn check_mounted(root: std::os::fd::BorrowedFd<'_>) -> Result<(), String> {
    let proc = match super::resolve::open(root, Path::new("/proc"), nix::fcntl::OFlag::O_PATH) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(format!("open /proc in the root: {e}")),
    };
    match is_procfs(&proc) {
        Ok(true) => Ok(()),
        Ok(false) => Err("/proc in the container is not a procfs: refusing to go on".into()),
        Err(e) => Err(format!("statfs of /proc in the root: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_inside_proc_are_refused_but_runcs_list() {
        for bad in [
            "/proc/self/attr",
            "/proc/self/attr/exec",
            "/proc/sys",
            "/proc/sys/kernel/core_pattern",
            "/x/../proc/self",
            "/proc/./1",
        ] {
            assert!(
                check_destination(Path::new(bad), "bind", true).is_err(),
                "{bad}"
            );
        }
        for good in [
            "/proc/cpuinfo",
            "/proc/sys/crypto",
            "/procfoo",
            "/data",
            "/proc/../etc",
        ] {
            assert!(
                check_destination(Path::new(good), "bind", true).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn only_procfs_or_a_bind_goes_on_proc() {
        assert!(check_destination(Path::new("/proc"), "proc", false).is_ok());
        assert!(check_destination(Path::new("/proc/"), "bind", true).is_ok());
        assert!(check_destination(Path::new("/proc"), "tmpfs", false).is_err());
    }

    #[test]
    fn a_listing_of_proc_says_which_paths_are_there() {
        let entries = Entries(Some(vec![
            ("acpi".into(), true),
            ("keys".into(), false),
            ("sys".into(), true),
        ]));
        assert_eq!(entries.has(Path::new("/proc/keys")), Some(true));
        assert_eq!(entries.has(Path::new("/proc/kcore")), Some(false));
        assert_eq!(entries.has(Path::new("/proc/sys/kernel")), Some(true));
        assert_eq!(entries.has(Path::new("/proc/asound/card0")), Some(false));
        // Not below /proc, or no listing: not known, tried.
        assert_eq!(entries.has(Path::new("/sys/firmware")), None);
        assert_eq!(Entries(None).has(Path::new("/proc/keys")), None);
        assert!(entries.is_dir(Path::new("/proc/acpi")));
        assert!(!entries.is_dir(Path::new("/proc/keys")));
        assert!(!entries.is_dir(Path::new("/proc/sys/kernel")));
    }

    #[test]
    fn the_hosts_proc_is_procfs_and_a_directory_is_not() {
        assert!(check_bind_source(Path::new("/proc")).is_ok());
        assert!(check_bind_source(Path::new("/proc/self")).is_err());
        assert!(check_bind_source(Path::new("/tmp")).is_err());
    }
}
