//! The image's init layer (berth-image's `store::init`), learned from the root of its first
//! container: the mount points every container gets (/proc, /dev, /sys; the /etc files Docker
//! binds) that the image lacks. Without it each start makes them in the container's upper
//! directory (three directories, /etc copied up and three files in it, all freed again at the
//! removal: 3 to 6% of a `run --rm` here, bench/README.md's eighteenth pass); with it a container
//! that writes nothing leaves its upper directory empty, as Docker's init layer does.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use berth_image::store::{InitEntry, InitKind, InitLayer, Store};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;

/// The directories at the root that the runtime mounts on (proc, the /dev tmpfs, sysfs).
const ROOT_DIRS: [&str; 3] = ["proc", "dev", "sys"];
/// The files in /etc that the engine binds its own over (`bundle::write_etc_files`).
const ETC_FILES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];

/// Stores the init layer of the image `image_id` (the record's `sha256:...`), if the store
/// does not know it yet, from `root`, the image's layers just mounted with the container's
/// upper directory `upper`, before anything ran in it. Only when `upper` is empty: then `root` shows the image as it is (a container restarted, or written into by
/// `cp` before its start, could hide an image's file behind a whiteout). Nothing in the image
/// is followed: a link where a mount point should be is left to the runtime, as without the
/// layer. Where the image's /etc cannot be copied whole (an attribute or an owner this
/// filesystem or this user cannot set), the layer holds the rest; failing that, nothing, so
/// that no later start tries again. Any other failure (a full disk) stores nothing: a later
/// start learns again.
pub fn learn(store: &Store, image_id: &str, root: &Path, upper: &Path) -> crate::Result<()> {
    let image_id = &berth_image::digest::parse_digest(image_id)?;
    if store.init_layer(image_id) != InitLayer::Unknown {
        return Ok(());
    }
    let untouched = std::fs::read_dir(upper)
        .map_err(crate::Error::io("read", upper))?
        .next()
        .is_none();
    if !untouched {
        return Ok(());
    }
    let root = open_dir(None, root, OFlag::O_PATH)
        .map_err(|e| crate::Error::io("open", root)(e.into()))?;
    let mut entries = lacking(root.as_fd());
    let made = |entries: &[InitEntry]| match store.make_init_layer(image_id, entries) {
        Ok(()) => Ok(true),
        Err(e) if cannot_be_set_here(&e) => Ok(false),
        Err(e) => Err(e),
    };
    if made(&entries)? {
        return Ok(());
    }
    entries.retain(|e| !e.path.starts_with("etc"));
    if made(&entries)? {
        return Ok(());
    }
    Ok(store.make_init_layer(image_id, &[])?)
}

/// What making an entry as the image has it fails with where it cannot be done at all: an
/// attribute the filesystem does not keep, an owner or an attribute this user may not set.
fn cannot_be_set_here(e: &berth_image::Error) -> bool {
    use nix::errno::Errno;
    let berth_image::Error::Io { source, .. } = e.root() else {
        return false;
    };
    let refused = [
        Errno::EPERM,
        Errno::EOPNOTSUPP,
        Errno::EINVAL,
        Errno::EACCES,
    ];
    source
        .raw_os_error()
        .is_some_and(|n| refused.contains(&Errno::from_raw(n)))
}

