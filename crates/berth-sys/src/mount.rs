//! mount_setattr(2) (Linux 5.12), which nix does not wrap: attributes set on a whole tree of
//! mounts in one call, where mount(2) needs a remount per mount.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `struct mount_attr` of linux/mount.h (MOUNT_ATTR_SIZE_VER0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const ATTR_RDONLY: u64 = 0x1;
pub const ATTR_NOSUID: u64 = 0x2;
pub const ATTR_NODEV: u64 = 0x4;
pub const ATTR_NOEXEC: u64 = 0x8;
/// The access-time mode, a field rather than flags: setting one of the modes below needs the
/// whole field in the bits to clear.
pub const ATTR_ATIME: u64 = 0x70;
pub const ATTR_RELATIME: u64 = 0x0;
pub const ATTR_NOATIME: u64 = 0x10;
pub const ATTR_STRICTATIME: u64 = 0x20;
pub const ATTR_NODIRATIME: u64 = 0x80;
/// Linux 5.14.
pub const ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

/// Sets the `ATTR_*` bits in `attrs` on the mount whose root `mount_root` is, and on every
/// mount below it. ENOSYS before Linux 5.12; EINVAL when `mount_root` is not a mount's root.
pub fn set_recursive(mount_root: BorrowedFd<'_>, attrs: u64) -> io::Result<()> {
    setattr_recursive(mount_root, attrs, 0)
}

/// Sets the `ATTR_*` bits in `attrs` on the mount at `path` alone (no mount below it), the
/// others as they are: a read-only remount in one call, without the statfs a remount needs to
/// keep a mount's locked flags. ENOSYS before Linux 5.12; EINVAL when `path` is not a mount's
/// root.
pub fn set_at(path: &Path, attrs: u64) -> io::Result<()> {
    let path = CString::new(path.as_os_str().as_bytes())?;
    mount_setattr(libc::AT_FDCWD, &path, 0, &MountAttr::new(attrs, 0, 0))
}

/// Sets the `ATTR_*` bits of `set` and clears those of `clear` on the mount whose root
/// `mount_root` is, and on every mount below it, all or none. ENOSYS before Linux 5.12;
/// EINVAL for a bit this kernel does not know or when `mount_root` is not a mount's root;
/// EPERM for a flag locked on one of the mounts (inherited into a user namespace).
pub fn setattr_recursive(mount_root: BorrowedFd<'_>, set: u64, clear: u64) -> io::Result<()> {
    mount_setattr(
        mount_root.as_raw_fd(),
        c"",
        libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
        &MountAttr::new(set, clear, 0),
    )
}

impl MountAttr {
    fn new(attr_set: u64, attr_clr: u64, userns_fd: u64) -> Self {
        MountAttr {
            attr_set,
            attr_clr,
            propagation: 0,
            userns_fd,
        }
    }
}

/// mount_setattr(2) of `path` relative to `dirfd`.
fn mount_setattr(
    dirfd: RawFd,
    path: &CStr,
    flags: libc::c_int,
    attr: &MountAttr,
) -> io::Result<()> {
    // SAFETY: mount_setattr reads a NUL-terminated path alive for the call and
    // `size_of::<MountAttr>()` bytes from a live, properly laid out `struct mount_attr`; it
    // writes no user memory. A descriptor in `dirfd` is the caller's, borrowed for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Linux 5.12: the mount shows its files' owners through a user namespace's id mappings.
pub const ATTR_IDMAP: u64 = 0x0010_0000;
const OPEN_TREE_CLONE: u32 = 1;
const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

/// An error of the step `what`, the kernel's error kept.
fn step(what: &'static str) -> impl Fn(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// A detached clone of the mount tree at `source` (open_tree(2) with OPEN_TREE_CLONE; only
/// the top mount without `recursive`), owned by the returned descriptor.
fn clone_tree(source: &Path, recursive: bool) -> io::Result<OwnedFd> {
    let source = CString::new(source.as_os_str().as_bytes())?;
    let recursive = if recursive {
        libc::AT_RECURSIVE as u32
    } else {
        0
    };
    // SAFETY: open_tree reads a NUL-terminated path alive for the call and returns a new
    // descriptor (or -1), which we own from here on.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            source.as_ptr(),
            OPEN_TREE_CLONE | recursive | libc::O_CLOEXEC as u32,
        )
    };
    if fd < 0 {
        return Err(step("open_tree")(io::Error::last_os_error()));
    }
    // SAFETY: fd is a fresh descriptor no one else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the detached `tree` at `path` relative to `dirfd` (move_mount(2); with
/// MOVE_MOUNT_T_EMPTY_PATH in `flags`, at `dirfd` itself).
fn move_mount(tree: &OwnedFd, dirfd: RawFd, path: &CStr, flags: u32) -> io::Result<()> {
    // SAFETY: move_mount reads two NUL-terminated paths alive for the call; the descriptors
    // are borrowed for it.
    let r = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            dirfd,
            path.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | flags,
        )
    };
    if r == -1 {
        return Err(step("move_mount")(io::Error::last_os_error()));
    }
    Ok(())
}

