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
    let mut owned = recv_message_with_fds(socket, &mut Vec::with_capacity(4096))?;
    if owned.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no descriptor in the message",
        ));
    }
    // Every extra descriptor a sender put in is closed with the vector.
    Ok(owned.swap_remove(0))
}

/// Receives one message (a datagram or seqpacket socket's) into `buf`, replacing what it held,
/// with recv(2) (the recvfrom system call, which a seccomp profile may allow without recvmsg):
/// the init protocol's receives after the container's filter is loaded. Only the bytes the
/// message holds are written: a buffer sized for the largest message a protocol allows (64 KiB)
/// but given a few hundred bytes touches one page, where a zeroed one of that size faults in
/// all sixteen at every receive (and, on the stack, makes its frame probe them page by page).
/// A message longer than `buf`'s capacity is an error (it is consumed); an empty `buf` is the
/// end of the stream, so `buf` must have room. Descriptors sent with the message are closed by
/// the kernel.
pub fn recv_message(socket: std::os::fd::BorrowedFd<'_>, buf: &mut Vec<u8>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    buf.clear();
    let spare = buf.spare_capacity_mut();
    // SAFETY: `spare` is writable for its length, and recv(2) writes no more than that;
    // MSG_TRUNC only makes it return a datagram's whole length.
    let n = count_retrying(|| unsafe {
        libc::recv(
            socket.as_raw_fd(),
            spare.as_mut_ptr().cast(),
            spare.len(),
            libc::MSG_TRUNC,
        )
    })?;
    if n > spare.len() {
        return Err(too_long(spare.len()));
    }
    // SAFETY: recv(2) wrote the message's n bytes at the start of the spare capacity, and n is
    // at most its length (checked just above).
    unsafe { buf.set_len(n) };
    Ok(())
}

/// [`recv_message`] with the descriptors passed along (SCM_RIGHTS), close-on-exec, by
/// recvmsg(2). Descriptors the kernel could not all pass (MSG_CTRUNC: our limit on open files,
/// a security module) are an error, those that came closed.
pub fn recv_message_with_fds(
    socket: std::os::fd::BorrowedFd<'_>,
    buf: &mut Vec<u8>,
) -> io::Result<Vec<std::os::fd::OwnedFd>> {
    buf.clear();
    let spare = buf.spare_capacity_mut();
    let capacity = spare.len();
    let (n, fds, flags) = recvmsg_rights(socket, spare)?;
    if flags & libc::MSG_TRUNC != 0 {
        return Err(too_long(capacity));
    }
    if flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "descriptors sent with a message did not all arrive (MSG_CTRUNC)",
        ));
    }
    // SAFETY: recvmsg wrote the message's n bytes at the start of the spare capacity, and n is
    // at most its length (a longer message set MSG_TRUNC, refused above).
    unsafe { buf.set_len(n) };
    Ok(fds)
}

/// A system call that returns a count, or -1 and errno: made again while it is interrupted.
fn count_retrying(call: impl FnMut() -> libc::ssize_t) -> io::Result<usize> {
    retrying(call).map(|n| n as usize)
}

