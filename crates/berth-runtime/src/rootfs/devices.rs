//! /dev inside the container: device nodes (made with mknod, or bound from the host inside a
//! user namespace where mknod is refused), the standard symlinks, and /dev/null's identity check.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};

use super::resolve::{self, Leaf};
use crate::step::{Step, StepResult};

/// How many devices at the head of the plan's list are the defaults.
pub const DEFAULT_COUNT: usize = 6;

/// Makes the nodes of `devices`; the directory /dev, opened, when the last ones were made
/// there (for [`default_links`]). `dev` is /dev already opened in the root, if it is.
pub fn create_all(
    root: BorrowedFd<'_>,
    devices: &[LinuxDevice],
    in_userns: bool,
    dev: Option<OwnedFd>,
) -> StepResult<Option<OwnedFd>> {
    if in_userns {
        devices.iter().try_for_each(|d| bind(root, d))?;
        return Ok(dev);
    }
    // As runc: no umask while the nodes are made, so that each gets its mode exactly.
    let umask = nix::sys::stat::umask(Mode::empty());
    let made = make_nodes(root, devices, dev);
    nix::sys::stat::umask(umask);
    made
}

/// mknod is refused in a user namespace: the host's node is bound instead.
fn bind(root: BorrowedFd<'_>, d: &LinuxDevice) -> StepResult<()> {
    let path = d.path();
    let what = || format!("create device {}", path.display());
    kind(d).step(what)?;
    let target = resolve::create(root, path, Leaf::File).step(what)?;
    mount(
        Some(path),
        &resolve::fd_path(&target),
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .step(what)
}

fn kind(d: &LinuxDevice) -> Result<SFlag, String> {
    match d.typ() {
        LinuxDeviceType::C | LinuxDeviceType::U => Ok(SFlag::S_IFCHR),
        LinuxDeviceType::B => Ok(SFlag::S_IFBLK),
        LinuxDeviceType::P => Ok(SFlag::S_IFIFO),
        LinuxDeviceType::A => Err("device type \"a\" is only valid in cgroup rules".into()),
    }
}

/// The uid and gid a node was made with.
type Owner = (u32, u32);

/// mknod each node in its directory, which is resolved in the root once for a run of nodes
/// in the same one (all of /dev, usually); a node already there is replaced. A node is
/// chowned only when the owner mknod gave it (the process's, the directory's group if it is
/// setgid: the same for every node of the run, so looked at once) is not the one asked for:
/// the default devices are root's, and made by root.
fn make_nodes(
    root: BorrowedFd<'_>,
    devices: &[LinuxDevice],
    dev: Option<OwnedFd>,
) -> StepResult<Option<OwnedFd>> {
    let mut dir: Option<(&Path, OwnedFd, Option<Owner>)> =
        dev.map(|fd| (Path::new("/dev"), fd, None));
    for d in devices {
        let path = d.path();
        let what = || format!("create device {}", path.display());
        let kind = kind(d).step(what)?;
        let parent = path.parent().unwrap_or(Path::new("/dev"));
        let (_, dir, made_owner) = match dir.take() {
            Some((p, fd, owner)) if p == parent => dir.insert((p, fd, owner)),
            _ => dir.insert((
                parent,
                resolve::create(root, parent, Leaf::Dir).step(what)?,
                None,
            )),
        };
        let dir = dir.as_fd();
        let name = path.file_name().unwrap_or_default();
        let mode = Mode::from_bits_truncate(d.file_mode().unwrap_or(0o666));
        let dev = makedev(d.major() as u64, d.minor() as u64);
        match mknodat(dir, name, kind, mode, dev) {
            Err(nix::errno::Errno::EEXIST) => {
                nix::unistd::unlinkat(dir, name, nix::unistd::UnlinkatFlags::NoRemoveDir)
                    .step(what)?;
                mknodat(dir, name, kind, mode, dev).step(what)?;
            }
            made => made.step(what)?,
        }
        if d.uid().is_some() || d.gid().is_some() {
            let nofollow = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
            let (made_uid, made_gid) = match made_owner {
                Some(owner) => *owner,
                None => {
                    let st = nix::sys::stat::fstatat(dir, name, nofollow).step(what)?;
                    *made_owner.insert((st.st_uid, st.st_gid))
                }
            };
            if d.uid().is_some_and(|u| u != made_uid) || d.gid().is_some_and(|g| g != made_gid) {
                let uid = d.uid().map(nix::unistd::Uid::from_raw);
                let gid = d.gid().map(nix::unistd::Gid::from_raw);
                nix::unistd::fchownat(dir, name, uid, gid, nofollow).step(what)?;
            }
        }
    }
    Ok(dir.and_then(|(path, fd, _)| (path == Path::new("/dev")).then_some(fd)))
}

/// /dev/fd, stdin, stdout, stderr, ptmx and core, as every runtime makes them; in `dev`, /dev
/// as [`create_all`] left it open, else opened here.
pub fn default_links(root: BorrowedFd<'_>, dev: Option<OwnedFd>) -> StepResult<()> {
    let dev = match dev {
        Some(dev) => dev,
        None => resolve::open(root, Path::new("/dev"), nix::fcntl::OFlag::O_DIRECTORY)
            .step(|| "open /dev in the root".into())?,
    };
    for (target, name) in [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
        ("/proc/kcore", "core"),
    ] {
        let what = || format!("symlink /dev/{name}");
        match nix::unistd::symlinkat(target, dev.as_fd(), name) {
            Ok(()) => {}
            // ptmx must be the link to the container's own devpts, whatever was there.
            Err(nix::errno::Errno::EEXIST) if name == "ptmx" => {
                let file = nix::unistd::UnlinkatFlags::NoRemoveDir;
                nix::unistd::unlinkat(dev.as_fd(), name, file).step(what)?;
                nix::unistd::symlinkat(target, dev.as_fd(), name).step(what)?;
            }
            Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e).step(what),
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
