//! Process creation and pidfds: fork from a single-threaded process, pidfd_open, signals.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// What `fork` returned on this side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// In the parent, with the child's pid.
    Parent(i32),
    /// In the child.
    Child,
}

/// Number of threads of this process, from `/proc/self/stat` (field 20).
pub fn thread_count() -> io::Result<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    rest.split_whitespace()
        .nth(17)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unreadable /proc/self/stat"))
}

/// `fork(2)` through glibc, refused when the process has more than one thread: a child forked
/// from a threaded process may inherit locks held by threads that do not exist in it.
pub fn fork() -> io::Result<Forked> {
    if thread_count()? != 1 {
        return Err(io::Error::other(
            "fork refused: the process has more than one thread",
        ));
    }
    // SAFETY: the process is single-threaded (checked above), so the child starts with a
    // consistent heap and no lock held by a thread that does not exist in it. glibc's fork also
    // resets its own cached thread state in the child.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// `pidfd_open(2)`: a descriptor that names the process for as long as it is held, immune to
/// pid reuse, and becomes readable when the process exits.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes two integers; on success it returns a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by the kernel, is valid and owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(2)` with no siginfo.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: a null siginfo is allowed (the kernel fills in SI_USER) and flags are 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `_exit(2)`: leave the forked child without running atexit handlers or flushing buffers that
/// belong to the parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and takes an integer.
    unsafe { libc::_exit(code) }
}

/// Gives the heap's free memory back to the kernel (glibc's `malloc_trim(0)`): for a
/// long-lived process, such as a container's monitor, after a burst of allocations at start.
pub fn trim_heap() {
    // SAFETY: malloc_trim only walks glibc's own allocator state under its lock and returns
    // free pages with madvise; it touches no memory a Rust owner holds.
    unsafe {
        libc::malloc_trim(0);
    }
}
