//! Bind sources of a container in a user namespace, opened by the runtime on the host side.
//! Inside its user namespace the container's root may not reach them (a source below a
//! directory only the host's root can search): runc opens them from outside, in the
//! container's mount namespace, and the init mounts them from /proc/self/fd. So does berth.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::resolve;
use crate::plan::InitPlan;

/// The most descriptors one message carries (the kernel's SCM_MAX_FD); the mounts past them
/// are left to the init's own lookup.
const MAX: usize = 253;

/// Descriptors of bind sources, by index of the plan's mounts.
#[derive(Debug, Default)]
pub struct MountSources(Vec<(usize, OwnedFd)>);

impl MountSources {
    /// What a peer sent: `mounts` indexes, one descriptor each, in order.
    pub fn new(mounts: Vec<usize>, fds: Vec<OwnedFd>) -> MountSources {
        MountSources(mounts.into_iter().zip(fds).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The indexes and descriptors, to send.
    pub fn parts(&self) -> (Vec<usize>, Vec<BorrowedFd<'_>>) {
        self.0.iter().map(|(i, fd)| (*i, fd.as_fd())).unzip()
    }

    /// The path the mount of index `i` binds from: its descriptor's, if there is one.
    pub fn path(&self, i: usize) -> Option<PathBuf> {
        self.0
            .iter()
            .find(|(at, _)| *at == i)
            .map(|(_, fd)| resolve::fd_path(fd))
    }
}

/// Opens, as the init's mount namespace sees them, the bind sources of a container in a user
/// namespace: through /proc/PID/root of the init (so each descriptor is a mount of that
/// namespace, which a bind mount needs), with symbolic links resolved in that root as the
/// init would. A source that cannot be opened here is left to the init, which reports it.
pub fn open(plan: &InitPlan, init: i32) -> MountSources {
    if !plan.in_user_ns() || !plan.has_mount_ns() {
        return MountSources::default();
    }
    let root = format!("/proc/{init}/root");
    let Ok(root) = nix::fcntl::open(
        Path::new(&root),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return MountSources::default();
    };
    let mut out = Vec::new();
    for (i, m) in plan.mounts.iter().enumerate() {
        let Some(source) = m.source.as_deref().filter(|_| m.is_bind()) else {
            continue;
        };
        if out.len() == MAX {
            break;
        }
        if let Ok(fd) = resolve::open(root.as_fd(), source, OFlag::O_PATH) {
            out.push((i, fd));
        }
    }
    MountSources(out)
}
