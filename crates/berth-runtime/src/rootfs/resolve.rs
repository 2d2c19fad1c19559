//! Paths inside a container's root, resolved with `openat2(RESOLVE_IN_ROOT)`: symlinks and `..`
//! are followed as if the root were `/`, so nothing resolves outside it (CVE-2021-30465).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use berth_sys::resolve::openat2;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;

/// The components of `path` below the root, with `.` dropped. `..` is kept: the kernel clamps
/// it at the root.
fn components(path: &Path) -> Vec<&std::ffi::OsStr> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            Component::ParentDir => Some(std::ffi::OsStr::new("..")),
            _ => None,
        })
        .collect()
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

/// Opens `path` inside `root` with `flags` (O_PATH for a mount target).
pub fn open(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    let rel: PathBuf = components(path).iter().collect();
    let rel = if rel.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        rel
    };
    Ok(openat2(root, &rel, how(flags))?)
}

/// What to create at the end of a mount destination that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    Dir,
    File,
}

/// Opens `path` inside `root` as an O_PATH descriptor, creating the missing directories and the
/// leaf (a directory or an empty file, mode 0755/0644) as needed.
pub fn create(root: BorrowedFd<'_>, path: &Path, leaf: Leaf) -> io::Result<OwnedFd> {
    create_depth(root, path, leaf, 0)
}

/// Symbolic links followed while creating, before giving up (the kernel's own limit is 40).
const MAX_LINKS: usize = 40;

fn create_depth(
    root: BorrowedFd<'_>,
    path: &Path,
    leaf: Leaf,
    depth: usize,
) -> io::Result<OwnedFd> {
    if depth > MAX_LINKS {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    match open(root, path, OFlag::O_PATH) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e),
    }
    let parts = components(path);
    let Some((last, dirs)) = parts.split_last() else {
        return open(root, path, OFlag::O_PATH);
    };
    let prefix: PathBuf = dirs.iter().collect();
    // Usually only the leaf is missing: its directory first, the walk from the root only when
    // that is missing too.
    let dir = match open(root, &prefix, OFlag::O_PATH | OFlag::O_DIRECTORY) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => create_dirs(root, dirs, depth)?,
        dir => dir?,
    };
    let name = Path::new(last);
    let made = match leaf {
        Leaf::Dir => nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o755)),
        Leaf::File => {
            let flags = OFlag::O_CREAT | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            nix::fcntl::openat(dir.as_fd(), name, flags, Mode::from_bits_truncate(0o644)).map(drop)
        }
    };
    match made {
        Ok(()) => {}
        // Something the first open did not find is there: a dangling symbolic link (an
        // image's /etc/resolv.conf -> ../run/systemd/resolve/stub-resolv.conf) gets what it
        // points to created, inside the root, as runc does after resolving the destination
        // with securejoin; anything else is opened (or refused) below.
        Err(Errno::EEXIST | Errno::ELOOP) => {
            if let Ok(target) = nix::fcntl::readlinkat(dir.as_fd(), name) {
                return create_depth(root, &prefix.join(target), leaf, depth + 1);
            }
        }
        Err(e) => return Err(e.into()),
    }
    open(root, path, OFlag::O_PATH)
}

