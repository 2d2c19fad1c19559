//! Safe layer unpacking: one tar stream into one fresh directory, OCI whiteouts turned into
//! overlayfs whiteouts, and nothing ever written outside that directory.
//!
//! The directory is new and only this function writes to it, so checking each parent with
//! lstat before use is enough: no one else can swap a directory for a symlink behind our back.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
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
        buf: vec![0; 256 << 10],
        born: Born::of(dest),
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
    /// Files' contents go through this in pieces of up to 256 KiB: one write for most files,
    /// where std's copy would make one per 8 KiB.
    buf: Vec<u8>,
    born: Born,
}

/// What a new file in the layer is born with, when that can be known without asking: then a
/// file whose entry asks for just that needs no chown and no chmod (two inode updates each
/// of the layer's thousands of files, which `gzip | tar` makes only when they change
/// something).
struct Born {
    /// The owner of `dest`, which this process made: a new file's owner and group.
    owner: Option<(u32, u32)>,
    /// The process's umask, which takes bits from the mode a file is created with.
    umask: Option<u32>,
}

impl Born {
    fn of(dest: &Path) -> Self {
        // A setgid directory gives its group to what is made in it, a default ACL its mode:
        // with either on `dest`, nothing is known.
        let plain = fs::symlink_metadata(dest)
            .ok()
            .filter(|m| m.mode() & 0o2000 == 0 && !has_default_acl(dest));
        Born {
            owner: plain.map(|m| (m.uid(), m.gid())),
            umask: umask(),
        }
    }

    /// A directory entry that makes its directory setgid, or gives it a default ACL, makes
    /// what follows unknowable too.
    fn directory(&mut self, mode: u32, xattrs: &[(String, Vec<u8>)]) {
        if mode & 0o2000 != 0 || xattrs.iter().any(|(name, _)| name == DEFAULT_ACL) {
            self.owner = None;
        }
    }

    fn needs_chown(&self, uid: u32, gid: u32) -> bool {
        self.owner != Some((uid, gid))
    }

    /// A file created with `mode` has it exactly (no umask bit in it, no setuid, setgid or
    /// sticky bit, which only chmod sets).
    fn needs_chmod(&self, mode: u32) -> bool {
        self.owner.is_none() || mode & 0o7000 != 0 || self.umask.is_none_or(|u| mode & u != 0)
    }
}

const DEFAULT_ACL: &str = "system.posix_acl_default";

fn has_default_acl(path: &Path) -> bool {
    // ENODATA: none; anything else (no ACL support: ENOTSUP) is not an ACL either, but an
    // error we cannot read is taken as one.
    match rustix::fs::lgetxattr(path, DEFAULT_ACL, &mut [0u8; 0][..]) {
        Ok(_) => true,
        Err(e) => e != rustix::io::Errno::NODATA && e != rustix::io::Errno::NOTSUP,
    }
}

/// The process's umask, from /proc/self/status (reading it otherwise means setting it).
fn umask() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// Copies a tar entry's content into its file. Returns the bytes copied.
fn copy_data(entry: &mut impl Read, file: &mut File, buf: &mut [u8]) -> io::Result<u64> {
    let mut total = 0;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match entry.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        file.write_all(&buf[..filled])?;
        total += filled as u64;
        if filled < buf.len() {
            return Ok(total);
        }
    }
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
                match fs::create_dir(&target) {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        self.clear(&target, true)?;
                        if !target.is_dir() {
                            fs::create_dir(&target)?;
                        }
                    }
                    other => other?,
                }
                self.known_dirs.insert(target.clone());
                self.dir_times.push((target.clone(), mtime));
                self.born.directory(mode, &xattrs);
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                // Created first and cleared only when something is in the way (a later
                // layer entry replacing an earlier one): O_EXCL never follows a symlink, so
                // this is as safe as the lstat before it was, one call a file fewer.
                let new_file = || {
                    File::options()
                        .write(true)
                        .create_new(true)
                        .mode(mode)
                        .open(&target)
                };
                let mut file = match new_file() {
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        self.clear(&target, false)?;
                        new_file()?
                    }
                    other => other?,
                };
                self.size += copy_data(entry, &mut file, &mut self.buf)?;
                if self.born.needs_chown(uid, gid) {
                    fchown(&file, uid, gid)?;
                }
                if self.born.needs_chown(uid, gid) || self.born.needs_chmod(mode) {
                    file.set_permissions(fs::Permissions::from_mode(mode))?;
                }
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
        let whole = self.dest.join(rel);
        // Entries come directory by directory: most parents are known as a whole.
        if self.known_dirs.contains(&whole) {
            return Ok(whole);
        }
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

/// `lchown` of an open file, by its descriptor.
fn fchown(file: &File, uid: u32, gid: u32) -> io::Result<()> {
    match std::os::unix::fs::fchown(file, Some(uid), Some(gid)) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
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
