//! Docker's copy-up: a volume that is empty when its container starts, mounted where the image
//! has a directory, first gets a copy of that directory (its content, and its owner and mode
//! for the volume's root), unless the mount says `nocopy`.
//!
//! The image is not trusted: its directory is found inside the container's root with
//! `openat2(RESOLVE_IN_ROOT)`, and every entry below it is opened relative to its directory
//! with `O_NOFOLLOW`, so no symbolic link of the image is followed (links are copied as links).
//! The volume's directory is the engine's own. Regular files, directories, symbolic links and
//! fifos are copied with their owner, mode and times; device nodes and sockets are skipped;
//! hard links become separate files, and extended attributes are not copied.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use berth_sys::resolve::openat2;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fstat, fstatat, futimens, mkdirat, mknodat, utimensat, FileStat, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

use crate::error::{Error, Result};
use crate::userns::IdMap;

/// Deeper than any real image; a deeper tree is refused rather than risk the stack.
const MAX_DEPTH: usize = 256;

/// Copies `target` of the root `rootfs` into the volume directory `data` if `data` is empty
/// and the image has a directory there. Returns whether it copied. One copy at a time per
/// volume (a lock on the volume's own directory, the parent of `data`): a second container
/// starting on the same empty volume waits, then finds it filled. A copy that fails removes
/// what it made, so the next start tries again instead of running on half the files.
pub fn populate(rootfs: &Path, target: &str, data: &Path) -> Result<bool> {
    populate_as(rootfs, target, data, None)
}

/// [`populate`] for a container with a user namespace of its own, whose root shows the image's
/// owners as host ids of its range (`userns`): those are stored as the container's ids, as the
/// container's idmapped mount of the volume shows them (`idmap::volume`).
pub fn populate_as(
    rootfs: &Path,
    target: &str,
    data: &Path,
    userns: Option<IdMap>,
) -> Result<bool> {
    let fail = |step: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |e: Errno| Error::Io {
            step,
            path,
            source: e.into(),
        }
    };
    let volume = data.parent().unwrap_or(data);
    let lock = std::fs::File::open(volume).map_err(Error::io("open volume", volume))?;
    lock.lock().map_err(Error::io("lock volume", volume))?;
    let mut entries = std::fs::read_dir(data).map_err(Error::io("read volume", data))?;
    if entries.next().is_some() {
        return Ok(false);
    }
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail("open the container's root", rootfs))?;
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let inside = target.trim_start_matches('/');
    let src = match openat2(&root, if inside.is_empty() { "." } else { inside }, how) {
        Ok(fd) => fd,
        // Nothing (or no directory) there in the image: nothing to copy.
        Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(false),
        Err(e) => return Err(fail("open the image's directory", &rootfs.join(inside))(e)),
    };
    let dst = nix::fcntl::open(
        data,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail("open volume", data))?;
    let copied = copy_dir(src.as_fd(), dst.as_fd(), Path::new(""), 0, userns).and_then(|()| {
        let st = fstat(&src).map_err(|e| Failed::at("fstat", Path::new("."), e))?;
        let st = unshift(st, userns);
        set_attrs(dst.as_fd(), &st)
            .map_err(|e| Failed::at("set the owner and mode of", Path::new("."), e))
    });
    if let Err(failed) = copied {
        empty(data);
        return Err(Error::Io {
            step: "copy the image's files into the volume (copy-up)",
            path: data.join(&failed.entry),
            source: std::io::Error::other(format!("{}: {}", failed.call, failed.errno)),
        });
    }
    Ok(true)
}

/// Removes what a failed copy made in the volume directory `data` (its entries, not it).
/// std's remove_dir_all does not follow symbolic links.
fn empty(data: &Path) {
    let Ok(entries) = std::fs::read_dir(data) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let _ = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
    }
}

/// Which entry (relative to the copied directory) and which call failed.
struct Failed {
    entry: std::path::PathBuf,
    call: &'static str,
    errno: Errno,
}

impl Failed {
    fn at(call: &'static str, entry: &Path, errno: Errno) -> Failed {
        Failed {
            entry: entry.to_path_buf(),
            call,
            errno,
        }
    }
}

type Copied = std::result::Result<(), Failed>;

/// Copies the entries of `src` into `dst` (both directories, `at` below the copy's top),
/// recursively.
fn copy_dir(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    at: &Path,
    depth: usize,
    userns: Option<IdMap>,
) -> Copied {
    if depth > MAX_DEPTH {
        return Err(Failed::at("descend (too deep)", at, Errno::ELOOP));
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let listing =
        openat(src, ".", flags, Mode::empty()).map_err(|e| Failed::at("openat", at, e))?;
    let mut dir = nix::dir::Dir::from_fd(listing).map_err(|e| Failed::at("fdopendir", at, e))?;
    for entry in dir.iter() {
        let entry = entry.map_err(|e| Failed::at("readdir", at, e))?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let here = at.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
        let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .map_err(|e| Failed::at("fstatat", &here, e))?;
        let st = unshift(st, userns);
        copy_entry(src, dst, name, &st).map_err(|(call, e)| Failed::at(call, &here, e))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
            copy_subdir(src, dst, name, &st, &here, (depth, userns))?;
        }
    }
    Ok(())
}