/// Mounts the tree at `source` (not what is mounted below it) at `target`, idmapped through
/// the user namespace `userns`: a file owned by id N on disk shows as the host id that N maps
/// to there, and a host id written through the mount is stored as the namespace's id. Errors
/// as the kernel gives them, with the step: `open_tree` (ENOSYS before 5.2), `mount_setattr`
/// (EINVAL where the filesystem cannot be idmapped, ENOSYS before 5.12), `move_mount`.
pub fn bind_idmapped(source: &Path, userns: BorrowedFd<'_>, target: &Path) -> io::Result<()> {
    let target = CString::new(target.as_os_str().as_bytes())?;
    let tree = clone_tree(source, false)?;
    let attr = MountAttr::new(ATTR_IDMAP, 0, userns.as_raw_fd() as u64);
    mount_setattr(tree.as_raw_fd(), c"", libc::AT_EMPTY_PATH, &attr)
        .map_err(step("mount_setattr MOUNT_ATTR_IDMAP"))?;
    move_mount(&tree, libc::AT_FDCWD, &target, 0)
}

/// A recursive bind of `source` attached at `target` (a descriptor, `O_PATH` will do: the very
/// directory or file it holds, whatever its path leads to meanwhile), read-only from its
/// first moment when `read_only` (every mount of the tree): the tree is cloned detached
/// (`open_tree`), given its attributes there (`mount_setattr`), then attached (`move_mount`),
/// so no walk to the target happens after the mount and no writable instant exists.
pub fn bind_tree(source: &Path, target: BorrowedFd<'_>, read_only: bool) -> io::Result<()> {
    let tree = clone_tree(source, true)?;
    if read_only {
        setattr_recursive(tree.as_fd(), ATTR_RDONLY, 0)
            .map_err(step("mount_setattr MOUNT_ATTR_RDONLY"))?;
    }
    move_mount(&tree, target.as_raw_fd(), c"", MOVE_MOUNT_T_EMPTY_PATH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn an_idmapped_bind_shows_shifted_owners_and_overlay_takes_it() {
        if !nix::unistd::geteuid().is_root() {
            crate::skip!("needs root to mount");
        }
        let base = std::env::temp_dir().join(format!("berth-sys-idmap-{}", std::process::id()));
        let [lower, view, upper, work, root] =
            ["lower", "view", "upper", "work", "root"].map(|d| base.join(d));
        for d in [&lower, &view, &upper, &work, &root] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(lower.join("f"), "x").unwrap();
        let ns = crate::ns::user_namespace("0 300000 1000\n", "0 300000 1000\n").unwrap();
        bind_idmapped(&lower, ns.as_fd(), &view).unwrap();
        let md = std::fs::metadata(view.join("f")).unwrap();
        assert_eq!((md.uid(), md.gid()), (300_000, 300_000));
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            view.display(),
            upper.display(),
            work.display()
        );
        let mounted = nix::mount::mount(
            Some("overlay"),
            &root,
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        );
        // The overlay keeps its own clone of the layer: the view can go at once.
        let _ = nix::mount::umount2(&view, nix::mount::MntFlags::MNT_DETACH);
        mounted.unwrap();
        assert_eq!(std::fs::metadata(root.join("f")).unwrap().uid(), 300_000);
        std::fs::write(root.join("f"), "y").unwrap();
        let up = std::fs::metadata(upper.join("f")).unwrap();
        assert_eq!(
            (up.uid(), up.gid()),
            (300_000, 300_000),
            "copied up shifted"
        );
        assert_eq!(std::fs::metadata(lower.join("f")).unwrap().uid(), 0);
        nix::mount::umount2(&root, nix::mount::MntFlags::MNT_DETACH).unwrap();
        std::fs::remove_dir_all(&base).unwrap();
    }
}
