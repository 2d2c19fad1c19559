//! An image archive unpacked into a private temp directory and read back only through names
//! resolved beneath it, as Docker's loader resolves every path in scope: a name that climbs
//! out, or a link that leads out, is refused and never followed to a host file.

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use tempfile::TempDir;

use crate::error::{Error, Result};
use crate::store::Store;
use crate::unpack::clean_path;

/// The archive's files on disk; removed when dropped.
pub(super) struct Unpacked {
    _dir: TempDir,
    root: OwnedFd,
}

fn refused(name: &str, reason: &str) -> Error {
    Error::Invalid {
        object: format!("archive entry {name:?}"),
        reason: reason.to_string(),
    }
}

/// `name` (a file the archive names) as a path inside it; `..` may not climb above its top.
fn inside(name: &str) -> Result<PathBuf> {
    clean_path(Path::new(name))
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| refused(name, "its name climbs out of the archive; refused"))
}

impl Unpacked {
    /// Unpacks `reader` (a tar) under the store's tmp directory.
    pub(super) fn new(store: &Store, reader: impl Read) -> Result<Unpacked> {
        let tmp = store.tmp_dir();
        let dir = tempfile::Builder::new()
            .prefix("load-")
            .tempdir_in(&tmp)
            .map_err(Error::io("create temp dir in", &tmp))?;
        let tar_err = |entry: &str| {
            let entry = entry.to_string();
            move |source| Error::Unpack {
                layer: "archive".into(),
                entry,
                source,
            }
        };
        let mut archive = tar::Archive::new(reader);
        archive.set_preserve_permissions(false);
        archive.set_unpack_xattrs(false);
        let mut dirs = Vec::new();
        for entry in archive.entries().map_err(tar_err("<start>"))? {
            let mut entry = entry.map_err(tar_err("<header>"))?;
            let name = entry_name(&entry).map_err(tar_err("<path>"))?;
            check_entry(&entry, &name)?;
            if entry.header().entry_type().is_dir() {
                dirs.push(entry);
                continue;
            }
            entry.unpack_in(dir.path()).map_err(tar_err(&name))?;
        }
        // Directories last, as tar's own unpack does: a read-only one must not keep out its files.
        for mut entry in dirs {
            let name = entry_name(&entry).map_err(tar_err("<path>"))?;
            entry.unpack_in(dir.path()).map_err(tar_err(&name))?;
        }
        let root = rustix::fs::open(
            dir.path(),
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map_err(|e| Error::io("open", dir.path())(e.into()))?;
        Ok(Unpacked { _dir: dir, root })
    }

    /// Opens the regular file the archive calls `name`.
    pub(super) fn open(&self, name: &str) -> Result<File> {
        self.try_open(name)?
            .ok_or_else(|| refused(name, "not in the archive"))
    }

    /// Reads the file the archive calls `name`.
    pub(super) fn read(&self, name: &str) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.open(name)?
            .read_to_end(&mut bytes)
            .map_err(Error::io("read archive entry", name))?;
        Ok(bytes)
    }

    /// Whether the archive has `name`; a name that leads out of it is an error, not a no.
    pub(super) fn has(&self, name: &str) -> Result<bool> {
        Ok(self.try_open(name)?.is_some())
    }

    /// openat2(RESOLVE_BENEATH): symlinks are followed while they stay inside the archive
    /// (Docker's own archives link a layer saved twice to its first copy); one that leads out
    /// fails with EXDEV instead of opening a host file. NONBLOCK so a FIFO cannot hang us.
    fn try_open(&self, name: &str) -> Result<Option<File>> {
        let rel = inside(name)?;
        let how = OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = match berth_sys::resolve::openat2(&self.root, &rel, how) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::EXDEV) => {
                return Err(refused(
                    name,
                    "leads out of the archive through a symbolic link; refused",
                ))
            }
            Err(e) => return Err(Error::io("open archive entry", rel)(e.into())),
        };
        let file = File::from(fd);
        let meta = file
            .metadata()
            .map_err(Error::io("stat archive entry", &rel))?;
        if !meta.is_file() {
            return Err(refused(name, "not a regular file"));
        }
        Ok(Some(file))
    }
}

fn entry_name<R: Read>(entry: &tar::Entry<R>) -> std::io::Result<String> {
    Ok(entry.path()?.display().to_string())
}

/// Refuses an entry whose name climbs out of the archive (tar itself would skip it silently;
/// Docker refuses it), or a hard link to a file outside it.
fn check_entry<R: Read>(entry: &tar::Entry<R>, name: &str) -> Result<()> {
    if clean_path(Path::new(name)).is_none() {
        return Err(refused(name, "its name climbs out of the archive; refused"));
    }
    if entry.header().entry_type().is_hard_link() {
        let target = entry
            .link_name()
            .map_err(Error::io("read hard link of", name))?
            .unwrap_or_default();
        if target.is_absolute() || clean_path(&target).is_none() {
            return Err(refused(
                name,
                &format!("a hard link out of the archive (to {target:?}); refused"),
            ));
        }
    }
    Ok(())
}
