//! /dev inside the container: device nodes (made with mknod, or bound from the host inside a
//! user namespace where mknod is refused), the standard symlinks, and /dev/null's identity check.

use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::resolve::{self, Leaf};
use crate::step::{fail, Step, StepResult};

/// How many devices at the head of the plan's list are the defaults.
pub const DEFAULT_COUNT: usize = 6;

pub fn create_all(
    root: BorrowedFd<'_>,
    devices: &[LinuxDevice],
    in_userns: bool,
) -> StepResult<()> {
    for d in devices {
        create(root, d, in_userns)?;
    }
    Ok(())
}

fn create(root: BorrowedFd<'_>, d: &LinuxDevice, in_userns: bool) -> StepResult<()> {
    let path = d.path();
    let what = || format!("create device {}", path.display());
    let kind = match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
        LinuxDeviceType::B => SFlag::S_IFBLK,
        LinuxDeviceType::P => SFlag::S_IFIFO,
        LinuxDeviceType::A => {
            return fail(what(), "device type \"a\" is only valid in cgroup rules")
        }
    };
    if in_userns {
        // mknod is refused in a user namespace: bind the host's node instead.
        let target = resolve::create(root, path, Leaf::File).step(what)?;
        return mount(
            Some(path),
            &resolve::fd_path(&target),
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .step(what);
    }
    let parent = path.parent().unwrap_or(Path::new("/dev"));
    let dir = resolve::create(root, parent, Leaf::Dir).step(what)?;
    let dir = nix::fcntl::openat(
        dir.as_fd(),
        ".",
        nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .step(what)?;
    let name = path.file_name().unwrap_or_default();
    let _ = nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir);
    let mode = Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666));
    let dev = makedev(d.major() as u64, d.minor() as u64);
    mknodat(dir.as_fd(), name, kind, mode, dev).step(what)?;
    // mknod applies the umask: set the mode the spec asked for exactly.
    nix::sys::stat::fchmodat(
        dir.as_fd(),
        name,
        mode,
        nix::sys::stat::FchmodatFlags::NoFollowSymlink,
    )
    .step(what)?;
    let uid = d.uid().map(nix::unistd::Uid::from_raw);
    let gid = d.gid().map(nix::unistd::Gid::from_raw);
    nix::unistd::fchownat(
        dir.as_fd(),
        name,
        uid,
        gid,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .step(what)
}

/// /dev/fd, stdin, stdout, stderr, ptmx and core, as every runtime makes them.
pub fn default_links(root: BorrowedFd<'_>) -> StepResult<()> {
    let dev = resolve::open(root, Path::new("/dev"), nix::fcntl::OFlag::O_DIRECTORY)
        .step(|| "open /dev in the root".into())?;
    for (target, name) in [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
        ("/proc/kcore", "core"),
    ] {
        if name == "ptmx" {
            let _ =
                nix::unistd::unlinkat(dev.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir);
        }
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e).step(|| format!("symlink /dev/{name}")),
        }
    }
    Ok(())
}

/// /dev/null must be the real character device 1:3 before anything is masked with it: a
/// container image could have made it a symlink or a regular file (CVE-2025-31133).
pub fn check_dev_null() -> Result<(), String> {
    let meta = std::fs::symlink_metadata("/dev/null").map_err(|e| format!("/dev/null: {e}"))?;
    let is_char = meta.mode() & libc::S_IFMT == libc::S_IFCHR;
    let rdev = meta.rdev();
    if !is_char || nix::sys::stat::major(rdev) != 1 || nix::sys::stat::minor(rdev) != 3 {
        return Err(
            "/dev/null is not the null device (char 1:3): refusing to mask paths with it".into(),
        );
    }
    Ok(())
}
