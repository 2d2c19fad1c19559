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

/// A descriptor made in the network namespace `netns` (a socket keeps the namespace it was
/// made in) by a forked child that enters it, so this process never leaves its own: rootless
/// berth could not come back to the host's network namespace, which belongs to the host's
/// user namespace. `make` runs in the child only. Refused, as every fork, in a threaded process.
pub fn make_in_netns<T: std::os::fd::AsFd>(
    netns: BorrowedFd<'_>,
    make: impl FnOnce() -> io::Result<T>,
) -> io::Result<std::os::fd::OwnedFd> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use std::os::fd::AsFd;
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    match crate::process::fork()? {
        crate::process::Forked::Child => {
            drop(ours);
            let sent = setns(netns, CLONE_NEWNET)
                .and_then(|()| make())
                .and_then(|made| crate::fd::send_with_fds(theirs.as_fd(), b"fd", &[made.as_fd()]));
            if let Err(e) = sent {
                let _ = crate::fd::send_with_fds(theirs.as_fd(), e.to_string().as_bytes(), &[]);
            }
            crate::process::exit_now(0);
        }
        crate::process::Forked::Parent(pid) => {
            drop(theirs);
            let mut buf = Vec::with_capacity(4096);
            let got = crate::fd::recv_message_with_fds(ours.as_fd(), &mut buf);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            let mut fds = got?;
            fds.pop().ok_or_else(|| {
                let why = String::from_utf8_lossy(&buf).into_owned();
                io::Error::other(format!("in the network namespace: {why}"))
            })
        }
    }
}

/// A user namespace with these mappings (`/proc/PID/uid_map` lines, "inside outside count"),
/// as an open `/proc/PID/ns/user`: what `mount_setattr(MOUNT_ATTR_IDMAP)` takes. A child is
/// cloned into a new user namespace, holds it while we write its maps and open it, and exits.
/// Safe in a process with threads: the child makes raw system calls only (close, read,
/// _exit) and touches no lock or allocation.
pub fn user_namespace(uid_map: &str, gid_map: &str) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::OwnedFd;
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let flags = (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_long;
    // SAFETY: clone without CLONE_VM or a stack duplicates the process as fork does. The
    // child runs only raw system calls on descriptors it already has (close, read, _exit):
    // it takes no lock another thread may hold and allocates nothing.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0, 0, 0, 0) };
    if pid == 0 {
        // The child waits for the parent to close its end of the pipe, then exits without
        // running any destructor.
        // SAFETY: closes our copy of a descriptor we own; `write` is never used again here.
        unsafe { libc::close(write.as_raw_fd()) };
        let mut byte = 0u8;
        // SAFETY: reads at most one byte into a live local byte.
        unsafe { libc::read(read.as_raw_fd(), (&mut byte as *mut u8).cast(), 1) };
        // SAFETY: ends the child at once, as it must (no destructor, no atexit handler).
        unsafe { libc::_exit(0) };
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    drop(read);
    let pid = pid as i32;
    let result = (|| {
        let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
        std::fs::write(proc.join("uid_map"), uid_map)?;
        std::fs::write(proc.join("gid_map"), gid_map)?;
        let ns = std::fs::File::open(proc.join("ns/user"))?;
        Ok(OwnedFd::from(ns))
    })();
    drop(write);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    result
}
