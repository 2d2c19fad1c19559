//! Network interfaces: bring a link up with the SIOCGIFFLAGS/SIOCSIFFLAGS ioctls.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Sets IFF_UP on the interface `name` (e.g. "lo") of the calling thread's network namespace.
/// Already-up links are left alone.
pub fn set_link_up(name: &str) -> io::Result<()> {
    let mut req = ifreq(name)?;
    let sock = ioctl_socket()?;
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated ifr_name and writes ifr_flags of the
    // ifreq we own, which lives for the whole call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS succeeded, so the union holds ifru_flags.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    if flags & libc::IFF_UP as libc::c_short != 0 {
        return Ok(());
    }
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: SIOCSIFFLAGS only reads the ifreq we own, which lives for the whole call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Brings up "lo" in a network namespace made by this process and not touched since: its
/// flags are then IFF_LOOPBACK alone (the kernel's loopback_setup), so they are set, without
/// being read first, to that and IFF_UP, one ioctl where [`set_link_up`] makes two.
pub fn set_new_loopback_up() -> io::Result<()> {
    let mut req = ifreq("lo")?;
    req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK) as libc::c_short;
    let sock = ioctl_socket()?;
    // SAFETY: SIOCSIFFLAGS only reads the ifreq we own, which lives for the whole call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A socket for interface ioctls.
fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket takes three integers; on success it returns a new descriptor we own.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by the kernel, is valid and owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ifreq(name: &str) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface name {name:?} is empty, too long or holds a NUL"),
        ));
    }
    // SAFETY: ifreq is plain old data (a name array and a union of integers and sockaddrs):
    // all zeroes is a valid value of it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_do_not_fit_are_refused() {
        assert!(set_link_up("").is_err());
        assert!(set_link_up("a-name-far-too-long").is_err());
        assert!(set_link_up("l\0o").is_err());
    }
}
