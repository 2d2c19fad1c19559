//! Init layers: per image, the mount points a container needs that the image lacks (Docker's
//! /proc, /dev, /sys, /etc/hosts, ...), made once and mounted below each of its containers'
//! upper directories, so that a container's start makes none of them in its own upper
//! directory (moby keeps such an "init" layer per container; one per image serves them all,
//! since it holds nothing a container writes).
//!
//! ```text
//! <root>/image/layers/init-<image ID hex>/diff/   the layer (a lowerdir above the image's)
//! <root>/image/layers/init-<image ID hex>/         without diff/: the image lacks none
//! ```
//! Beside the image's layers, so that one idmapped mount of `layers/` shows a user
//! namespace's container all of them (berth-engine's `idmap`), and a shifted copy of it goes
//! where the layers' go (`init-<hex>/diff-<first>-<count>`).
//! The engine decides what goes in (it knows the mount points, and reads the image's merged
//! view); the store keeps it whole or absent (made in tmp/, renamed in) and collects it with
//! the image (`gc`).

use std::fs;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use oci_spec::image::Digest;

use super::Store;
use crate::error::{Error, Result};

/// An init layer's directory in `layers/`: this, then the image's ID (its config's digest).
pub(super) const INIT_PREFIX: &str = "init-";

/// What a store knows of an image's init layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitLayer {
    /// The layer's directory: the lowerdir to mount above the image's layers.
    Layer(PathBuf),
    /// The image lacks none of the mount points: nothing to mount.
    Nothing,
    /// Not known yet: no container of the image has been started since it was stored.
    Unknown,
}

/// One entry of an init layer, its parents before it.
#[derive(Debug)]
pub struct InitEntry {
    /// Relative to the layer's root, without `..` (`etc/hosts`).
    pub path: PathBuf,
    pub kind: InitKind,
}

#[derive(Debug)]
pub enum InitKind {
    /// A directory the image lacks: root's, mode 0755.
    Dir,
    /// A directory the image has, made as the image has it: `like` is open on the image's
    /// (`O_RDONLY`), whose mode, owner, extended attributes (its ACLs among them; overlay's
    /// own left out) and times the new one takes. A merged directory shows the upper-most
    /// layer's, so that is what the container sees and how its permissions are checked.
    Like(OwnedFd),
    /// An empty file, root's, mode 0644: a bind mount's mount point.
    File,
}

impl Store {
    fn init_dir(&self, image_id: &Digest) -> PathBuf {
        self.dir
            .join("layers")
            .join(format!("{INIT_PREFIX}{}", image_id.digest()))
    }

    /// The image's init layer, as far as the store knows it (a `statx` or two). The directory
    /// is looked at first: it comes whole, `diff/` in it, in one rename.
    pub fn init_layer(&self, image_id: &Digest) -> InitLayer {
        let dir = self.init_dir(image_id);
        if !dir.is_dir() {
            return InitLayer::Unknown;
        }
        let diff = dir.join("diff");
        if diff.is_dir() {
            InitLayer::Layer(diff)
        } else {
            InitLayer::Nothing
        }
    }

    /// Stores the image's init layer: `entries` (none: the image lacks nothing). Another
    /// command that stored it first wins; this one's copy goes. While a garbage collection
    /// holds the store, nothing is made (a start does not wait for it): a later start will.
    pub fn make_init_layer(&self, image_id: &Digest, entries: &[InitEntry]) -> Result<()> {
        let Some(_hold) = self.try_lock_shared()? else {
            return Ok(());
        };
        let target = self.init_dir(image_id);
        let tmp = tempfile::Builder::new()
            .prefix("init-")
            .tempdir_in(self.tmp_dir())
            .map_err(Error::io("create temp init layer in", self.tmp_dir()))?;
        if !entries.is_empty() {
            let diff = tmp.path().join("diff");
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&diff)
                .map_err(Error::io("create", &diff))?;
            for entry in entries {
                make_entry(&diff, entry)?;
            }
            // Times last: what is made in a directory changes its mtime.
            for entry in entries.iter().rev() {
                if let InitKind::Like(like) = &entry.kind {
                    let path = diff.join(&entry.path);
                    copy_times(like.as_fd(), &path)
                        .map_err(Error::io("copy the image's times to", &path))?;
                }
            }
        }
        let tmp = tmp.keep();
        match fs::rename(&tmp, &target) {
            Ok(()) => Ok(()),
            Err(_) if target.is_dir() => {
                let _ = fs::remove_dir_all(&tmp);
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                Err(Error::io("rename init layer into place", target)(e))
            }
        }
    }
}

fn make_entry(diff: &Path, entry: &InitEntry) -> Result<()> {
    let plain = entry
        .path
        .components()
        .all(|c| matches!(c, Component::Normal(_)));
    if !plain || entry.path.as_os_str().is_empty() {
        return Err(Error::Invalid {
            object: format!("init layer entry {}", entry.path.display()),
            reason: "is not a relative path of plain names".into(),
        });
    }
    let path = diff.join(&entry.path);
    let mkdir = |path: &Path| {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(path)
            .map_err(Error::io("create", path))
    };
    // After the chown, which clears set-id bits a directory may carry.
    let chmod = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
            .map_err(Error::io("chmod", path))
    };
    match &entry.kind {
        InitKind::Dir => {
            mkdir(&path)?;
            chmod(&path, 0o755)?;
        }
        InitKind::Like(like) => {
            mkdir(&path)?;
            copy_metadata(like.as_fd(), &path)
                .map_err(Error::io("copy the image's metadata to", &path))?;
        }
        InitKind::File => {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
                .map_err(Error::io("create", &path))?;
            chmod(&path, 0o644)?;
        }
    }
    Ok(())
}

