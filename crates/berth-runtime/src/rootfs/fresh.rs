//! Mount points made right below a tmpfs the container's mounts just made.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
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
    /// The root's path as the runtime sees it, once read (for [`FreshTmpfs::resolved`]).
    root_path: Option<PathBuf>,
}

impl FreshTmpfs {
    pub(super) fn covered_by(&mut self, dest: &Path) {
        self.mounts.retain(|(path, _)| !path.starts_with(dest));
    }

    /// A mount point `target` found by resolving `dest` (cleaned) in the root, the usual way.
    /// A symbolic link on the way (in the image, or in a volume mounted before) can make it a
    /// fresh tmpfs, or a directory above one, whatever `dest` says: then the mount about to be
    /// made there covers what [`FreshTmpfs::covered_by`] cannot tell from the path, and no
    /// tmpfs is counted fresh any more (the device nodes go where /dev resolves, as under runc,
    /// not into a tmpfs hidden below a volume). One readlink, only while a tmpfs is fresh.
    pub(super) fn resolved(&mut self, root: BorrowedFd<'_>, dest: &Path, target: &OwnedFd) {
        if self.mounts.is_empty() {
            return;
        }
        if self.root_path.is_none() {
            self.root_path = std::fs::read_link(super::resolve::fd_path(&root)).ok();
        }
        let Some(root_path) = &self.root_path else {
            self.mounts.clear();
            return;
        };
        let rel = dest.strip_prefix("/").unwrap_or(dest);
        let expected = root_path.join(rel);
        match std::fs::read_link(super::resolve::fd_path(target)) {
            Ok(path) if path == expected => {}
            _ => self.mounts.clear(),
        }
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
    pub(super) fn make_dir(&mut self, root: BorrowedFd<'_>, dest: &Path) -> Option<OwnedFd> {
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