/// Creates the directories `dirs` (a path below the root, component by component) where they
/// are missing, following dangling symbolic links inside the root: the last one, opened.
fn create_dirs(
    root: BorrowedFd<'_>,
    dirs: &[&std::ffi::OsStr],
    depth: usize,
) -> io::Result<OwnedFd> {
    let mut dir = open(root, Path::new("."), OFlag::O_PATH | OFlag::O_DIRECTORY)?;
    let mut prefix = PathBuf::new();
    for part in dirs {
        let parent = prefix.clone();
        prefix.push(part);
        dir = match open(root, &prefix, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                mkdir_at(dir.as_fd(), Path::new(part))?;
                match open(root, &prefix, OFlag::O_PATH | OFlag::O_DIRECTORY) {
                    Ok(fd) => fd,
                    // A dangling symlink: create its target, inside the root.
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                        let target = nix::fcntl::readlinkat(dir.as_fd(), Path::new(part))?;
                        let target = parent.join(target);
                        create_depth(root, &target, Leaf::Dir, depth + 1)?;
                        open(root, &prefix, OFlag::O_PATH | OFlag::O_DIRECTORY)?
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
    }
    Ok(dir)
}

fn mkdir_at(dir: BorrowedFd<'_>, name: &Path) -> io::Result<()> {
    match nix::sys::stat::mkdirat(dir, name, Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The `/proc/self/fd/N` path of a descriptor: mount(2) on it acts on the very file the
/// descriptor holds, whatever happens to the path afterwards.
pub fn fd_path(fd: &impl AsRawFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// True when `path` itself, inside `root`, is a symbolic link (its parents may be links).
pub fn is_symlink(root: BorrowedFd<'_>, path: &Path) -> io::Result<bool> {
    let parts = components(path);
    let Some((last, dirs)) = parts.split_last() else {
        return Ok(false);
    };
    let parent: PathBuf = dirs.iter().collect();
    // A name right below the root is looked up in the root itself.
    let opened;
    let dir = if parent.as_os_str().is_empty() {
        root
    } else {
        opened = match open(root, &parent, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(false),
            Err(e) => return Err(e),
        };
        opened.as_fd()
    };
    match nix::sys::stat::fstatat(
        dir,
        Path::new(last),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) => Ok(st.st_mode & libc::S_IFMT == libc::S_IFLNK),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root() -> (tempfile::TempDir, OwnedFd) {
        let dir = tempfile::tempdir().unwrap();
        let fd = nix::fcntl::open(
            dir.path(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        (dir, fd)
    }

    #[test]
    fn absolute_symlink_stays_inside_the_root() {
        let (dir, fd) = root();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), dir.path().join("evil")).unwrap();
        create(fd.as_fd(), Path::new("/evil/etc/passwd"), Leaf::File).unwrap();
        assert!(!outside.path().join("etc").exists(), "escaped the root");
        assert!(dir
            .path()
            .join(outside.path().strip_prefix("/").unwrap())
            .join("etc/passwd")
            .exists());
    }

    #[test]
    fn dotdot_is_clamped_at_the_root() {
        let (dir, fd) = root();
        create(fd.as_fd(), Path::new("../../../x/y"), Leaf::Dir).unwrap();
        assert!(dir.path().join("x/y").is_dir());
    }

    #[test]
    fn relative_symlink_chain_cannot_climb_out() {
        let (dir, fd) = root();
        symlink("../../../../..", dir.path().join("up")).unwrap();
        create(fd.as_fd(), Path::new("/up/tmp-berth-test-leaf"), Leaf::Dir).unwrap();
        assert!(dir.path().join("tmp-berth-test-leaf").is_dir());
        assert!(!Path::new("/tmp-berth-test-leaf").exists());
    }

    #[test]
    fn dangling_leaf_symlink_is_created_inside_the_root() {
        let (dir, fd) = root();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        symlink(
            "../run/resolve/stub.conf",
            dir.path().join("etc/resolv.conf"),
        )
        .unwrap();
        symlink(
            "../../../../tmp-berth-test-host-file",
            dir.path().join("etc/hosts"),
        )
        .unwrap();
        symlink("/srv/data", dir.path().join("data")).unwrap();
        create(fd.as_fd(), Path::new("/etc/resolv.conf"), Leaf::File).unwrap();
        create(fd.as_fd(), Path::new("/etc/hosts"), Leaf::File).unwrap();
        create(fd.as_fd(), Path::new("/data"), Leaf::Dir).unwrap();
        assert!(dir.path().join("run/resolve/stub.conf").is_file());
        assert!(dir.path().join("tmp-berth-test-host-file").is_file());
        assert!(
            !Path::new("/tmp-berth-test-host-file").exists(),
            "escaped the root"
        );
        assert!(dir.path().join("srv/data").is_dir());
        assert!(dir.path().join("etc/resolv.conf").is_symlink());
    }

    #[test]
    fn detects_a_symlinked_proc() {
        let (dir, fd) = root();
        symlink("/", dir.path().join("proc")).unwrap();
        assert!(is_symlink(fd.as_fd(), Path::new("/proc")).unwrap());
        assert!(!is_symlink(fd.as_fd(), Path::new("/sys")).unwrap());
    }
}
