//! Session keyrings: keyctl(KEYCTL_JOIN_SESSION_KEYRING).

use std::ffi::CString;
use std::io;

/// Makes a new session keyring named `name` and joins it, so the process no longer shares
/// the caller's session keyring (and the keys in it). Returns the new keyring's serial.
pub fn join_new_session_keyring(name: &str) -> io::Result<i32> {
    let name = CString::new(name).map_err(io::Error::other)?;
    // SAFETY: KEYCTL_JOIN_SESSION_KEYRING reads one NUL-terminated string, which `name` owns
    // for the whole call; the other arguments are unused.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_JOIN_SESSION_KEYRING,
            name.as_ptr(),
            0,
            0,
            0,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as i32)
    }
}
