//! Snapshots for the engine: an image's layers as overlayfs options (the mount itself is the
//! runtime side's, through berth-sys), or, where overlay cannot be used, a copied root.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The kernel takes at most one page of mount data.
const MOUNT_DATA_MAX: usize = 4095;

/// `lowerdir=top:...:bottom,upperdir=…,workdir=…` for `mount -t overlay`. `lowerdirs` are
/// top first, as `Store::rootfs_layers` returns them.
pub fn overlay_mount_data(lowerdirs: &[PathBuf], upper: &Path, work: &Path) -> Result<String> {
    let bad = |reason: &str| Error::Invalid {
        object: "overlay mount".into(),
        reason: reason.into(),
    };
    if lowerdirs.is_empty() {
        return Err(bad("an image with no layers has no root filesystem"));
    }
    let escape = |p: &Path| -> Result<String> {
        let s = p.to_str().ok_or_else(|| bad("a layer path is not UTF-8"))?;
        if s.contains(',') {
            return Err(bad("a layer path contains ','; move the data root"));
        }
        Ok(s.replace('\\', "\\\\").replace(':', "\\:"))
    };
    let lower = lowerdirs
        .iter()
        .map(|p| escape(p))
        .collect::<Result<Vec<_>>>()?
        .join(":");
    let mut data = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        escape(upper)?,
        escape(work)?
    );
    // In a rootless user namespace overlay keeps its xattrs under user.overlay.
    if berth_sys::rootless::is_rootless() {
        data.push_str(",userxattr");
    }
    if data.len() > MOUNT_DATA_MAX {
        return Err(bad(
            "too many layers for one page of mount options; use a shorter --root",
        ));
    }
    Ok(data)
}

/// Copies the layers (top first) into `dest`, applying overlay whiteouts, for filesystems
/// where overlayfs cannot be mounted. Slow, but the same tree a container would see.
pub fn copy_rootfs(lowerdirs: &[PathBuf], dest: &Path) -> Result<()> {
    for layer in lowerdirs.iter().rev() {
        copy_layer(layer, dest).map_err(Error::io("copy layer into root", layer.clone()))?;
    }
    Ok(())
}

fn copy_layer(src: &Path, dest: &Path) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dest.join(entry.file_name()));
        let meta = fs::symlink_metadata(&from)?;
        let kind = meta.file_type();
        let existing = fs::symlink_metadata(&to).ok();
        // A 0:0 character device hides the lower file; anything else replaces a non-directory.
        if kind.is_char_device() && meta.rdev() == 0 {
            remove(&to, existing.as_ref())?;
            continue;
        }
        if kind.is_dir() {
            let opaque = rustix::fs::lgetxattr(
                &from,
                berth_sys::rootless::overlay_xattr("opaque").as_str(),
                &mut [0u8; 1][..],
            )
            .is_ok();
            if existing.as_ref().is_some_and(|m| !m.is_dir()) || opaque {
                remove(&to, existing.as_ref())?;
            }
            if !to.is_dir() {
                fs::create_dir(&to)?;
            }
            copy_layer(&from, &to)?;
        } else {
            remove(&to, existing.as_ref())?;
            if kind.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
            } else if kind.is_file() {
                fs::copy(&from, &to)?;
            } else {
                let file_type = rustix::fs::FileType::from_raw_mode(meta.mode());
                let dev = meta.rdev();
                rustix::fs::mknodat(
                    rustix::fs::CWD,
                    &to,
                    file_type,
                    rustix::fs::Mode::from_bits_truncate(0o600),
                    dev,
                )?;
            }
        }
        let _ = std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()));
        if !kind.is_symlink() {
            fs::set_permissions(&to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// Copies one layer as it is stored (whiteouts, opaque directories, device nodes, links and
/// modes kept; hard links become copies) into `dest`, which must not exist, each owner passed
/// through `shift`: the layer as a container whose ids are shifted sees it, for a kernel or a
/// filesystem that cannot idmap a mount.
pub fn copy_layer_shifted(src: &Path, dest: &Path, shift: &dyn Fn(u32) -> u32) -> Result<()> {
    let copy = || -> io::Result<()> {
        fs::create_dir(dest)?;
        copy_tree(src, dest, shift, 0)?;
        attrs(dest, &fs::symlink_metadata(src)?, shift)
    };
    copy().map_err(Error::io(
        "copy the layer with its owners shifted",
        src.to_path_buf(),
    ))
}

/// The overlay's own attributes of a directory, under both of its namespaces.
const OPAQUE: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

fn copy_tree(src: &Path, dest: &Path, shift: &dyn Fn(u32) -> u32, depth: usize) -> io::Result<()> {
    if depth > 256 {
        return Err(io::Error::from_raw_os_error(
            rustix::io::Errno::LOOP.raw_os_error(),
        ));
    }
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dest.join(entry.file_name()));
        let meta = fs::symlink_metadata(&from)?;
        let kind = meta.file_type();
        if kind.is_dir() {
            fs::create_dir(&to)?;
            for name in OPAQUE {
                let mut value = [0u8; 8];
                if let Ok(n) = rustix::fs::lgetxattr(&from, name, &mut value[..]) {
                    let flags = rustix::fs::XattrFlags::empty();
                    rustix::fs::lsetxattr(&to, name, &value[..n], flags)?;
                }
            }
            copy_tree(&from, &to, shift, depth + 1)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else if kind.is_file() {
            fs::copy(&from, &to)?;
        } else {
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &to,
                rustix::fs::FileType::from_raw_mode(meta.mode()),
                rustix::fs::Mode::from_bits_truncate(0o600),
                meta.rdev(),
            )?;
        }
        attrs(&to, &meta, shift)?;
    }
    Ok(())
}

