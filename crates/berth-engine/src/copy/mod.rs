//! `cp`: a container's files as tar streams, both ways, as Docker's archive endpoints serve
//! them and both front ends use them (the API's GET/HEAD/PUT archive, the CLI's `cp`). Every
//! path inside a container is resolved from its root with `openat2(RESOLVE_IN_ROOT)`, and
//! what lies below is walked or made one name at a time relative to its directory, never
//! following a link: a link in the container (to `/`, to `../../..`) and a tar entry (`..`,
//! a link then a file through it) stay inside the root. The host side of the CLI's copies is
//! the same code with the host's destination as the root.
//!
//! A running container is reached through `/proc/<init>/root` (its own mount namespace:
//! volumes included); a stopped one through its overlay root, mounted for the copy with its
//! volumes and bind mounts on it, as Docker's daemon mounts them. Docker's refusals come
//! first: no extraction into a read-only volume, nor outside the volumes of a `--read-only`
//! container.

mod pack;
mod unpack;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use berth_runtime::rootfs::resolve;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};
use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records;
use crate::rootfs::{IsolatedRoot, StoppedRoot};

pub use pack::pack;
pub use unpack::{unpack, ExtractOptions};

/// What Docker's `X-Docker-Container-Path-Stat` says of a path (its `container.PathStat`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    /// Go's `os.FileMode`: the permission bits and Go's own type bits.
    pub mode: u32,
    /// RFC 3339 with nanoseconds.
    pub mtime: String,
    /// For a link, where it leads inside the root, every link on the way followed.
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Go's `os.FileMode` type bits, which Docker's clients test (`IsDir`, `ModeSymlink`).
pub mod go_mode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
}

impl PathStat {
    pub fn is_dir(&self) -> bool {
        self.mode & go_mode::DIR != 0
    }

    pub fn is_symlink(&self) -> bool {
        self.mode & go_mode::SYMLINK != 0
    }
}

/// A container's root opened for a copy; a stopped container's stays mounted until dropped.
pub struct ContainerRoot {
    fd: OwnedFd,
    /// The container as the caller named it: Docker's messages repeat that name.
    key: String,
    /// The container's user namespace, if it has one of its own: its files' owners are
    /// archived and extracted as its ids.
    userns: Option<crate::userns::IdMap>,
    /// What a copy may not write to, as Docker checks before it extracts.
    read_only: ReadOnly,
    /// What keeps a stopped container's root mounted (a [`StoppedRoot`], or an [`IsolatedRoot`]
    /// with its volumes), until dropped.
    _mounted: Option<Box<dyn Send + Sync>>,
}

/// The container's read-only places: its root (`--read-only`) outside its mounts, and its
/// read-only bind and volume mounts (their mount points, deepest first).
#[derive(Debug, Default)]
struct ReadOnly {
    rootfs: bool,
    mounts: Vec<(PathBuf, bool)>,
}

impl ReadOnly {
    fn of(record: &records::Record) -> ReadOnly {
        let mut mounts: Vec<(PathBuf, bool)> = record
            .request
            .mounts
            .iter()
            .filter(|m| m.is_host_path())
            .map(|m| (Path::new("/").join(&m.target), m.is_read_only()))
            .collect();
        mounts.sort_by_key(|(target, _)| std::cmp::Reverse(target.components().count()));
        ReadOnly {
            rootfs: record.request.read_only,
            mounts,
        }
    }

    /// Docker's refusals of an extraction at `at` (a path in the container, its links
    /// followed): into a read-only volume, or outside every volume of a read-only root.
    fn check(&self, at: &Path) -> Result<()> {
        match self
            .mounts
            .iter()
            .find(|(target, _)| at.starts_with(target))
        {
            Some((_, true)) => Err(Error::Invalid("mounted volume is marked read-only".into())),
            Some((_, false)) => Ok(()),
            None if self.rootfs => Err(Error::RootfsReadOnly),
            None => Ok(()),
        }
    }
}