/// A system call that returns 0 or more, or -1 and errno: made again while it is interrupted
/// (EINTR), its result or its error.
pub(crate) fn retrying<T: Copy + PartialOrd + Default>(
    mut call: impl FnMut() -> T,
) -> io::Result<T> {
    loop {
        let n = call();
        if n >= T::default() {
            return Ok(n);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// The error of a message longer than the `capacity` bytes of the buffer it was received into.
fn too_long(capacity: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a message longer than the {capacity} bytes a receive takes"),
    )
}

/// One read(2) from `fd` appended to `buf`: at most `max` bytes, into room reserved for them
/// and written only by the kernel, so a reserve sized for the largest read touches no more of
/// memory than the bytes that come (a zeroed array of that size on the stack faults in every
/// page of it, the frame's probes too). Returns how many came (0 at the end); EINTR is retried.
pub fn read_appending(
    fd: std::os::fd::BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    buf.reserve(max);
    let spare = &mut buf.spare_capacity_mut()[..max];
    // SAFETY: `spare` is writable for its length, which the kernel does not exceed.
    let n = count_retrying(|| unsafe {
        libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len())
    })?;
    let len = buf.len() + n;
    // SAFETY: read(2) wrote n bytes right after the initialised ones, n at most `max`, which the
    // reserve above made room for.
    unsafe { buf.set_len(len) };
    Ok(n)
}

/// recvmsg(2) of one message into `buf` with room for the most descriptors a message can carry
/// (SCM_MAX_FD, 253: a smaller control buffer would leave a sender's extra descriptors in our
/// table unlisted, MSG_CTRUNC, so they could not be closed): its length (at most `buf`'s), the
/// descriptors and the message's flags (MSG_TRUNC, MSG_CTRUNC).
fn recvmsg_rights(
    socket: std::os::fd::BorrowedFd<'_>,
    buf: &mut [std::mem::MaybeUninit<u8>],
) -> io::Result<(usize, Vec<std::os::fd::OwnedFd>, libc::c_int)> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    const MAX_FDS: usize = 253;
    // u64s: the control buffer is aligned as struct cmsghdr needs.
    let mut control = [0u64; (MAX_FDS * 4 + 64) / 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no iovec, no control); the fields set
    // below point at `iov` and `control`, which outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    // SAFETY: `msg` describes `buf` (writable for its length) and `control` (writable for
    // msg_controllen bytes); the kernel writes no more than those lengths.
    let n = count_retrying(|| unsafe {
        libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC)
    })?;
    let mut fds = Vec::new();
    // SAFETY: `msg` is the header the kernel just filled in: its control pointer and length
    // bound the walk, which CMSG_FIRSTHDR and CMSG_NXTHDR keep inside.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    while !cmsg.is_null() {
        // SAFETY: a non-null header from the walk lies whole inside `control`.
        let header = unsafe { cmsg.read_unaligned() };
        if header.cmsg_level == libc::SOL_SOCKET && header.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: the payload of that header, inside `control` as well.
            let data = unsafe { libc::CMSG_DATA(cmsg) }.cast::<libc::c_int>();
            // SAFETY: CMSG_LEN(0) is arithmetic on its argument only.
            let payload = header.cmsg_len as usize - unsafe { libc::CMSG_LEN(0) } as usize;
            for i in 0..payload / std::mem::size_of::<libc::c_int>() {
                // Descriptor i of the payload the kernel wrote (cmsg_len counts it).
                let at = data.wrapping_add(i);
                // SAFETY: `at` is inside the payload, which lies inside `control`.
                let fd = unsafe { at.read_unaligned() };
                // SAFETY: the kernel just installed this descriptor in our table for this
                // message alone: nothing else owns it, so it becomes an OwnedFd exactly once.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        // SAFETY: `cmsg` is a header of this walk; the next stays inside `control` or is null.
        cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
    }
    Ok((n, fds, msg.msg_flags))
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

    #[test]
    fn a_message_arrives_whole_in_a_buffer_of_its_capacity() {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair");
        let file = std::fs::File::open("/dev/null").expect("open");
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(b"what it held before");
        super::send_with_fds(a.as_fd(), b"one", &[file.as_fd(), file.as_fd()]).expect("send");
        super::send_with_fds(a.as_fd(), &[7u8; 100], &[]).expect("send");
        drop(a);
        let fds = super::recv_message_with_fds(b.as_fd(), &mut buf).expect("recv");
        assert_eq!(buf, b"one");
        assert_eq!(fds.len(), 2);
        for fd in &fds {
            let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).expect("F_GETFD");
            assert_ne!(flags & nix::libc::FD_CLOEXEC, 0, "close-on-exec");
            let here = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            assert_eq!(here.expect("readlink"), std::path::Path::new("/dev/null"));
        }
        // Longer than the buffer: refused, not cut, and gone.
        let err = super::recv_message(b.as_fd(), &mut buf).expect_err("too long");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        // The other end closed: an empty message.
        super::recv_message(b.as_fd(), &mut buf).expect("recv");
        assert!(buf.is_empty());
    }

    #[test]
    fn a_read_appends_what_came_and_no_more() {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        nix::unistd::write(&w, b"frame").expect("write");
        let mut buf = b"left".to_vec();
        assert_eq!(
            super::read_appending(r.as_fd(), &mut buf, 3).expect("read"),
            3
        );
        assert_eq!(buf, b"leftfra");
        assert_eq!(
            super::read_appending(r.as_fd(), &mut buf, 4096).expect("read"),
            2
        );
        assert_eq!(buf, b"leftframe");
        drop(w);
        assert_eq!(
            super::read_appending(r.as_fd(), &mut buf, 4096).expect("read"),
            0
        );
        assert_eq!(buf, b"leftframe");
    }
}
