//! Writing into an image's root from the host: every path is resolved inside the root
//! (`openat2(RESOLVE_IN_ROOT)`, so an image's symlink leads somewhere in the image, never out of
//! it) and every entry is made relative to its directory's descriptor without following links.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use berth_sys::resolve::openat2;
use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{
    fchmod, fchmodat, futimens, mkdirat, mknodat, utimensat, FchmodatFlags, Mode, SFlag,
    UtimensatFlags,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

/// Who owns what a step makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// How copied entries are made: their owner (None keeps the source's), their mode (`--chmod`),
/// and which source paths are left out (`.dockerignore`).
#[derive(Clone, Copy, Default)]
pub struct Attrs<'a> {
    pub skip: Option<&'a dyn Fn(&Path) -> bool>,
    pub owner: Option<Owner>,
    pub chmod: Option<u32>,
    /// SOURCE_DATE_EPOCH or now: the time of directories the copy creates.
    pub now: i64,
}

/// A directory taken as `/`.
pub struct Root {
    fd: OwnedFd,
    pub path: PathBuf,
}

fn errno(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// The normal components of `path` (`..` kept: the kernel keeps it inside the root).
fn rel(path: &Path) -> PathBuf {
    let parts: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect();
    if parts.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        parts
    }
}

impl Root {
    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        Ok(Root {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// `path` resolved in the root, links followed inside it.
    pub fn resolve(&self, path: &Path, flags: OFlag) -> io::Result<OwnedFd> {
        let how = OpenHow::new()
            .flags(flags | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        openat2(&self.fd, &rel(path), how).map_err(errno)
    }

    /// The host path of `path` resolved in the root, for reading (the root is not changed
    /// meanwhile: a context, a stage's layers or a mount made for this step).
    pub fn real_path(&self, path: &Path) -> io::Result<PathBuf> {
        let fd = self.resolve(path, OFlag::O_PATH)?;
        std::fs::read_link(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&fd)
        ))
    }

    /// Whether `path` exists in the root and is a directory (links followed inside).
    pub fn is_dir(&self, path: &Path) -> bool {
        self.resolve(path, OFlag::O_PATH | OFlag::O_DIRECTORY)
            .is_ok()
    }

    /// `mkdir -p` in the root: missing directories made 0755 with `owner`, times `now`; a
    /// link on the way that leads nowhere yet has what it names made, in the root, as
    /// Docker's scoped MkdirAll makes it (`/esc -> /x/y`: COPY f /esc/f makes /x/y).
    pub fn mkdir_all(&self, path: &Path, owner: Owner, now: i64) -> io::Result<OwnedFd> {
        self.mkdir_all_links(path, owner, now, 0)
    }

    fn mkdir_all_links(
        &self,
        path: &Path,
        owner: Owner,
        now: i64,
        links: usize,
    ) -> io::Result<OwnedFd> {
        // The kernel's bound on links followed in one path.
        const MAX_LINKS: usize = 40;
        let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        let parts: Vec<_> = rel(path)
            .components()
            .map(|c| c.as_os_str().to_owned())
            .collect();
        let mut prefix = PathBuf::new();
        for part in parts.iter().filter(|p| *p != ".") {
            let parent = self.resolve(
                if prefix.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    &prefix
                },
                dir_flags,
            )?;
            prefix.push(part);
            match self.resolve(&prefix, dir_flags) {
                Ok(_) => continue,
                Err(e) if e.raw_os_error() != Some(Errno::ENOENT as i32) => return Err(e),
                Err(_) => {}
            }
            if let Ok(target) = nix::fcntl::readlinkat(&parent, part.as_os_str()) {
                if links >= MAX_LINKS {
                    return Err(errno(Errno::ELOOP));
                }
                let base = match Path::new(&target).is_absolute() {
                    true => PathBuf::new(),
                    false => prefix.parent().map(Path::to_path_buf).unwrap_or_default(),
                };
                self.mkdir_all_links(&base.join(&target), owner, now, links + 1)?;
                continue;
            }
            mkdirat(&parent, part.as_os_str(), Mode::from_bits_truncate(0o755)).map_err(errno)?;
            let made = openat(
                &parent,
                part.as_os_str(),
                dir_flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno)?;
            fchown(
                &made,
                Some(Uid::from_raw(owner.uid)),
                Some(Gid::from_raw(owner.gid)),
            )
            .map_err(errno)?;
            fchmod(&made, Mode::from_bits_truncate(0o755)).map_err(errno)?;
            let t = TimeSpec::new(now, 0);
            futimens(&made, &t, &t).map_err(errno)?;
        }
        self.resolve(path, dir_flags)
    }
}

