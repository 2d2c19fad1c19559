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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitEntry {
    /// Relative to the layer's root, without `..` (`etc/hosts`).
    pub path: PathBuf,
    pub kind: InitKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitKind {
    /// A directory with this mode and owner (a merged directory shows the upper-most layer's:
    /// an image's own directory keeps its mode and owner through the init layer).
    Dir { mode: u32, uid: u32, gid: u32 },
    /// An empty file, root's, mode 0644: a bind mount's mount point.
    File,
}

impl Store {
    fn init_dir(&self, image_id: &Digest) -> PathBuf {
        self.dir
            .join("layers")
            .join(format!("{INIT_PREFIX}{}", image_id.digest()))
    }

    /// The image's init layer, as far as the store knows it (a `statx` or two).
    pub fn init_layer(&self, image_id: &Digest) -> InitLayer {
        let dir = self.init_dir(image_id);
        let diff = dir.join("diff");
        if diff.is_dir() {
            InitLayer::Layer(diff)
        } else if dir.is_dir() {
            InitLayer::Nothing
        } else {
            InitLayer::Unknown
        }
    }

    /// Stores the image's init layer: `entries` (none: the image lacks nothing). Another
    /// command that stored it first wins; this one's copy goes.
    pub fn make_init_layer(&self, image_id: &Digest, entries: &[InitEntry]) -> Result<()> {
        let _hold = self.lock_shared()?;
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
    match entry.kind {
        InitKind::Dir { mode, uid, gid } => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&path)
                .map_err(Error::io("create", &path))?;
            std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
                .map_err(Error::io("chown", &path))?;
            // After the chown, which clears set-id bits a directory may carry.
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
                .map_err(Error::io("chmod", &path))?;
        }
        InitKind::File => {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&path)
                .map_err(Error::io("create", &path))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
                .map_err(Error::io("chmod", &path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap()
    }

    #[test]
    fn an_init_layer_is_unknown_then_stored_once_whole() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::open(root.path()).unwrap();
        assert_eq!(store.init_layer(&id(1)), InitLayer::Unknown);
        let entries = [
            InitEntry {
                path: "proc".into(),
                kind: InitKind::Dir {
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
            },
            InitEntry {
                path: "etc".into(),
                kind: InitKind::Dir {
                    mode: 0o750,
                    uid: 0,
                    gid: 0,
                },
            },
            InitEntry {
                path: "etc/hosts".into(),
                kind: InitKind::File,
            },
        ];
        store.make_init_layer(&id(1), &entries).unwrap();
        let InitLayer::Layer(diff) = store.init_layer(&id(1)) else {
            panic!("no layer");
        };
        let mode = |p: &str| {
            fs::symlink_metadata(diff.join(p))
                .unwrap()
                .permissions()
                .mode()
        };
        assert_eq!(mode("proc") & 0o7777, 0o755);
        assert_eq!(mode("etc") & 0o7777, 0o750);
        assert_eq!(mode("etc/hosts"), 0o100644);
        // A second maker (another container's start) leaves the first one's.
        store.make_init_layer(&id(1), &entries[..1]).unwrap();
        assert!(diff.join("etc/hosts").is_file());
        // Nothing lacking: known, and nothing to mount.
        store.make_init_layer(&id(2), &[]).unwrap();
        assert_eq!(store.init_layer(&id(2)), InitLayer::Nothing);
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
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
