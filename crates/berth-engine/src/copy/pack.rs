//! A path inside a root as a tar stream: the tree below it walked one name at a time from its
//! directory, links recorded as links (never followed), hard links as links to the first
//! name, device nodes and fifos as headers; sockets have nothing to copy.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, SFlag};
use tar::{EntryType, Header};

use super::{kind, lstat_at, open_parent};
use crate::error::{Error, Result};
use crate::userns::IdMap;

/// `path` inside `root` written to `out` as a tar stream whose top entry is named `name` (and
/// what a directory holds, `name/...`).
pub fn pack(root: BorrowedFd<'_>, path: &Path, name: &Path, out: impl Write) -> Result<()> {
    pack_as(root, path, (name, None), out)
}

/// [`pack`] from the root of a container with a user namespace of its own (`userns`): owners
/// are written as the container's ids.
pub(super) fn pack_as(
    root: BorrowedFd<'_>,
    path: &Path,
    (name, userns): (&Path, Option<IdMap>),
    out: impl Write,
) -> Result<()> {
    let (dir, leaf) = open_parent(root, path)?;
    let mut tar = Packer {
        builder: tar::Builder::new(out),
        links: HashMap::new(),
        userns,
    };
    tar.entry(dir.as_fd(), &leaf, name)?;
    tar.builder
        .into_inner()
        .and_then(|mut out| out.flush())
        .map_err(Error::io("write the tar stream of", path))
}

struct Packer<W: Write> {
    builder: tar::Builder<W>,
    /// The first name of each file with several links, by (device, inode).
    links: HashMap<(u64, u64), PathBuf>,
    userns: Option<IdMap>,
}

