//! Safe layer unpacking: one tar stream into one fresh directory, OCI whiteouts turned into
//! overlayfs whiteouts, and nothing ever written outside that directory.
//!
//! The directory is new and only this function writes to it, so checking each parent with
//! lstat before use is enough: no one else can swap a directory for a symlink behind our back.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use filetime::FileTime;
use rustix::fs::{FileType, Mode, XattrFlags, CWD};
use tar::EntryType;

use crate::error::{Error, Result};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

/// Unpacks `reader` (an uncompressed tar) into `dest`, which must exist and be empty.
/// Returns the layer's size (the bytes of its regular files). `layer` names it in errors.
pub fn unpack_layer(reader: impl Read, dest: &Path, layer: &str) -> Result<u64> {
    let mut unpacker = Unpacker {
        dest,
        layer,
        known_dirs: HashSet::new(),
        dir_times: Vec::new(),
        size: 0,
    };
    let mut archive = tar::Archive::new(reader);
    let tar_err = |entry: &str| {
        let (layer, entry) = (layer.to_string(), entry.to_string());
        move |source| Error::Unpack {
            layer,
            entry,
            source,
        }
    };
    for entry in archive.entries().map_err(tar_err("<start>"))? {
        let mut entry = entry.map_err(tar_err("<header>"))?;
        let raw = entry.path().map_err(tar_err("<path>"))?.into_owned();
        let name = raw.display().to_string();
        unpacker.entry(&mut entry, &raw).map_err(|e| match e {
            UnpackFailure::Unsafe(reason) => Error::UnsafeEntry {
                layer: layer.to_string(),
                entry: name,
                reason,
            },
            UnpackFailure::Io(source) => Error::Unpack {
                layer: layer.to_string(),
                entry: name,
                source,
            },
        })?;
    }
    // Directory times last: creating entries inside a directory would bump them again.
    for (path, mtime) in unpacker.dir_times.iter().rev() {
        let _ = filetime::set_symlink_file_times(path, *mtime, *mtime);
    }
    // Trailing blocks and padding must pass through the hashers too.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(tar_err("<end of archive>"))?;
    Ok(unpacker.size)
}

enum UnpackFailure {
    Unsafe(&'static str),
    Io(io::Error),
}

impl From<io::Error> for UnpackFailure {
    fn from(e: io::Error) -> Self {
        UnpackFailure::Io(e)
    }
}

type Step<T = ()> = std::result::Result<T, UnpackFailure>;

struct Unpacker<'a> {
    dest: &'a Path,
    layer: &'a str,
    /// Directories already checked or created, to spare an lstat per parent per entry.
    known_dirs: HashSet<PathBuf>,
    dir_times: Vec<(PathBuf, FileTime)>,
    size: u64,
}

