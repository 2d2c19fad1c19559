//! File descriptors: close-on-exec for every fd but a kept set, and passing fds over sockets.

use std::io;

/// Marks every descriptor from `first` upwards close-on-exec, except those in `keep` (sorted or
/// not), using `close_range(CLOSE_RANGE_CLOEXEC)` over the gaps. Nothing is closed now, so
/// descriptors the standard library still holds stay valid until exec.
pub fn cloexec_from(first: u32, keep: &[u32]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep.iter().copied().filter(|&fd| fd >= first).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut start = first;
    for fd in keep.into_iter().chain(std::iter::once(u32::MAX)) {
        if fd > start {
            close_range_cloexec(start, fd - 1)?;
        }
        if fd == u32::MAX {
            break;
        }
        start = fd + 1;
    }
    Ok(())
}

fn close_range_cloexec(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets a flag on descriptors; it frees
    // nothing, so no Rust owner is left with a dangling descriptor.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            last,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if !close_range_missing(&err) {
        return Err(err);
    }
    // Before 5.11, or a seccomp filter that does not know close_range: one fcntl each.
    for fd in open_descriptors()?
        .into_iter()
        .filter(|fd| (first..=last).contains(fd))
    {
        // SAFETY: F_SETFD only sets the close-on-exec flag of a descriptor; it frees nothing.
        // A descriptor listed but closed since (the listing's own) gives EBADF, ignored.
        let rc = unsafe { libc::fcntl(fd as i32, libc::F_SETFD, libc::FD_CLOEXEC) };
        if rc < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EBADF) {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// close_range is absent (ENOSYS before 5.9, EINVAL for CLOSE_RANGE_CLOEXEC before 5.11) or
/// refused by a seccomp filter that does not list it (EPERM, or whatever errno it returns).
fn close_range_missing(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOSYS | libc::EINVAL | libc::EPERM | libc::EACCES)
    )
}

/// Every descriptor open in this process, from /proc/self/fd (or, without /proc, every number
/// below the RLIMIT_NOFILE soft limit, capped).
fn open_descriptors() -> io::Result<Vec<u32>> {
    match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => {
            let mut fds: Vec<u32> = dir
                .flatten()
                .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
                .collect();
            // The directory's own descriptor is in the list and closed by now.
            fds.sort_unstable();
            Ok(fds)
        }
        Err(_) => {
            let (soft, _) =
                nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
                    .map_err(io::Error::from)?;
            Ok((0..soft.min(65_536) as u32).collect())
        }
    }
}

/// Closes, now, every descriptor from `first` upwards except those in `keep`.
///
/// The caller's contract: no Rust owner of a descriptor closed here is ever used or dropped
/// afterwards. It is for a process about to execute a container's program (or to `_exit`
/// when it cannot), whose remaining Rust owners live in stack frames that never return. This is
/// what keeps a descriptor of the host from being reachable through `/proc/self/fd` when the
/// process changes to the container's working directory (CVE-2024-21626), which close-on-exec
/// alone does not do.
pub fn close_from_except(first: u32, keep: &[u32]) -> io::Result<()> {
    let mut keep: Vec<u32> = keep.iter().copied().filter(|&fd| fd >= first).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut start = first;
    for fd in keep.iter().copied().chain(std::iter::once(u32::MAX)) {
        if fd > start {
            if let Err(e) = close_range_now(start, fd - 1) {
                if !close_range_missing(&e) {
                    return Err(e);
                }
                return close_listed(first, &keep);
            }
        }
        if fd == u32::MAX {
            break;
        }
        start = fd + 1;
    }
    Ok(())
}

fn close_range_now(first: u32, last: u32) -> io::Result<()> {
    // SAFETY: the caller of close_from_except guarantees (close_all owns them) that no Rust owner of these
    // descriptors is used or dropped afterwards, so none acts on a closed or reused number.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// close_from_except without close_range: each open descriptor, one close each.
fn close_listed(first: u32, keep: &[u32]) -> io::Result<()> {
    for fd in open_descriptors()? {
        if fd >= first && !keep.contains(&fd) {
            // SAFETY: as in close_range_now (the caller's contract). EBADF (the listing's own
            // descriptor, closed since) is no error.
            unsafe { libc::close(fd as i32) };
        }
    }
    Ok(())
}

/// Closes the descriptors `fds`, one close_range per run of consecutive numbers instead of a
/// close each (descriptors opened one after the other usually are consecutive). Errors are
/// ignored, as dropping an OwnedFd ignores them.
pub fn close_all(fds: Vec<std::os::fd::OwnedFd>) {
    use std::os::fd::IntoRawFd;
    let mut raw: Vec<u32> = fds
        .into_iter()
        .filter_map(|fd| u32::try_from(fd.into_raw_fd()).ok())
        .collect();
    raw.sort_unstable();
    let mut i = 0;
    while i < raw.len() {
        let mut j = i;
        while j + 1 < raw.len() && raw[j + 1] == raw[j] + 1 {
            j += 1;
        }
        if close_range_now(raw[i], raw[j]).is_err() {
            for &fd in &raw[i..=j] {
                // SAFETY: `fd` came from an OwnedFd given up above (into_raw_fd): nothing else
                // owns it, and close_range failed without closing it.
                unsafe { libc::close(fd as i32) };
            }
        }
        i = j + 1;
    }
}

/// `dup2(2)` onto a fixed descriptor number (0, 1, 2 for stdio), replacing whatever it was.
pub fn dup_onto(fd: std::os::fd::BorrowedFd<'_>, target: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: dup2 only manipulates the descriptor table; `target` is one of the standard
    // descriptors, which no Rust owner holds as an OwnedFd in this process.
    let rc = unsafe { libc::dup2(fd.as_raw_fd(), target) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Closes every descriptor from `first` upwards, now: [`close_from_except`] with nothing kept,
/// under the same contract (for the reaper of `--init` and the monitor, which from here on own
/// no descriptor past `first`).
pub fn close_from_for_good(first: u32) -> io::Result<()> {
    close_from_except(first, &[])
}

/// Receives one descriptor passed with SCM_RIGHTS (runc's console-socket protocol: the pty
/// master with its name as the payload), close-on-exec.
pub fn recv_fd(socket: std::os::fd::BorrowedFd<'_>) -> io::Result<std::os::fd::OwnedFd> {
    let mut buf = [0u8; 256];
    let (_, mut owned) = recv_with_fds(socket, &mut buf)?;
    if owned.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no descriptor in the message",
        ));
    }
    // Every extra descriptor a sender put in is closed with the vector.
    Ok(owned.swap_remove(0))
}

