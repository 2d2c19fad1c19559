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
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, fstat, fstatat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags,
    FileStat, Mode, SFlag, UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

use crate::error::{Error, Result};

/// Deeper than any real image; a deeper tree is refused rather than risk the stack.
const MAX_DEPTH: usize = 256;

/// Copies `target` of the root `rootfs` into the volume directory `data` if `data` is empty
/// and the image has a directory there. Returns whether it copied.
pub fn populate(rootfs: &Path, target: &str, data: &Path) -> Result<bool> {
    let fail = |step: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |e: Errno| Error::Io {
            step,
            path,
            source: e.into(),
        }
    };
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
    copy_dir(src.as_fd(), dst.as_fd(), 0).map_err(fail("copy the image's files into", data))?;
    let st = fstat(&src).map_err(fail("stat the image's directory", &rootfs.join(inside)))?;
    set_attrs(dst.as_fd(), &st).map_err(fail("set the owner and mode of", data))?;
    Ok(true)
}

/// Copies the entries of `src` into `dst` (both directories), recursively.
fn copy_dir(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, depth: usize) -> nix::Result<()> {
    if depth > MAX_DEPTH {
        return Err(Errno::ELOOP);
    }
    let listing = openat(
        src,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut dir = nix::dir::Dir::from_fd(listing)?;
    for entry in dir.iter() {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_bytes() == b"." || name.to_bytes() == b".." {
            continue;
        }
        let st = fstatat(src, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
        copy_entry(src, dst, name, &st, depth)?;
    }
    Ok(())
}

/// Copies the entry `name` of `src`, whose status is `st`, into `dst`.
fn copy_entry(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    st: &FileStat,
    depth: usize,
) -> nix::Result<()> {
    let nofollow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFDIR => {
            mkdirat(dst, name, Mode::from_bits_truncate(0o700))?;
            let from = openat(
                src,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow,
                Mode::empty(),
            )?;
            let to = openat(
                dst,
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | nofollow,
                Mode::empty(),
            )?;
            copy_dir(from.as_fd(), to.as_fd(), depth + 1)?;
            set_attrs(to.as_fd(), st)
        }
        SFlag::S_IFREG => {
            let from = openat(src, name, OFlag::O_RDONLY | nofollow, Mode::empty())?;
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | nofollow;
            let to = openat(dst, name, flags, Mode::from_bits_truncate(0o600))?;
            let (mut from, mut to) = (std::fs::File::from(from), std::fs::File::from(to));
            std::io::copy(&mut from, &mut to)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
            set_attrs(OwnedFd::from(to).as_fd(), st)
        }
        SFlag::S_IFLNK => {
            let link = nix::fcntl::readlinkat(src, name)?;
            symlinkat(link.as_os_str(), dst, name)?;
            chown_at(dst, name, st)?;
            let (atime, mtime) = times(st);
            utimensat(dst, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
        }
        SFlag::S_IFIFO => {
            mknodat(
                dst,
                name,
                SFlag::S_IFIFO,
                Mode::from_bits_truncate(0o600),
                0,
            )?;
            chown_at(dst, name, st)?;
            fchmodat(dst, name, mode_of(st), FchmodatFlags::FollowSymlink)?;
            let (atime, mtime) = times(st);
            utimensat(dst, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
        }
        // Device nodes and sockets: not carried into a host directory.
        _ => Ok(()),
    }
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