/// The init layer's entries for the image whose root is `root`.
fn lacking(root: BorrowedFd<'_>) -> Vec<InitEntry> {
    let entry = |path: &Path, kind| InitEntry {
        path: path.to_path_buf(),
        kind,
    };
    let mut entries: Vec<InitEntry> = ROOT_DIRS
        .iter()
        .filter(|name| absent(root, name))
        .map(|name| entry(Path::new(name), InitKind::Dir))
        .collect();
    let etc = Path::new("etc");
    let (kind, missing) = if absent(root, "etc") {
        (InitKind::Dir, ETC_FILES.to_vec())
    } else {
        // Only a directory of the image's own, opened without following a link: the layer's
        // copy of it takes all of its metadata (store::init's `Like`).
        let Ok(dir) = open_dir(Some(root), etc, OFlag::O_RDONLY) else {
            return entries;
        };
        let missing: Vec<&str> = ETC_FILES
            .iter()
            .filter(|name| absent(dir.as_fd(), name))
            .copied()
            .collect();
        (InitKind::Like(dir), missing)
    };
    if !missing.is_empty() {
        entries.push(entry(etc, kind));
        entries.extend(
            missing
                .into_iter()
                .map(|name| entry(&etc.join(name), InitKind::File)),
        );
    }
    entries
}

/// Whether `name` is missing from `dir` (not even a dangling link).
fn absent(dir: BorrowedFd<'_>, name: &str) -> bool {
    nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        == Err(nix::errno::Errno::ENOENT)
}

/// A directory, never through a link: `how` is `O_PATH` or `O_RDONLY` (to read its
/// extended attributes).
fn open_dir(at: Option<BorrowedFd<'_>>, path: &Path, how: OFlag) -> nix::Result<OwnedFd> {
    let flags = how | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match at {
        Some(dir) => nix::fcntl::openat(dir, path, flags, Mode::empty()),
        None => nix::fcntl::open(path, flags, Mode::empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn names(entries: &[InitEntry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| e.path.display().to_string())
            .collect()
    }

    fn lacking_in(root: &Path) -> Vec<InitEntry> {
        lacking(open_dir(None, root, OFlag::O_PATH).unwrap().as_fd())
    }

    #[test]
    fn an_empty_image_lacks_every_mount_point() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(
            names(&lacking_in(root.path())),
            [
                "proc",
                "dev",
                "sys",
                "etc",
                "etc/hostname",
                "etc/hosts",
                "etc/resolv.conf"
            ]
        );
    }

    #[test]
    fn what_the_image_has_is_left_to_it_and_its_etc_is_copied() {
        let root = tempfile::tempdir().unwrap();
        for d in ["proc", "dev", "sys", "etc"] {
            std::fs::create_dir(root.path().join(d)).unwrap();
        }
        std::fs::write(root.path().join("etc/hosts"), "127.0.0.1 image\n").unwrap();
        std::fs::set_permissions(
            root.path().join("etc"),
            std::os::unix::fs::PermissionsExt::from_mode(0o751),
        )
        .unwrap();
        let entries = lacking_in(root.path());
        assert_eq!(names(&entries), ["etc", "etc/hostname", "etc/resolv.conf"]);
        assert!(
            matches!(entries[0].kind, InitKind::Like(_)),
            "the image's /etc, copied"
        );
        // Nothing lacking: nothing, not even /etc.
        std::fs::write(root.path().join("etc/hostname"), "").unwrap();
        std::fs::write(root.path().join("etc/resolv.conf"), "").unwrap();
        assert!(lacking_in(root.path()).is_empty());
    }

    #[test]
    fn links_in_the_image_are_not_followed_nor_shadowed() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        // /etc a link out of the root, /proc a dangling link, /dev a file.
        symlink(elsewhere.path(), root.path().join("etc")).unwrap();
        symlink("/nowhere", root.path().join("proc")).unwrap();
        std::fs::write(root.path().join("dev"), "").unwrap();
        assert_eq!(names(&lacking_in(root.path())), ["sys"]);
    }

    #[test]
    fn a_kind_of_entry_the_image_has_is_never_replaced() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("etc")).unwrap();
        symlink("/host/hosts", root.path().join("etc/hosts")).unwrap();
        std::fs::create_dir(root.path().join("etc/hostname")).unwrap();
        let entries = lacking_in(root.path());
        assert_eq!(
            names(&entries),
            ["proc", "dev", "sys", "etc", "etc/resolv.conf"]
        );
    }
}