impl ContainerRoot {
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The stat of `path` inside the root (Docker's 404 when it is missing).
    pub fn stat(&self, path: &str) -> Result<PathStat> {
        stat(self.fd(), Path::new(path)).map_err(|e| self.missing(path, e))
    }

    /// `path` as a tar stream on `out`, named as its last component (`.` for `dir/.`).
    pub fn archive(&self, path: &str, out: impl Write) -> Result<()> {
        let name = match base_name(path) {
            // The root itself: its contents.
            n if n == "/" => ".".to_string(),
            n => n,
        };
        self.archive_as(path, &name, out)
    }

    /// `path` as a tar stream on `out`, its top entry named `name`; owners as the container
    /// sees them.
    pub fn archive_as(&self, path: &str, name: &str, out: impl Write) -> Result<()> {
        let name = (Path::new(name), self.userns);
        pack::pack_as(self.fd(), Path::new(path), name, out).map_err(|e| self.missing(path, e))
    }

    /// The tar stream `input` extracted into the directory `dir`.
    pub fn extract(&self, dir: &str, input: impl Read, options: &ExtractOptions) -> Result<()> {
        resolve::open(self.fd(), Path::new(dir), OFlag::O_PATH)
            .map_err(|e| self.missing(dir, Error::io("open", dir)(e)))?;
        let at = follow_in_root(self.fd(), Path::new(dir))?;
        self.read_only.check(&at)?;
        let options = ExtractOptions {
            userns: self.userns,
            ..options.clone()
        };
        unpack(self.fd(), Path::new(dir), input, &options).map_err(|e| self.missing(dir, e))
    }

    /// A path's ENOENT as Docker says it.
    fn missing(&self, path: &str, e: Error) -> Error {
        match e {
            Error::Io { source, .. } if source.raw_os_error() == Some(libc::ENOENT) => {
                Error::NoSuchPath {
                    path: path.to_string(),
                    container: self.key.clone(),
                }
            }
            e => e,
        }
    }
}

/// Opens the root of container `key` for a copy: a running one's as its processes see it, a
/// stopped one's overlay mounted at a directory of its own (each copy its own: several may
/// run), its volumes and bind mounts on it (`StoppedRoot::mount_volumes`).
pub fn open_root(engine: &Engine, key: &str) -> Result<ContainerRoot> {
    open(engine, key, true)
}

/// [`open_root`] without a stopped container's volumes: its own files alone (`export`).
pub fn open_root_alone(engine: &Engine, key: &str) -> Result<ContainerRoot> {
    open(engine, key, false)
}

fn open(engine: &Engine, key: &str, volumes: bool) -> Result<ContainerRoot> {
    let record = crate::lifecycle::refresh(engine, engine.containers.find(key)?)?;
    let open_dir = |path: &Path| {
        nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open the container's root", path)(e.into()))
    };
    if let Some(pid) = crate::ns::live_pid(&record) {
        let fd = open_dir(Path::new(&format!("/proc/{pid}/root")))?;
        // The pid could have been recycled between the check and the open.
        if !records::alive(pid, record.state.pid_start) {
            return Err(Error::state(
                &record.id,
                "stopped during the copy: try again",
            ));
        }
        return Ok(ContainerRoot {
            fd,
            key: key.to_string(),
            userns: crate::userns::of(&record),
            read_only: ReadOnly::of(&record),
            _mounted: None,
        });
    }
    let userns = crate::userns::of(&record);
    let has_volumes = record.request.mounts.iter().any(|m| m.is_host_path());
    // A user namespace's volumes are idmapped for its start only, and rootless berth mounts
    // in its own namespace already: their copies see the root alone.
    let isolated =
        volumes && has_volumes && userns.is_none() && !berth_sys::rootless::is_rootless();
    let (fd, mounted) = if isolated {
        let mounted = IsolatedRoot::mount(engine, &record)?;
        (mounted.open()?, Box::new(mounted) as Box<dyn Send + Sync>)
    } else {
        let mounted = StoppedRoot::mount(engine, &record)?;
        (
            open_dir(&mounted.dir)?,
            Box::new(mounted) as Box<dyn Send + Sync>,
        )
    };
    Ok(ContainerRoot {
        fd,
        key: key.to_string(),
        userns,
        read_only: ReadOnly::of(&record),
        _mounted: Some(mounted),
    })
}

/// `copy_from`: the stat of `path` in container `key`, and its tar stream on `out`.
pub fn copy_from(engine: &Engine, key: &str, path: &str, out: impl Write) -> Result<PathStat> {
    let root = open_root(engine, key)?;
    let stat = root.stat(path)?;
    root.archive(path, out)?;
    Ok(stat)
}

/// `copy_to`: the tar stream `input` extracted into the directory `dir` of container `key`.
pub fn copy_to(
    engine: &Engine,
    key: &str,
    dir: &str,
    input: impl Read,
    options: &ExtractOptions,
) -> Result<()> {
    open_root(engine, key)?.extract(dir, input, options)
}

/// The last component of `path` as Docker names a copy's top entry: `.` for `dir/.`, `/` for
/// the root itself.
pub fn base_name(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".into();
    }
    Path::new(path)
        .file_name()
        .map_or_else(|| "/".into(), |n| n.to_string_lossy().into_owned())
}

