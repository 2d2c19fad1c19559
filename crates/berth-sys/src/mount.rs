//! mount_setattr(2) (Linux 5.12), which nix does not wrap: attributes set on a whole tree of
//! mounts in one call, where mount(2) needs a remount per mount.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
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
    let attr = MountAttr {
        attr_set: attrs,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads a NUL-terminated path and `size_of::<MountAttr>()` bytes
    // from a live, properly laid out `struct mount_attr`; it writes no user memory.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            0,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sets the `ATTR_*` bits of `set` and clears those of `clear` on the mount whose root
/// `mount_root` is, and on every mount below it, all or none. ENOSYS before Linux 5.12;
/// EINVAL for a bit this kernel does not know or when `mount_root` is not a mount's root;
/// EPERM for a flag locked on one of the mounts (inherited into a user namespace).
pub fn setattr_recursive(mount_root: BorrowedFd<'_>, set: u64, clear: u64) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: clear,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: mount_setattr reads `size_of::<MountAttr>()` bytes from a live, properly laid
    // out `struct mount_attr` and an empty NUL-terminated path; it writes no user memory. The
    // descriptor is borrowed for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            mount_root.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
