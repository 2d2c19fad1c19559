//! ADD's local archives: a tar (plain, gzip, bzip2, xz or zstd) is unpacked into the
//! destination directory instead of copied, as Docker does. Each entry's path is cleaned (no
//! `..` above the destination) and made relative to its parent's descriptor, which is resolved
//! inside the image's root: neither the archive's own links nor the image's lead outside.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{fchmodat, mknodat, utimensat, FchmodatFlags, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, linkat, symlinkat, Gid, Uid};

use crate::fsops::{self, Owner, Root};

const BZIP2: &[u8] = b"BZh";
const XZ: &[u8] = &[0xfd, b'7', b'z', b'X', b'Z', 0];

/// The archive's bytes, decompressed; a helper process for bzip2 and xz.
struct Stream {
    reader: Box<dyn Read>,
    child: Option<Child>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn open(path: &Path) -> io::Result<Stream> {
    let mut file = BufReader::new(File::open(path)?);
    let head = file.fill_buf()?.to_vec();
    let tool = match () {
        _ if head.starts_with(BZIP2) => Some("bzip2"),
        _ if head.starts_with(XZ) => Some("xz"),
        _ => None,
    };
    if let Some(tool) = tool {
        let mut child = Command::new(tool)
            .arg("-dc")
            .stdin(File::open(path)?)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                io::Error::other(format!("run {tool} to decompress {}: {e}", path.display()))
            })?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no pipe"))?;
        return Ok(Stream {
            reader: Box::new(out),
            child: Some(child),
        });
    }
    Ok(Stream {
        reader: Box::new(berth_image::compress::decoder(file)?),
        child: None,
    })
}

/// Whether `path` is a regular file holding a tar archive, compressed or not.
pub fn is_archive(path: &Path) -> bool {
    if !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(mut stream) = open(path) else {
        return false;
    };
    let mut archive = tar::Archive::new(&mut stream.reader);
    let first = archive.entries().ok().and_then(|mut e| e.next());
    matches!(first, Some(Ok(_)))
}

/// Unpacks the archive `path` into the directory `dest` of `root`, made if missing. Owners
/// come from the archive unless `chown` is given.
pub fn unpack(
    root: &Root,
    path: &Path,
    dest: &Path,
    chown: Option<Owner>,
    now: i64,
) -> io::Result<()> {
    let dir_owner = chown.unwrap_or_default();
    root.mkdir_all(dest, dir_owner, now)?;
    let mut stream = open(path)?;
    let mut archive = tar::Archive::new(&mut stream.reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let Some(rel) = clean(&entry.path()?) else {
            continue;
        };
        let target = dest.join(&rel);
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            continue;
        };
        let dir = root.mkdir_all(parent, dir_owner, now)?;
        let header = entry.header().clone();
        // A numeric field left blank reads as 0, as GNU tar takes it.
        let owner = chown.unwrap_or(Owner {
            uid: header.uid().unwrap_or(0) as u32,
            gid: header.gid().unwrap_or(0) as u32,
        });
        let attrs = (
            owner,
            header.mode().unwrap_or(0o644) & 0o7777,
            TimeSpec::new(header.mtime().unwrap_or(0) as i64, 0),
        );
        let made = make_entry(root, dest, dir.as_fd(), name, &mut entry)?;
        match made {
            Made::Nothing => {}
            Made::Link => {
                chown_at(dir.as_fd(), name, owner)?;
                utimensat(
                    dir.as_fd(),
                    name,
                    &attrs.2,
                    &attrs.2,
                    UtimensatFlags::NoFollowSymlink,
                )
                .map_err(errno)?;
            }
            Made::Entry => set_attrs_at(dir.as_fd(), name, attrs)?,
        }
    }
    Ok(())
}

/// What `make_entry` made: nothing (a hard link, or an entry type of no file), a symlink, or
/// an entry to give the header's owner, mode and time.
enum Made {
    Nothing,
    Link,
    Entry,
}

/// Makes the entry `name` in `dir` (the entry's parent in `root`), replacing what is there.
fn make_entry(
    root: &Root,
    dest: &Path,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    entry: &mut tar::Entry<'_, impl Read>,
) -> io::Result<Made> {
    let header = entry.header().clone();
    let kind = header.entry_type();
    let existing = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
    let existing_dir = existing
        .is_some_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR);
    if existing.is_some() && !(kind.is_dir() && existing_dir) {
        fsops::remove(dir, name, existing_dir)?;
    }
    let private = Mode::from_bits_truncate(0o700);
    match kind {
        tar::EntryType::Directory if existing_dir => {}
        tar::EntryType::Directory => nix::sys::stat::mkdirat(dir, name, private).map_err(errno)?,
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            fsops::write_from(dir, name, entry)?
        }
        tar::EntryType::Symlink => {
            let link = entry.link_name()?.unwrap_or_default();
            symlinkat(link.as_os_str(), dir, name).map_err(errno)?;
            return Ok(Made::Link);
        }
        tar::EntryType::Link => {
            let link = entry
                .link_name()?
                .and_then(|l| clean(&l))
                .unwrap_or_default();
            hard_link(root, &dest.join(link), dir, name)?;
            return Ok(Made::Nothing);
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let sflag = match kind {
                tar::EntryType::Char => SFlag::S_IFCHR,
                tar::EntryType::Block => SFlag::S_IFBLK,
                _ => SFlag::S_IFIFO,
            };
            let major = header.device_major().ok().flatten().unwrap_or(0);
            let minor = header.device_minor().ok().flatten().unwrap_or(0);
            let dev = nix::sys::stat::makedev(major.into(), minor.into());
            mknodat(dir, name, sflag, private, dev).map_err(errno)?;
        }
        // PAX and GNU long-name headers are read by the tar crate; nothing else is made.
        _ => return Ok(Made::Nothing),
    }
    Ok(Made::Entry)
}

/// Owner first (a chown clears set-id bits), then mode, then times; links not followed.
fn set_attrs_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    (owner, mode, t): (Owner, u32, TimeSpec),
) -> io::Result<()> {
    chown_at(dir, name, owner)?;
    fchmodat(
        dir,
        name,
        Mode::from_bits_truncate(mode),
        FchmodatFlags::NoFollowSymlink,
    )
    .map_err(errno)?;
    utimensat(dir, name, &t, &t, UtimensatFlags::NoFollowSymlink).map_err(errno)
}

fn errno(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// An entry's path without `/`, `.` and any `..` that would climb above the destination
/// (Docker cleans it the same way); None for the destination itself.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

fn chown_at(dir: BorrowedFd<'_>, name: &OsStr, owner: Owner) -> io::Result<()> {
    fchownat(
        dir,
        name,
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(errno)
}

/// A hard link `name` in `dir` to the file at `target` (resolved in the root, never a
/// directory, its last component not followed).
fn hard_link(root: &Root, target: &Path, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let (Some(parent), Some(file)) = (target.parent(), target.file_name()) else {
        return Err(io::Error::other("a hard link to the archive's root"));
    };
    let from = root.resolve(parent, OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    linkat(&from, file, dir, name, AtFlags::empty()).map_err(errno)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_below_the_destination() {
        assert_eq!(
            clean(Path::new("../../etc/passwd")),
            Some(PathBuf::from("etc/passwd"))
        );
        assert_eq!(clean(Path::new("/a/./b/../c")), Some(PathBuf::from("a/c")));
        assert_eq!(clean(Path::new("./")), None);
    }
}