/// A directory's entries, then its owner, mode and times (after them, so a read-only mode
/// does not stop the copy).
fn copy_subdir(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    st: &FileStat,
    here: &Path,
    (depth, userns): (usize, Option<IdMap>),
) -> Copied {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let from =
        openat(src, name, flags, Mode::empty()).map_err(|e| Failed::at("openat", here, e))?;
    let to = openat(dst, name, flags, Mode::empty()).map_err(|e| Failed::at("openat", here, e))?;
    copy_dir(from.as_fd(), to.as_fd(), here, depth + 1, userns)?;
    set_attrs(to.as_fd(), st).map_err(|e| Failed::at("set the owner and mode of", here, e))
}

/// Makes the entry `name` of `src`, whose status is `st`, in `dst` (a directory empty, to be
/// filled by the caller). The error names the call that failed.
fn copy_entry(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    st: &FileStat,
) -> std::result::Result<(), (&'static str, Errno)> {
    let nofollow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFDIR => {
            mkdirat(dst, name, Mode::from_bits_truncate(0o700)).map_err(|e| ("mkdirat", e))
        }
        SFlag::S_IFREG => {
            let from = openat(src, name, OFlag::O_RDONLY | nofollow, Mode::empty())
                .map_err(|e| ("openat", e))?;
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | nofollow;
            let to = openat(dst, name, flags, Mode::from_bits_truncate(0o600))
                .map_err(|e| ("openat (create)", e))?;
            let (mut from, mut to) = (std::fs::File::from(from), std::fs::File::from(to));
            std::io::copy(&mut from, &mut to).map_err(|e| {
                (
                    "copy_file_range",
                    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
                )
            })?;
            set_attrs(OwnedFd::from(to).as_fd(), st).map_err(|e| ("set the owner and mode", e))
        }
        SFlag::S_IFLNK => {
            let link = nix::fcntl::readlinkat(src, name).map_err(|e| ("readlinkat", e))?;
            symlinkat(link.as_os_str(), dst, name).map_err(|e| ("symlinkat", e))?;
            chown_at(dst, name, st).map_err(|e| ("fchownat", e))?;
            let (atime, mtime) = times(st);
            utimensat(dst, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
                .map_err(|e| ("utimensat", e))
        }
        SFlag::S_IFIFO => {
            mknodat(
                dst,
                name,
                SFlag::S_IFIFO,
                Mode::from_bits_truncate(0o600),
                0,
            )
            .map_err(|e| ("mknodat", e))?;
            // Through a descriptor of the fifo itself: a process sharing the volume could
            // have put a link in its place.
            let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | nofollow;
            let fifo = openat(dst, name, flags, Mode::empty()).map_err(|e| ("openat", e))?;
            let kind = fstat(&fifo).map_err(|e| ("fstat", e))?.st_mode;
            if SFlag::from_bits_truncate(kind) & SFlag::S_IFMT != SFlag::S_IFIFO {
                return Err(("fstat (not the fifo made)", Errno::EEXIST));
            }
            set_attrs(fifo.as_fd(), st).map_err(|e| ("set the owner and mode", e))
        }
        // Device nodes and sockets: not carried into a host directory.
        _ => Ok(()),
    }
}

/// The status with the owner as the container sees it: a host id of its range becomes the
/// container's id; any other (unmapped in the container) is left as it is.
fn unshift(mut st: FileStat, userns: Option<IdMap>) -> FileStat {
    if let Some(map) = userns {
        let back = |id: u32| match id.checked_sub(map.host_id) {
            Some(n) if n < map.size => n,
            _ => id,
        };
        st.st_uid = back(st.st_uid);
        st.st_gid = back(st.st_gid);
    }
    st
}

/// Owner first (a chown clears set-id bits), then mode, then times, on an open file.
fn set_attrs(fd: BorrowedFd<'_>, st: &FileStat) -> nix::Result<()> {
    fchown(
        fd,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    fchmod(fd, mode_of(st))?;
    let (atime, mtime) = times(st);
    futimens(fd, &atime, &mtime)
}

fn chown_at(dir: BorrowedFd<'_>, name: &std::ffi::CStr, st: &FileStat) -> nix::Result<()> {
    fchownat(
        dir,
        name,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
}

fn mode_of(st: &FileStat) -> Mode {
    Mode::from_bits_truncate(st.st_mode & 0o7777)
}

fn times(st: &FileStat) -> (TimeSpec, TimeSpec) {
    (
        TimeSpec::new(st.st_atime, st.st_atime_nsec),
        TimeSpec::new(st.st_mtime, st.st_mtime_nsec),
    )
}
