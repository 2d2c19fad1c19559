//! Seccomp: loading an already compiled classic-BPF filter into the calling thread.
//!
//! The filter is compiled by the runtime in the parent, before any fork; the container's init only
//! hands the raw program to the kernel here. This runs in the child after fork, so it does not
//! allocate: the program stays in the caller's buffer and errors are raw `errno` values.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// Size of one `struct sock_filter` record: u16 code, u8 jt, u8 jf, u32 k.
pub const SOCK_FILTER_SIZE: usize = 8;

/// Installs `insns` (a sequence of 8-byte `struct sock_filter` records, in native byte order) as a
/// seccomp filter of the calling thread with `seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog)`.
/// With `SECCOMP_FILTER_FLAG_NEW_LISTENER` in `flags`, the kernel answers the filter's listener
/// (the descriptor a seccomp agent reads `SCMP_ACT_NOTIFY`'s notifications from,
/// close-on-exec), which is returned.
///
/// The caller must have set `no_new_privs` or hold `CAP_SYS_ADMIN`, else the kernel answers
/// `EACCES`. An empty program, one whose length is not a multiple of 8 or one longer than
/// `u16::MAX` records is refused with `EINVAL` before the syscall. With
/// `SECCOMP_FILTER_FLAG_TSYNC` (and no listener) the kernel may answer the id of a thread it
/// could not synchronise; that is reported as `ESRCH`.
pub fn install_filter(insns: &[u8], flags: u32) -> io::Result<Option<OwnedFd>> {
    if insns.is_empty() || !insns.len().is_multiple_of(SOCK_FILTER_SIZE) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let Ok(len) = u16::try_from(insns.len() / SOCK_FILTER_SIZE) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    // The kernel only reads through this pointer (copy_from_user, which has no alignment
    // requirement); Rust never dereferences it as a `sock_filter`, so the byte buffer's alignment
    // of 1 does not matter and the `*mut` is only the C declaration's spelling.
    let prog = libc::sock_fprog {
        len,
        filter: insns.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `prog` lives on this stack frame for the whole call and points at `insns`, which
    // holds exactly `len` 8-byte records (checked above). seccomp(2) only reads the program and
    // copies it into the kernel before returning; it touches no memory of ours afterwards.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::c_ulong::from(flags),
            &prog as *const libc::sock_fprog,
        )
    };
    let listener = libc::c_ulong::from(flags) & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0;
    match ret {
        r if r < 0 => Err(io::Error::last_os_error()),
        r if listener => {
            let fd = i32::try_from(r).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
            // SAFETY: with NEW_LISTENER, a non-negative answer is a descriptor the kernel has
            // just installed in our table for us; nothing else owns it.
            Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
        }
        0 => Ok(None),
        _ => Err(io::Error::from_raw_os_error(libc::ESRCH)),
    }
}
