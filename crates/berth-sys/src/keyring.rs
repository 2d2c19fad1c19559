//! Session keyrings: keyctl(KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_DESCRIBE, KEYCTL_SETPERM).

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

/// The permission mask of key `serial`, from KEYCTL_DESCRIBE ("type;uid;gid;perm;description",
/// perm in hex).
pub fn permissions(serial: i32) -> io::Result<u32> {
    let mut buf = [0u8; 512];
    // SAFETY: KEYCTL_DESCRIBE writes at most `buf.len()` bytes into `buf`, a live local, and
    // returns the length the full description needs.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            libc::KEYCTL_DESCRIBE,
            serial,
            buf.as_mut_ptr(),
            buf.len(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = (rc as usize).min(buf.len());
    let text = String::from_utf8_lossy(&buf[..len]);
    text.split(';')
        .nth(3)
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or_else(|| io::Error::other(format!("unexpected key description {text:?}")))
}

/// Sets the permission mask of key `serial` (KEYCTL_SETPERM).
pub fn set_permissions(serial: i32, perm: u32) -> io::Result<()> {
    // SAFETY: KEYCTL_SETPERM takes two integers and touches no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_keyctl, libc::KEYCTL_SETPERM, serial, perm, 0, 0) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