/// The directory and last name of `path` (relative to the root); None as the name for the
/// root itself or `dir/.`, whose entry is the directory itself.
pub(crate) fn split(path: &Path) -> (PathBuf, Option<&std::ffi::OsStr>) {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    if bytes.ends_with(b"/.") || bytes == b"." {
        return (path.to_path_buf(), None);
    }
    match path.file_name() {
        Some(name) => (
            path.parent()
                .map_or_else(|| PathBuf::from("/"), Path::to_path_buf),
            Some(name),
        ),
        None => (path.to_path_buf(), None),
    }
}

/// The directory `path` names inside `root`, and the name of its entry there.
pub(crate) fn open_parent(root: BorrowedFd<'_>, path: &Path) -> Result<(OwnedFd, PathBuf)> {
    let (dir, name) = split(path);
    let fd = resolve::open(root, &dir, OFlag::O_PATH | OFlag::O_DIRECTORY)
        .map_err(Error::io("open the directory", &dir))?;
    Ok((fd, name.map_or_else(|| PathBuf::from("."), PathBuf::from)))
}

/// lstat of `name` in `dir`.
pub(crate) fn lstat_at(dir: BorrowedFd<'_>, name: &Path) -> nix::Result<FileStat> {
    nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
}

pub(crate) fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// The stat of `path` inside `root` (the path itself: a link is not followed, and where it
/// leads is its `link_target`).
pub fn stat(root: BorrowedFd<'_>, path: &Path) -> Result<PathStat> {
    let (dir, name) = open_parent(root, path)?;
    let st = lstat_at(dir.as_fd(), &name).map_err(|e| Error::io("stat", path)(e.into()))?;
    let link_target = if kind(&st) == SFlag::S_IFLNK {
        follow_in_root(root, path)?.to_string_lossy().into_owned()
    } else {
        String::new()
    };
    let mtime = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(st.st_mtime).unwrap_or(0),
            u32::try_from(st.st_mtime_nsec).unwrap_or(0),
        );
    Ok(PathStat {
        name: base_name(&path.to_string_lossy()),
        size: st.st_size,
        mode: go_file_mode(&st),
        mtime: humantime::format_rfc3339_nanos(mtime).to_string(),
        link_target,
    })
}

