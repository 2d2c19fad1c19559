//! Namespaces: unshare and setns with raw flag sets, including CLONE_NEWTIME and pidfd targets.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

pub use libc::{
    CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWTIME,
    CLONE_NEWUSER, CLONE_NEWUTS,
};

/// `unshare(2)` with any combination of `CLONE_NEW*` flags.
pub fn unshare(flags: i32) -> io::Result<()> {
    // SAFETY: unshare takes a plain integer and touches no memory of ours.
    let rc = unsafe { libc::unshare(flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `setns(2)`: `fd` is a namespace file (`/proc/PID/ns/KIND`) with `nstype` one flag or 0, or a
/// pidfd with `nstype` the set of namespaces to join at once.
pub fn setns(fd: BorrowedFd<'_>, nstype: i32) -> io::Result<()> {
    // SAFETY: fd is a live descriptor borrowed for the call; setns reads no memory of ours.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), nstype) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `setdomainname(2)` (nix has sethostname only).
pub fn setdomainname(name: &str) -> io::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes, alive for the call; the kernel
    // copies at most `len` bytes and needs no terminating NUL.
    let rc = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