/// Lexically cleans a tar path: a leading '/' is contained (taken as the layer root), `..`
/// may not climb above it. Returns None for a path that escapes.
pub fn clean_path(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>, raw: &Path) -> Step {
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let rel = clean_path(raw).ok_or(UnpackFailure::Unsafe("path escapes the layer"))?;
        let Some(file_name) = rel.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            return Ok(()); // the layer root itself ("./"): its directory already exists
        };
        let parent = rel.parent().unwrap_or(Path::new(""));
        if file_name == OPAQUE_WHITEOUT {
            let dir = self.ensure_dirs(parent, true)?;
            return set_xattr(&dir, &berth_sys::rootless::overlay_xattr("opaque"), b"y")
                .map_err(Into::into);
        }
        let parent_dir = self.ensure_dirs(parent, true)?;
        if let Some(hidden) = file_name.strip_prefix(WHITEOUT_PREFIX) {
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(UnpackFailure::Unsafe("whiteout names no file"));
            }
            let target = parent_dir.join(hidden);
            self.clear(&target, false)?;
            return mknod(&target, FileType::CharacterDevice, 0, 0).map_err(Into::into);
        }
        let target = parent_dir.join(&file_name);
        let xattrs = pax_xattrs(entry)?;
        let header = entry.header().clone();
        let mode = header.mode()? & 0o7777;
        // Go's tar reads an empty numeric field as 0; so do we, for images Docker accepts.
        let (uid, gid) = (
            header.uid().unwrap_or(0) as u32,
            header.gid().unwrap_or(0) as u32,
        );
        let mtime = FileTime::from_unix_time(header.mtime().unwrap_or(0) as i64, 0);
        match kind {
            EntryType::Directory => {
                self.clear(&target, true)?;
                if !target.is_dir() {
                    fs::create_dir(&target)?;
                }
                self.known_dirs.insert(target.clone());
                self.dir_times.push((target.clone(), mtime));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.clear(&target, false)?;
                let mut file = File::options().write(true).create_new(true).open(&target)?;
                self.size += io::copy(entry, &mut file)?;
                lchown(&target, uid, gid)?;
                file.set_permissions(fs::Permissions::from_mode(mode))?;
                filetime::set_file_handle_times(&file, Some(mtime), Some(mtime))?;
                apply_xattrs(&target, &xattrs)?;
                return Ok(());
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name()?
                    .ok_or(UnpackFailure::Unsafe("symlink without a target"))?;
                self.clear(&target, false)?;
                std::os::unix::fs::symlink(&link, &target)?;
                lchown(&target, uid, gid)?;
                apply_xattrs(&target, &xattrs)?;
                filetime::set_symlink_file_times(&target, mtime, mtime)?;
                return Ok(());
            }
            EntryType::Link => {
                let link = entry
                    .link_name()?
                    .ok_or(UnpackFailure::Unsafe("hardlink without a target"))?;
                let source_rel = clean_path(&link)
                    .ok_or(UnpackFailure::Unsafe("hardlink target escapes the layer"))?;
                let source_parent =
                    self.ensure_dirs(source_rel.parent().unwrap_or(Path::new("")), false)?;
                let source = source_parent.join(
                    source_rel
                        .file_name()
                        .ok_or(UnpackFailure::Unsafe("hardlink to the layer root"))?,
                );
                let meta = fs::symlink_metadata(&source).map_err(|_| {
                    UnpackFailure::Unsafe("hardlink target does not exist in the layer")
                })?;
                if meta.is_dir() {
                    return Err(UnpackFailure::Unsafe("hardlink to a directory"));
                }
                if source == target {
                    return Ok(());
                }
                self.clear(&target, false)?;
                fs::hard_link(&source, &target)?;
                return Ok(());
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let file_type = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                self.clear(&target, false)?;
                match mknod(&target, file_type, major, minor) {
                    // Device nodes cannot be made in a rootless user namespace: left out, as
                    // podman's rootless storage does (a container gets its devices bound).
                    Err(e)
                        if e.kind() == io::ErrorKind::PermissionDenied
                            && berth_sys::rootless::is_rootless() =>
                    {
                        return Ok(())
                    }
                    other => other?,
                }
                lchown(&target, uid, gid)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
                apply_xattrs(&target, &xattrs)?;
                filetime::set_symlink_file_times(&target, mtime, mtime)?;
                return Ok(());
            }
            _ => return Err(UnpackFailure::Unsafe("unsupported tar entry type")),
        }
        // Directories: ownership before mode, since chown clears setuid/setgid bits.
        lchown(&target, uid, gid)?;
        fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
        apply_xattrs(&target, &xattrs)?;
        Ok(())
    }

    /// Walks `rel` below the layer root, refusing symlinks and non-directories on the way,
    /// creating what is missing when `create` is set. Returns the absolute directory.
    fn ensure_dirs(&mut self, rel: &Path, create: bool) -> Step<PathBuf> {
        let mut current = self.dest.to_path_buf();
        for component in rel.components() {
            current.push(component);
            if self.known_dirs.contains(&current) {
                continue;
            }
            match fs::symlink_metadata(&current) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(UnpackFailure::Unsafe("path goes through a symlink"))
                }
                Ok(_) => {
                    return Err(UnpackFailure::Unsafe(
                        "a parent of the path is not a directory",
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    fs::create_dir(&current)?;
                    fs::set_permissions(&current, fs::Permissions::from_mode(0o755))?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(UnpackFailure::Unsafe(
                        "hardlink target does not exist in the layer",
                    ))
                }
                Err(e) => return Err(e.into()),
            }
            self.known_dirs.insert(current.clone());
        }
        Ok(current)
    }

    /// Removes whatever is at `target`, except a directory that a directory entry will reuse.
    fn clear(&mut self, target: &Path, keep_dir: bool) -> Step {
        match fs::symlink_metadata(target) {
            Ok(meta) if meta.is_dir() => {
                if !keep_dir {
                    fs::remove_dir_all(target)?;
                    // Anything below it that we had checked is gone now, and its path may
                    // next lead through a symlink: the times set at the end must not follow.
                    self.known_dirs.retain(|d| !d.starts_with(target));
                    self.dir_times.retain(|(d, _)| !d.starts_with(target));
                }
            }
            Ok(_) => fs::remove_file(target)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let _ = self.layer;
        Ok(())
    }
}

fn pax_xattrs<R: Read>(entry: &mut tar::Entry<R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(extensions) = entry.pax_extensions()? {
        for ext in extensions {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                // An image must not plant overlay's own attributes (opaque, redirect, metacopy).
                if !name.starts_with(berth_sys::rootless::overlay_xattr_prefix()) {
                    out.push((name.to_string(), ext.value_bytes().to_vec()));
                }
            }
        }
    }
    Ok(out)
}

fn apply_xattrs(path: &Path, xattrs: &[(String, Vec<u8>)]) -> io::Result<()> {
    for (name, value) in xattrs {
        set_xattr(path, name, value)?;
    }
    Ok(())
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    match rustix::fs::lsetxattr(path, name, value, XattrFlags::empty()) {
        // A filesystem without xattrs (or user.* on a symlink) loses them, as with Docker.
        Err(e) if e == rustix::io::Errno::NOTSUP || e == rustix::io::Errno::PERM => Ok(()),
        other => other.map_err(io::Error::from),
    }
}

fn mknod(path: &Path, file_type: FileType, major: u32, minor: u32) -> io::Result<()> {
    let dev = rustix::fs::makedev(major, minor);
    rustix::fs::mknodat(CWD, path, file_type, Mode::from_bits_truncate(0o600), dev)
        .map_err(io::Error::from)
}

/// Sets ownership without following symlinks; EPERM when not root is not an error (the
/// layer then belongs to us, as in a rootless store).
fn lchown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    match std::os::unix::fs::lchown(path, Some(uid), Some(gid)) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        // An id outside a rootless user namespace's map (a single-id map): the file stays
        // the namespace's root's, as podman leaves it.
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}

/// Bytes used by the files below `dir`, for layers whose size was not recorded.
pub fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() && meta.nlink() >= 1 {
                total += meta.len();
            }
        }
    }
    total
}