/// Owner (shifted) first, as a chown clears set-id bits, then mode and times.
fn attrs(to: &Path, meta: &fs::Metadata, shift: &dyn Fn(u32) -> u32) -> io::Result<()> {
    std::os::unix::fs::lchown(to, Some(shift(meta.uid())), Some(shift(meta.gid())))?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    let atime = filetime::FileTime::from_last_access_time(meta);
    let mtime = filetime::FileTime::from_last_modification_time(meta);
    filetime::set_symlink_file_times(to, atime, mtime)
}

fn remove(path: &Path, meta: Option<&fs::Metadata>) -> io::Result<()> {
    match meta {
        Some(m) if m.is_dir() => fs::remove_dir_all(path),
        Some(_) => fs::remove_file(path),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_data_escapes_and_orders() {
        let lower = vec![PathBuf::from("/l/top"), PathBuf::from("/l/a:b")];
        let data = overlay_mount_data(&lower, Path::new("/c/up"), Path::new("/c/work")).unwrap();
        assert_eq!(
            data,
            "lowerdir=/l/top:/l/a\\:b,upperdir=/c/up,workdir=/c/work"
        );
        assert!(overlay_mount_data(&[], Path::new("/u"), Path::new("/w")).is_err());
        assert!(
            overlay_mount_data(&[PathBuf::from("/a,b")], Path::new("/u"), Path::new("/w")).is_err()
        );
    }

    #[test]
    fn a_shifted_layer_keeps_whiteouts_and_opaque_directories() {
        use std::os::unix::fs::MetadataExt;
        if fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
            println!("skipped: needs root to chown and make a whiteout");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let (layer, copy) = (t.path().join("layer"), t.path().join("copy"));
        fs::create_dir_all(layer.join("dir")).unwrap();
        fs::write(layer.join("dir/f"), "x").unwrap();
        std::os::unix::fs::lchown(layer.join("dir/f"), Some(7), Some(8)).unwrap();
        fs::set_permissions(layer.join("dir/f"), fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::symlink("dir/f", layer.join("link")).unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            layer.join("gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        let opaque = "trusted.overlay.opaque";
        let flags = rustix::fs::XattrFlags::empty();
        rustix::fs::lsetxattr(layer.join("dir"), opaque, b"y", flags).unwrap();
        copy_layer_shifted(&layer, &copy, &|id| id + 1000).unwrap();
        let f = fs::symlink_metadata(copy.join("dir/f")).unwrap();
        assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777), (1007, 1008, 0o4755));
        assert_eq!(
            fs::read_link(copy.join("link")).unwrap(),
            Path::new("dir/f")
        );
        assert_eq!(fs::symlink_metadata(copy.join("link")).unwrap().uid(), 1000);
        let gone = fs::symlink_metadata(copy.join("gone")).unwrap();
        assert!(gone.file_type().is_char_device() && gone.rdev() == 0);
        let mut v = [0u8; 1];
        assert!(rustix::fs::lgetxattr(copy.join("dir"), opaque, &mut v[..]).is_ok());
        assert_eq!(fs::metadata(&copy).unwrap().uid(), 1000);
        assert!(
            copy_layer_shifted(&layer, &copy, &|id| id).is_err(),
            "dest exists"
        );
    }

    #[test]
    fn copied_root_applies_whiteouts() {
        let t = tempfile::tempdir().unwrap();
        let (bottom, top, root) = (
            t.path().join("bottom"),
            t.path().join("top"),
            t.path().join("root"),
        );
        for d in [&bottom, &top, &root] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(bottom.join("gone"), "x").unwrap();
        fs::create_dir(bottom.join("dir")).unwrap();
        fs::write(bottom.join("dir/old"), "x").unwrap();
        fs::write(bottom.join("kept"), "bottom").unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            top.join("gone"),
            rustix::fs::FileType::CharacterDevice,
            rustix::fs::Mode::empty(),
            0,
        )
        .unwrap();
        fs::create_dir(top.join("dir")).unwrap();
        rustix::fs::lsetxattr(
            top.join("dir"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        fs::write(top.join("dir/new"), "y").unwrap();
        copy_rootfs(&[top.clone(), bottom.clone()], &root).unwrap();
        assert!(!root.join("gone").exists());
        assert!(!root.join("dir/old").exists());
        assert_eq!(fs::read_to_string(root.join("dir/new")).unwrap(), "y");
        assert_eq!(fs::read_to_string(root.join("kept")).unwrap(), "bottom");
    }
}
