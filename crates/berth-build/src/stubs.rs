//! Mount points a RUN step's container needs and its image lacks: the runtime makes them in the
//! overlay (empty files and directories), and they must not end up in the layer. They are
//! removed after the step and their parent directories get their times back, as BuildKit's
//! stub cleaner does; a directory the removal left copied up but unchanged is pruned from the
//! upper directory before it becomes the layer.

use std::ffi::OsString;
use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, futimens, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{unlinkat, UnlinkatFlags};
use oci_spec::runtime::Spec;

use crate::fsops::Root;

/// The paths a step's mounts will create, and the times of the directories they go in.
pub struct Stubs {
    paths: Vec<PathBuf>,
    /// Each existing parent of a stub: (path, atime, mtime).
    parents: Vec<(PathBuf, TimeSpec, TimeSpec)>,
}

impl Stubs {
    /// Every missing component of every mount destination of `spec` in `rootfs`.
    pub fn find(rootfs: &Path, spec: &Spec) -> Stubs {
        let mut stubs = Stubs {
            paths: Vec::new(),
            parents: Vec::new(),
        };
        let Ok(root) = Root::open(rootfs) else {
            return stubs;
        };
        for m in spec.mounts().iter().flatten() {
            let mut path = PathBuf::from("/");
            let mut missing = false;
            for part in m.destination().components().skip(1) {
                let parent = path.clone();
                path.push(part);
                if missing || root.resolve(&path, OFlag::O_PATH).is_ok() {
                    if missing && !stubs.paths.contains(&path) {
                        stubs.paths.push(path.clone());
                    }
                    continue;
                }
                missing = true;
                stubs.paths.push(path.clone());
                if stubs.parents.iter().all(|(p, _, _)| p != &parent) {
                    if let Ok(fd) = root.resolve(&parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
                        if let Ok(st) = fstat(&fd) {
                            let atime = TimeSpec::new(st.st_atime, st.st_atime_nsec);
                            let mtime = TimeSpec::new(st.st_mtime, st.st_mtime_nsec);
                            stubs.parents.push((parent, atime, mtime));
                        }
                    }
                }
            }
        }
        stubs
    }

    /// Removes the stubs that are still empty (deepest first), resolved inside the root (the
    /// step may have put a link where a stub's parent was), then restores their parents' times.
    pub fn remove(&self, rootfs: &Path) {
        let Ok(root) = Root::open(rootfs) else {
            return;
        };
        let mut paths = self.paths.clone();
        paths.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for stub in paths {
            let (Some(parent), Some(name)) = (stub.parent(), stub.file_name()) else {
                continue;
            };
            let Ok(dir) = root.resolve(parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY) else {
                continue;
            };
            let Ok(st) = fstatat(&dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            if kind == SFlag::S_IFDIR {
                let _ = unlinkat(&dir, name, UnlinkatFlags::RemoveDir);
            } else if kind == SFlag::S_IFREG && st.st_size == 0 {
                let _ = unlinkat(&dir, name, UnlinkatFlags::NoRemoveDir);
            }
        }
        for (parent, atime, mtime) in &self.parents {
            if let Ok(fd) = root.resolve(parent, OFlag::O_RDONLY | OFlag::O_DIRECTORY) {
                let _ = futimens(fd.as_fd(), atime, mtime);
            }
        }
    }
}

/// Removes from `upper` the directories that hold nothing and are as the lower layers (top
/// first) have them: copied up by a change that was undone, they would only add a line to
/// the layer. A directory with an opaque mark, a whiteout or any entry stays.
pub fn prune_unchanged(upper: &Path, lowers: &[PathBuf]) {
    prune_dir(upper, Path::new(""), lowers);
}

/// Prunes below `dir` (at `rel` in the image); whether `dir` is now empty.
fn prune_dir(dir: &Path, rel: &Path, lowers: &[PathBuf]) -> bool {
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    let names: Vec<OsString> = entries.flatten().map(|e| e.file_name()).collect();
    let mut left = names.len();
    for name in names {
        let path = dir.join(&name);
        let rel = rel.join(&name);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || !prune_dir(&path, &rel, lowers) || is_opaque(&path) {
            continue;
        }
        let lower = lowers
            .iter()
            .find_map(|l| fs::symlink_metadata(l.join(&rel)).ok());
        let same = lower.is_some_and(|l| {
            l.is_dir()
                && (l.mode(), l.uid(), l.gid(), l.mtime(), l.mtime_nsec())
                    == (
                        meta.mode(),
                        meta.uid(),
                        meta.gid(),
                        meta.mtime(),
                        meta.mtime_nsec(),
                    )
        });
        if same && fs::remove_dir(&path).is_ok() {
            left -= 1;
        }
    }
    left == 0
}

fn is_opaque(path: &Path) -> bool {
    let mut value = [0u8; 4];
    rustix::fs::lgetxattr(
        path,
        berth_sys::rootless::overlay_xattr("opaque").as_str(),
        &mut value,
    )
    .is_ok()
}
