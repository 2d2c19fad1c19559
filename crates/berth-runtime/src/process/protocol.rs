//! The init protocol: the messages the runtime (parent) and the container's init (child) send
//! each other over a SOCK_SEQPACKET socketpair, one JSON document a packet.
//!
//! ```text
//!  parent (berth-runc create)                  init (forked child)
//!  ─────────────────────────                   ───────────────────
//!  [pid ns: unshare/setns for children]
//!  fork ─────────────────────────────────────▶ join namespaces by path
//!                                              [user ns] unshare(NEWUSER)
//!        ◀────────────────────────── IdMapsPlease
//!  write uid_map / gid_map
//!        IdMapsDone ────────────────────────▶ unshare the other new namespaces
//!                                              [user ns + new pid ns] fork again;
//!        ◀────────────────────────── Pid(n)    the middle process exits
//!        ◀────────────────────────── Ready
//!  add init to its cgroup, save state,
//!  prestart + createRuntime hooks
//!  [user ns] open bind sources in its mount ns
//!        MountSources + fds ────────────────▶ (kept for the bind mounts)
//!        Go ────────────────────────────────▶ cgroup ns, rootfs, createContainer hooks,
//!                                              pivot_root, tty, user, capabilities, seccomp
//!        ◀───────────── SeccompListener + fd   [SCMP_ACT_NOTIFY] the filter's listener
//!  send it to the seccomp agent
//!        ◀────────────────────────── Created
//!  write the pid file, exit                    block opening exec.fifo for writing
//!  ...                                         ...
//!  berth-runc start: open exec.fifo ─────────▶ startContainer hooks, execve
//!
//!  berth-runc run (start at once, no exec.fifo):
//!        ◀────────────────────────── Created
//!        Start ─────────────────────────────▶ shut the socket down (the parent's word that
//!                                              the init took it), startContainer hooks, execve
//! ```
//! Any step of the init that fails sends `Failed { step, error }` instead and exits, so the
//! parent reports "mount proc on /proc: Operation not permitted", never "pipe closed".

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// From the init (or the middle process) to the parent.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromInit {
    IdMapsPlease,
    Pid(i32),
    Ready,
    Created,
    /// The listener of the process's seccomp filter (SCMP_ACT_NOTIFY), passed along, sent as
    /// soon as the filter is loaded: the runtime hands it to the seccomp agent at once.
    SeccompListener,
    Failed {
        step: String,
        error: String,
        /// Set when the container's program is missing or not executable.
        #[serde(default)]
        exec: Option<crate::error::ExecErrorKind>,
    },
}

/// From the parent to the init.
#[derive(Debug, Serialize, Deserialize)]
pub enum FromParent {
    IdMapsDone,
    /// Sent with descriptors (SCM_RIGHTS), one for each of these indexes into the plan's
    /// mounts: bind sources the container's user namespace may not reach (rootfs/sources.rs).
    MountSources {
        mounts: Vec<usize>,
    },
    /// Carries the state document for the hooks the init runs (createContainer, startContainer).
    Go {
        state: String,
    },
    /// To an init made to start at once, after `Created`: what opening the exec fifo is to
    /// the others.
    Start,
}

/// The largest message a receive takes (a state document with its annotations, a list of
/// mount indexes). Each end keeps one buffer this size for its receives, into which the kernel
/// writes only the message: most are a few hundred bytes, one page of it. (A zeroed array on
/// the stack faulted in all sixteen pages at every receive, in the runtime and again in the
/// init, its frame probed page by page; one allocated a receive was given back to the kernel
/// after each message and taken again for the next: two brk calls.)
const MAX_MESSAGE: usize = 64 * 1024;

/// One end of the socketpair.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
    /// Receives' buffer, allocated at the first (an end that only sends never has one).
    buf: RefCell<Vec<u8>>,
}

/// A connected pair: (parent's end, init's end). Both are close-on-exec. The init's end is the
/// lower number, right after what the runtime had open (the exec trampoline's memfd): the
/// descriptors the init keeps are then consecutive, and closing everything else is one
/// close_range, not one below its end and one above.
pub fn pair() -> io::Result<(Channel, Channel)> {
    let (low, high) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel::new(high), Channel::new(low)))
}

impl Channel {
    fn new(fd: OwnedFd) -> Channel {
        Channel {
            fd,
            buf: RefCell::new(Vec::new()),
        }
    }

    pub fn send<T: Serialize>(&self, msg: &T) -> io::Result<()> {
        let data = serde_json::to_vec(msg).map_err(io::Error::other)?;
        send(
            std::os::fd::AsRawFd::as_raw_fd(&self.fd),
            &data,
            MsgFlags::MSG_NOSIGNAL,
        )?;
        Ok(())
    }

    /// The next message; `UnexpectedEof` when the other side closed without a word.
    ///
    /// A side that closes its end with messages it never read (the runtime queues the start
    /// word behind `Go`, and an init that fails before it reads it exits) makes the kernel
    /// report ECONNRESET once, possibly before what that side sent last (its failure): the
    /// error is taken as read, and the message behind it (or the end) is what counts.
    /// recv(2), the recvfrom system call: the init's last receive (`Start`) comes after the
    /// container's seccomp filter is loaded, and a profile may allow it and not recvmsg.
    pub fn recv<T: DeserializeOwned>(&self) -> io::Result<T> {
        let received = self.receive(berth_sys::fd::recv_message);
        received.map(|((), msg)| msg)
    }

    /// `msg` with `fds` passed along (SCM_RIGHTS; at most 253, the kernel's SCM_MAX_FD).
    pub fn send_with_fds<T: Serialize>(&self, msg: &T, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        let data = serde_json::to_vec(msg).map_err(io::Error::other)?;
        berth_sys::fd::send_with_fds(self.fd.as_fd(), &data, fds)
    }

    /// The next message and the descriptors that came with it (close-on-exec).
    /// ECONNRESET as in [`Channel::recv`].
    pub fn recv_with_fds<T: DeserializeOwned>(&self) -> io::Result<(T, Vec<OwnedFd>)> {
        let received = self.receive(berth_sys::fd::recv_message_with_fds);
        received.map(|(fds, msg)| (msg, fds))
    }

    /// One message into this end's buffer by `how`, parsed; ECONNRESET as in [`Channel::recv`].
    fn receive<R, T: DeserializeOwned>(
        &self,
        how: impl Fn(BorrowedFd<'_>, &mut Vec<u8>) -> io::Result<R>,
    ) -> io::Result<(R, T)> {
        let mut buf = self.buf.borrow_mut();
        if buf.capacity() < MAX_MESSAGE {
            buf.reserve_exact(MAX_MESSAGE);
        }
        let extra = match how(self.fd.as_fd(), &mut buf) {
            Err(e) if e.raw_os_error() == Some(nix::libc::ECONNRESET) => {
                how(self.fd.as_fd(), &mut buf)?
            }
            other => other?,
        };
        if buf.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let msg = serde_json::from_slice(&buf).map_err(io::Error::other)?;
        Ok((extra, msg))
    }

    /// Shuts the socket down both ways: the other side reads the end, as if it were closed,
    /// and what this side sends from now on fails.
    pub fn shutdown(&self) -> io::Result<()> {
        nix::sys::socket::shutdown(self.raw_fd(), nix::sys::socket::Shutdown::Both)?;
        Ok(())
    }

    pub fn raw_fd(&self) -> i32 {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd.as_fd())
    }
}
