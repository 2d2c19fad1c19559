//! Mount points made right below a tmpfs the container's mounts just made.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// The tmpfs mounts made so far that nothing has been mounted on or above since: empty but
/// for the directories made in them for the mounts below (/dev, then /dev/pts, /dev/shm and
/// /dev/mqueue). A mount point right below one is made there directly: nothing in it can be a
/// symbolic link or a procfs, so the resolve in the root and the procfs check of a mount point
/// are not needed (four syscalls of eight, for each of those three mounts).
#[derive(Default)]
pub(super) struct FreshTmpfs {
    /// Each tmpfs by its destination (as in the container, cleaned), and its root once opened.
    mounts: Vec<(PathBuf, Option<OwnedFd>)>,
}

impl FreshTmpfs {
    pub(super) fn covered_by(&mut self, dest: &Path) {
        self.mounts.retain(|(path, _)| !path.starts_with(dest));
    }

    /// The root of the fresh tmpfs at `dest`, if it was opened (a mount point was made in it).
    pub(super) fn take(&mut self, dest: &Path) -> Option<OwnedFd> {
        let (_, fd) = self.mounts.iter_mut().find(|(p, _)| p == dest)?;
        fd.take()
    }

    pub(super) fn mounted(&mut self, dest: PathBuf) {
        self.mounts.push((dest, None));
    }

    /// A new directory for `dest` (cleaned) right below a fresh tmpfs, opened O_PATH; `None`
    /// when `dest` is not right below one or the name is taken (the usual way then).
    pub(super) fn make_dir(
        &mut self,
        root: std::os::fd::BorrowedFd<'_>,
        dest: &Path,
    ) -> Option<OwnedFd> {
        let (parent, name) = (dest.parent()?, dest.file_name()?);
        let (_, fd) = self.mounts.iter_mut().find(|(p, _)| p == parent)?;
        if fd.is_none() {
            *fd = Some(super::mounted_path(root, parent).ok()?);
        }
        let dir = fd.as_ref()?.as_fd();
        nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o755)).ok()?;
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        nix::fcntl::openat(dir, name, flags, Mode::empty()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_on_or_above_a_fresh_tmpfs_covers_it() {
        let mut fresh = FreshTmpfs::default();
        fresh.mounted(PathBuf::from("/dev"));
        fresh.mounted(PathBuf::from("/run"));
        fresh.covered_by(Path::new("/dev/pts"));
        assert_eq!(fresh.mounts.len(), 2, "a mount below leaves /dev fresh");
        fresh.covered_by(Path::new("/"));
        assert!(fresh.mounts.is_empty());
    }
}