/// Go's `os.FileMode` for a stat.
fn go_file_mode(st: &FileStat) -> u32 {
    let mut mode = st.st_mode & 0o777;
    mode |= match kind(st) {
        SFlag::S_IFDIR => go_mode::DIR,
        SFlag::S_IFLNK => go_mode::SYMLINK,
        SFlag::S_IFBLK => go_mode::DEVICE,
        SFlag::S_IFCHR => go_mode::DEVICE | go_mode::CHAR_DEVICE,
        SFlag::S_IFIFO => go_mode::NAMED_PIPE,
        SFlag::S_IFSOCK => go_mode::SOCKET,
        _ => 0,
    };
    for (bit, go) in [
        (libc::S_ISUID, go_mode::SETUID),
        (libc::S_ISGID, go_mode::SETGID),
        (libc::S_ISVTX, go_mode::STICKY),
    ] {
        if st.st_mode & bit != 0 {
            mode |= go;
        }
    }
    mode
}

/// Links the kernel follows before giving up.
const MAX_LINKS: usize = 40;

/// Where `path` leads inside `root`, every link on the way followed as if `root` were `/`
/// (as far as it goes when one dangles): the absolute path Docker reports as a link's target.
fn follow_in_root(root: BorrowedFd<'_>, path: &Path) -> Result<PathBuf> {
    let mut done = PathBuf::from("/");
    let mut todo: Vec<PathBuf> = components(path).into_iter().rev().collect();
    let mut links = 0;
    while let Some(part) = todo.pop() {
        if part == Path::new("..") {
            done.pop();
            continue;
        }
        let dir = resolve::open(root, &done, OFlag::O_PATH | OFlag::O_DIRECTORY);
        let target = dir
            .ok()
            .and_then(|d| nix::fcntl::readlinkat(d.as_fd(), &part).ok());
        let Some(target) = target else {
            done.push(&part);
            continue;
        };
        links += 1;
        if links > MAX_LINKS {
            return Err(Error::io("follow the links of", path)(Errno::ELOOP.into()));
        }
        let target = PathBuf::from(target);
        if target.is_absolute() {
            done = PathBuf::from("/");
        }
        todo.extend(components(&target).into_iter().rev());
    }
    Ok(done)
}

/// The named components of `path` and its `..`s, without `/` and `.`.
fn components(path: &Path) -> Vec<PathBuf> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(PathBuf::from(s)),
            Component::ParentDir => Some(PathBuf::from("..")),
            _ => None,
        })
        .collect()
}

/// A host directory opened as the root of a copy's host side (the CLI's `cp`).
pub fn open_host_dir(path: &Path) -> Result<File> {
    let fd = nix::fcntl::open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::io("open the directory", path)(e.into()))?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_docker_gives_them() {
        assert_eq!(base_name("/etc/hosts"), "hosts");
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/etc/."), ".");
        assert_eq!(base_name("/"), "/");
        let hosts = std::ffi::OsStr::new("hosts");
        assert_eq!(
            split(Path::new("/etc/hosts")),
            (PathBuf::from("/etc"), Some(hosts))
        );
        assert_eq!(split(Path::new("/")).1, None);
        assert_eq!(split(Path::new("/etc/.")).1, None);
    }

    #[test]
    fn link_targets_are_followed_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = open_host_dir(dir.path()).unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("top")).unwrap();
        std::os::unix::fs::symlink("../../../etc/x", dir.path().join("up")).unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::os::unix::fs::symlink("x", dir.path().join("etc/y")).unwrap();
        let at = |p: &str| follow_in_root(root.as_fd(), Path::new(p)).unwrap();
        assert_eq!(at("/top/etc/y"), Path::new("/etc/x"));
        assert_eq!(at("/up"), Path::new("/etc/x"));
        let st = stat(root.as_fd(), Path::new("/up")).unwrap();
        assert!(st.is_symlink() && !st.is_dir());
        assert_eq!(st.link_target, "/etc/x");
        assert!(stat(root.as_fd(), Path::new("/etc")).unwrap().is_dir());
    }
}