impl<W: Write> Packer<W> {
    /// The entry `leaf` of `dir`, named `name` in the stream.
    fn entry(&mut self, dir: BorrowedFd<'_>, leaf: &Path, name: &Path) -> Result<()> {
        let io = |step| Error::io(step, name);
        let st = lstat_at(dir, leaf).map_err(|e| io("stat")(e.into()))?;
        let mut header = header(&st, self.userns);
        match kind(&st) {
            SFlag::S_IFDIR => {
                header.set_entry_type(EntryType::Directory);
                header.set_size(0);
                self.builder
                    .append_data(&mut header, name, std::io::empty())
                    .map_err(io("write"))?;
                let fd = open_at(dir, leaf, OFlag::O_RDONLY | OFlag::O_DIRECTORY)
                    .map_err(|e| io("open")(e.into()))?;
                for child in names(fd.as_fd()).map_err(|e| io("read the directory")(e.into()))? {
                    self.entry(fd.as_fd(), &child, &name.join(&child))?;
                }
            }
            SFlag::S_IFREG => {
                let id = (st.st_dev, st.st_ino);
                if st.st_nlink > 1 {
                    if let Some(first) = self.links.get(&id) {
                        header.set_entry_type(EntryType::Link);
                        header.set_size(0);
                        let first = first.clone();
                        return self
                            .builder
                            .append_link(&mut header, name, first)
                            .map_err(io("write"));
                    }
                    self.links.insert(id, name.to_path_buf());
                }
                // The container may swap the name for something else since the lstat: a
                // device node it made (this host-root process, outside the container's device
                // cgroup, would run the driver's open and read the host's device), a FIFO
                // (which would hang the copy). Only the file stat'ed is opened for reading.
                let replaced = || {
                    io("open")(std::io::Error::other(
                        "it was replaced while being copied; copy it again",
                    ))
                };
                let path = open_at(dir, leaf, OFlag::O_PATH).map_err(|e| io("open")(e.into()))?;
                let (fd, now) = berth_sys::resolve::open_regular(
                    path.as_fd(),
                    OFlag::O_RDONLY | OFlag::O_NONBLOCK,
                )
                .map_err(|e| io("open")(e.into()))?
                .ok_or_else(replaced)?;
                if (now.st_dev, now.st_ino) != id {
                    return Err(replaced());
                }
                let mut header = self::header(&now, self.userns);
                header.set_entry_type(EntryType::Regular);
                let size = header.size().map_err(io("write"))?;
                self.builder
                    .append_data(&mut header, name, Exact::new(File::from(fd), size))
                    .map_err(io("write"))?;
            }
            SFlag::S_IFLNK => {
                let target =
                    nix::fcntl::readlinkat(dir, leaf).map_err(|e| io("read the link")(e.into()))?;
                header.set_entry_type(EntryType::Symlink);
                header.set_size(0);
                self.builder
                    .append_link(&mut header, name, Path::new(&target))
                    .map_err(io("write"))?;
            }
            t @ (SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO) => {
                header.set_entry_type(match t {
                    SFlag::S_IFCHR => EntryType::Char,
                    SFlag::S_IFBLK => EntryType::Block,
                    _ => EntryType::Fifo,
                });
                header.set_size(0);
                let rdev = st.st_rdev;
                let _ = header.set_device_major(libc::major(rdev));
                let _ = header.set_device_minor(libc::minor(rdev));
                self.builder
                    .append_data(&mut header, name, std::io::empty())
                    .map_err(io("write"))?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A file's content as its header announces it: exactly that many bytes, whatever the file
/// does meanwhile (the tar crate copies a reader to its end). What a file gains while it is
/// read is cut off, else a container growing a file during `cp` would have its bytes read as
/// the stream's next entries, files of its choosing in the host's destination; a file that
/// shrank is padded with zeros, as GNU tar pads it, so the stream stays in step.
struct Exact<R> {
    inner: R,
    left: u64,
    ended: bool,
}

impl<R: Read> Exact<R> {
    fn new(inner: R, size: u64) -> Self {
        Exact {
            inner,
            left: size,
            ended: false,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = if self.ended {
            0
        } else {
            self.inner.read(&mut buf[..want])?
        };
        let n = if n == 0 {
            self.ended = true;
            buf[..want].fill(0);
            want
        } else {
            n
        };
        self.left -= n as u64;
        Ok(n)
    }
}

fn header(st: &FileStat, userns: Option<IdMap>) -> Header {
    // A host id of the container's range is the container's id; any other is nobody's to it.
    let id = |host: u32| match userns {
        Some(map) => host
            .checked_sub(map.host_id)
            .filter(|n| *n < map.size)
            .unwrap_or(65_534),
        None => host,
    };
    let mut h = Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(id(st.st_uid)));
    h.set_gid(u64::from(id(st.st_gid)));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(u64::try_from(st.st_size).unwrap_or(0));
    h
}

/// Opens `name` in `dir` without following a link there.
pub(super) fn open_at(
    dir: BorrowedFd<'_>,
    name: &Path,
    flags: OFlag,
) -> nix::Result<std::os::fd::OwnedFd> {
    nix::fcntl::openat(
        dir,
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// The names in a directory, without `.` and `..`, sorted (a stable stream).
pub(super) fn names(dir: BorrowedFd<'_>) -> nix::Result<Vec<PathBuf>> {
    let mut d = nix::dir::Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut out = Vec::new();
    for e in d.iter() {
        let n = e?.file_name().to_bytes().to_vec();
        if n != b"." && n != b".." {
            out.push(PathBuf::from(OsStr::from_bytes(&n)));
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(r: impl Read) -> Vec<u8> {
        let mut out = Vec::new();
        let mut r = r;
        r.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn exactly_the_announced_size_whatever_the_file_does() {
        // Grew: cut at the size.
        assert_eq!(all(Exact::new(&b"abcdefgh"[..], 3)), b"abc");
        // Shrank: padded with zeros.
        assert_eq!(all(Exact::new(&b"ab"[..], 5)), b"ab\0\0\0");
        assert_eq!(all(Exact::new(&b""[..], 0)), b"");
    }
}