/// Receives one message into `buf` and the descriptors passed with it (SCM_RIGHTS),
/// close-on-exec: the payload's length (0 at end of stream) and the descriptors.
pub fn recv_with_fds(
    socket: std::os::fd::BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<(usize, Vec<std::os::fd::OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd, RawFd};
    let mut iov = [io::IoSliceMut::new(buf)];
    // Room for the most descriptors one message can carry (SCM_MAX_FD): a smaller buffer
    // would truncate a sender's extra descriptors into our table (MSG_CTRUNC), where nix
    // refuses to list them, so they could not be closed.
    let mut space = nix::cmsg_space!([RawFd; 253]);
    let msg = loop {
        match recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other?,
        }
    };
    let mut received: Vec<RawFd> = Vec::new();
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            received.extend(fds);
        }
    }
    // SAFETY: the kernel just installed these descriptors in our table for this message;
    // nothing else owns them, so each becomes an OwnedFd exactly once.
    let owned = received
        .into_iter()
        .map(|fd| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
        .collect();
    Ok((msg.bytes, owned))
}

/// Sends `data` with `fds` passed along (SCM_RIGHTS; at most 253, the kernel's SCM_MAX_FD).
pub fn send_with_fds(
    socket: std::os::fd::BorrowedFd<'_>,
    data: &[u8],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::{AsRawFd, RawFd};
    let raw: Vec<RawFd> = fds.iter().map(|fd| fd.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &rights };
    let iov = [io::IoSlice::new(data)];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &iov,
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(())
}

/// Takes ownership of `fd` as a `T` (a socket type of another crate that offers only
/// `FromRawFd`).
pub fn adopt<T: std::os::fd::FromRawFd>(fd: std::os::fd::OwnedFd) -> T {
    use std::os::fd::IntoRawFd;
    // SAFETY: an OwnedFd is open and owned by no one else; into_raw_fd gives up that
    // ownership, which `T` takes over, so the descriptor is closed once, by `T`.
    unsafe { T::from_raw_fd(fd.into_raw_fd()) }
}

#[cfg(test)]
mod tests {
    use super::recv_fd;
    use nix::sys::socket::{
        sendmsg, socketpair, AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType,
    };
    use std::os::fd::{AsFd, AsRawFd, RawFd};

    #[test]
    fn close_all_closes_every_write_end() {
        // Each pipe reads its end of file once its write end is closed, whatever other
        // threads do with the numbers afterwards.
        let pipes: Vec<_> = (0..4).map(|_| nix::unistd::pipe().unwrap()).collect();
        let (reads, writes): (Vec<_>, Vec<_>) = pipes.into_iter().unzip();
        super::close_all(writes);
        for r in reads {
            let mut buf = [0u8; 1];
            assert_eq!(nix::unistd::read(&r, &mut buf).unwrap(), 0);
        }
    }

    fn send(fds: &[RawFd]) -> std::io::Result<std::os::fd::OwnedFd> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        let iov = [std::io::IoSlice::new(b"pty")];
        sendmsg::<()>(
            a.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(fds)],
            MsgFlags::empty(),
            None,
        )
        .expect("sendmsg");
        recv_fd(b.as_fd())
    }

    #[test]
    fn one_descriptor_arrives() {
        let file = std::fs::File::open("/dev/null").expect("open");
        let got = send(&[file.as_raw_fd()]).expect("recv_fd");
        let here = std::fs::read_link(format!("/proc/self/fd/{}", got.as_raw_fd()));
        assert_eq!(here.expect("readlink"), std::path::Path::new("/dev/null"));
    }

    #[test]
    fn extra_descriptors_are_closed() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK).expect("pipe");
        let got = send(&[w.as_raw_fd(); 8]).expect("recv_fd");
        drop(w);
        drop(got);
        // EOF only once every copy of the write end is closed, the seven extras included.
        let mut buf = [0u8; 1];
        assert_eq!(nix::unistd::read(&r, &mut buf), Ok(0));
    }
}