/// Gives the directory `path` (just made, ours) the mode, owner and extended attributes of
/// `like` (its times: [`copy_times`], once its entries are made). Every attribute is copied or this fails: a layer that showed the image's
/// directory with less (an ACL that denies left out) would widen what a container may do.
fn copy_metadata(like: BorrowedFd<'_>, path: &Path) -> std::io::Result<()> {
    use rustix::fs::XattrFlags;
    let st = rustix::fs::fstat(like)?;
    std::os::unix::fs::lchown(path, Some(st.st_uid), Some(st.st_gid))?;
    fs::set_permissions(path, fs::Permissions::from_mode(st.st_mode & 0o7777))?;
    let xattrs = crate::xattr::all(
        |names| rustix::fs::flistxattr(like, names),
        |name, value| rustix::fs::fgetxattr(like, name, value),
    )?;
    let private = berth_sys::rootless::overlay_xattr_prefix();
    for (name, value) in xattrs {
        if !name.to_bytes().starts_with(private.as_bytes()) {
            rustix::fs::lsetxattr(path, name.as_c_str(), &value, XattrFlags::empty())?;
        }
    }
    Ok(())
}

/// Gives `path` the access and modification times of `like`.
fn copy_times(like: BorrowedFd<'_>, path: &Path) -> std::io::Result<()> {
    use rustix::fs::{AtFlags, Timestamps, CWD};
    let st = rustix::fs::fstat(like)?;
    let times = Timestamps {
        last_access: st_time(st.st_atime, st.st_atime_nsec),
        last_modification: st_time(st.st_mtime, st.st_mtime_nsec),
    };
    rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

fn st_time(sec: i64, nsec: u64) -> rustix::fs::Timespec {
    rustix::fs::Timespec {
        tv_sec: sec,
        tv_nsec: nsec.try_into().unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap()
    }

    /// An open directory like an image's /etc: mode 0750, an extended attribute, an old mtime.
    fn image_etc(dir: &Path) -> OwnedFd {
        fs::create_dir(dir).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o750)).unwrap();
        rustix::fs::setxattr(
            dir,
            "user.berth-test",
            b"kept",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        let old = rustix::fs::Timestamps {
            last_access: st_time(1_000_000, 5),
            last_modification: st_time(2_000_000, 7),
        };
        rustix::fs::utimensat(rustix::fs::CWD, dir, &old, rustix::fs::AtFlags::empty()).unwrap();
        fs::File::open(dir).unwrap().into()
    }

    #[test]
    fn an_init_layer_is_unknown_then_stored_once_whole() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        assert_eq!(store.init_layer(&id(1)), InitLayer::Unknown);
        let entries = || {
            vec![
                InitEntry {
                    path: "proc".into(),
                    kind: InitKind::Dir,
                },
                InitEntry {
                    path: "etc".into(),
                    kind: InitKind::Like(image_etc(&root.path().join(unique()))),
                },
                InitEntry {
                    path: "etc/hosts".into(),
                    kind: InitKind::File,
                },
            ]
        };
        store.make_init_layer(&id(1), &entries()).unwrap();
        let InitLayer::Layer(diff) = store.init_layer(&id(1)) else {
            panic!("no layer");
        };
        let meta = |p: &str| fs::symlink_metadata(diff.join(p)).unwrap();
        assert_eq!(meta("proc").permissions().mode(), 0o40755);
        assert_eq!(meta("etc/hosts").permissions().mode(), 0o100644);
        let etc = meta("etc");
        assert_eq!(etc.permissions().mode(), 0o40750);
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            (etc.atime(), etc.mtime(), etc.mtime_nsec()),
            (1_000_000, 2_000_000, 7)
        );
        let mut value = [0u8; 16];
        let n = rustix::fs::getxattr(diff.join("etc"), "user.berth-test", &mut value[..]).unwrap();
        assert_eq!(&value[..n], b"kept");
        // A second maker (another container's start) leaves the first one's.
        store.make_init_layer(&id(1), &entries()[..1]).unwrap();
        assert!(diff.join("etc/hosts").is_file());
        // Nothing lacking: known, and nothing to mount.
        store.make_init_layer(&id(2), &[]).unwrap();
        assert_eq!(store.init_layer(&id(2)), InitLayer::Nothing);
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    fn unique() -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        format!("like-{}", N.fetch_add(1, Ordering::Relaxed))
    }

    #[test]
    fn nothing_is_made_while_a_collection_holds_the_store() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        let gc = store.try_lock_exclusive().unwrap().unwrap();
        store.make_init_layer(&id(4), &[]).unwrap();
        assert_eq!(store.init_layer(&id(4)), InitLayer::Unknown);
        drop(gc);
        store.make_init_layer(&id(4), &[]).unwrap();
        assert_eq!(store.init_layer(&id(4)), InitLayer::Nothing);
    }

    #[test]
    fn an_init_layer_entry_must_stay_inside_the_layer() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        for path in ["../escape", "/etc/hosts", "etc/../../x", ""] {
            let entry = InitEntry {
                path: path.into(),
                kind: InitKind::File,
            };
            assert!(store.make_init_layer(&id(3), &[entry]).is_err(), "{path}");
            assert_eq!(store.init_layer(&id(3)), InitLayer::Unknown);
        }
        assert!(!root.path().join("escape").exists());
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }
}