/// Copies the host entry `src` (not followed if a link) as `name` in the directory `dst` of
/// `root` (`dst_path` its path there), a directory's entries recursively.
pub fn copy(
    root: &Root,
    src: &Path,
    dst: BorrowedFd<'_>,
    dst_path: &Path,
    name: &OsStr,
    attrs: &Attrs,
) -> io::Result<()> {
    let meta = std::fs::symlink_metadata(src)?;
    let kind = meta.file_type();
    let existing = nix::sys::stat::fstatat(dst, name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
    let existing_dir = existing
        .is_some_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR);
    if existing.is_some() && !(kind.is_dir() && existing_dir) {
        remove(dst, name, existing_dir)?;
    }
    let owner = attrs.owner.unwrap_or(Owner {
        uid: meta.uid(),
        gid: meta.gid(),
    });
    let mode = attrs.chmod.unwrap_or(meta.mode() & 0o7777);
    let (atime, mtime) = (
        TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
        TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
    );
    if kind.is_dir() {
        if !existing_dir {
            mkdirat(dst, name, Mode::from_bits_truncate(0o700)).map_err(errno)?;
        }
        let here = dst_path.join(name);
        let sub = root.resolve(&here, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
        copy_children(root, src, &sub, &here, attrs)?;
        return set_attrs(sub.as_fd(), owner, mode, (atime, mtime));
    }
    let nofollow = OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if kind.is_file() {
        let fd = openat(
            dst,
            name,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | nofollow,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(errno)?;
        let mut to = File::from(fd);
        io::copy(&mut File::open(src)?, &mut to)?;
        return set_attrs(to.as_fd(), owner, mode, (atime, mtime));
    }
    if kind.is_symlink() {
        let target = std::fs::read_link(src)?;
        symlinkat(target.as_os_str(), dst, name).map_err(errno)?;
        fchownat(
            dst,
            name,
            Some(Uid::from_raw(owner.uid)),
            Some(Gid::from_raw(owner.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(errno)?;
        return utimensat(dst, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink)
            .map_err(errno);
    }
    make_node(dst, name, &meta, owner, mode, (atime, mtime))
}

/// A fifo or device node like `meta` as `name` in `dst`; a socket is not copied.
fn make_node(
    dst: BorrowedFd<'_>,
    name: &OsStr,
    meta: &std::fs::Metadata,
    owner: Owner,
    mode: u32,
    (atime, mtime): (TimeSpec, TimeSpec),
) -> io::Result<()> {
    let kind = meta.file_type();
    let sflag = if kind.is_fifo() {
        SFlag::S_IFIFO
    } else if kind.is_char_device() {
        SFlag::S_IFCHR
    } else if kind.is_block_device() {
        SFlag::S_IFBLK
    } else {
        return Ok(());
    };
    mknodat(
        dst,
        name,
        sflag,
        Mode::from_bits_truncate(0o600),
        meta.rdev(),
    )
    .map_err(errno)?;
    let (uid, gid) = (Uid::from_raw(owner.uid), Gid::from_raw(owner.gid));
    fchownat(
        dst,
        name,
        Some(uid),
        Some(gid),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(errno)?;
    fchmodat(
        dst,
        name,
        Mode::from_bits_truncate(mode),
        FchmodatFlags::NoFollowSymlink,
    )
    .map_err(errno)?;
    utimensat(dst, name, &atime, &mtime, UtimensatFlags::NoFollowSymlink).map_err(errno)
}

/// The entries of the host directory `src` into `dst` (at `dst_path` in `root`), in order.
pub fn copy_children(
    root: &Root,
    src: &Path,
    dst: &OwnedFd,
    dst_path: &Path,
    attrs: &Attrs,
) -> io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(src)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        if attrs.skip.is_some_and(|skip| skip(&src.join(&name))) {
            continue;
        }
        copy(root, &src.join(&name), dst.as_fd(), dst_path, &name, attrs)?;
    }
    Ok(())
}

/// Writes `content` as the file `name` in `dst`, replacing what is there.
pub fn write_file(
    dst: BorrowedFd<'_>,
    name: &OsStr,
    content: &[u8],
    owner: Owner,
    mode: u32,
    time: i64,
) -> io::Result<()> {
    if let Ok(st) = nix::sys::stat::fstatat(dst, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        remove(
            dst,
            name,
            SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR,
        )?;
    }
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(dst, name, flags, Mode::from_bits_truncate(0o600)).map_err(errno)?;
    let mut file = File::from(fd);
    io::Write::write_all(&mut file, content)?;
    let t = TimeSpec::new(time, 0);
    set_attrs(file.as_fd(), owner, mode, (t, t))
}

/// Creates the file `name` in `dst` (nothing may be there) with what `data` holds, mode 0600.
pub fn write_from(dst: BorrowedFd<'_>, name: &OsStr, data: &mut dyn io::Read) -> io::Result<()> {
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(dst, name, flags, Mode::from_bits_truncate(0o600)).map_err(errno)?;
    io::copy(data, &mut File::from(fd))?;
    Ok(())
}

/// Removes `name` from `dir`, a directory with everything below it.
pub fn remove(dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool) -> io::Result<()> {
    if !is_dir {
        return unlinkat(dir, name, UnlinkatFlags::NoRemoveDir).map_err(errno);
    }
    let sub = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(errno)?;
    let mut listing = nix::dir::Dir::from_fd(
        openat(
            &sub,
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?,
    )
    .map_err(errno)?;
    let mut children = Vec::new();
    for entry in listing.iter() {
        let entry = entry.map_err(errno)?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            let is_dir = entry.file_type() == Some(nix::dir::Type::Directory);
            children.push((OsStr::from_bytes(n).to_owned(), is_dir));
        }
    }
    for (child, child_dir) in children {
        remove(sub.as_fd(), &child, child_dir)?;
    }
    unlinkat(dir, name, UnlinkatFlags::RemoveDir).map_err(errno)
}

/// Gives the directory `fd` the attributes of the source `meta` as a copy would.
pub fn copy_attrs(fd: BorrowedFd<'_>, meta: &std::fs::Metadata, attrs: &Attrs) -> io::Result<()> {
    let owner = attrs.owner.unwrap_or(Owner {
        uid: meta.uid(),
        gid: meta.gid(),
    });
    let mode = attrs.chmod.unwrap_or(meta.mode() & 0o7777);
    let t = TimeSpec::new(meta.mtime(), meta.mtime_nsec());
    set_attrs(fd, owner, mode, (t, t))
}

/// Owner first (a chown clears set-id bits), then mode, then times.
fn set_attrs(
    fd: BorrowedFd<'_>,
    owner: Owner,
    mode: u32,
    (atime, mtime): (TimeSpec, TimeSpec),
) -> io::Result<()> {
    fchown(
        fd,
        Some(Uid::from_raw(owner.uid)),
        Some(Gid::from_raw(owner.gid)),
    )
    .map_err(errno)?;
    fchmod(fd, Mode::from_bits_truncate(mode)).map_err(errno)?;
    futimens(fd, &atime, &mtime).map_err(errno)
}
