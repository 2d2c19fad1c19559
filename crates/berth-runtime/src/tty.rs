//! Terminals: the init opens a pty inside the container's devpts, makes the slave its controlling
//! terminal and stdio, and hands the master to the caller over the console socket with
//! SCM_RIGHTS, as runc does (the message carries the name of the master).

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use nix::sys::stat::Mode;

use crate::step::{Step, StepResult};

/// Opens a new pty in the container's /dev/pts and makes its slave the controlling terminal
/// and fds 0, 1 and 2 of this process. Returns the master and the slave's path.
pub fn setup_pty(console_size: Option<(u16, u16)>) -> StepResult<(OwnedFd, String)> {
    let master = nix::fcntl::open(
        Path::new("/dev/pts/ptmx"),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .or_else(|_| {
        nix::fcntl::open(
            "/dev/ptmx",
            OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    })
    .step(|| "open /dev/pts/ptmx in the container".into())?;
    berth_sys::pty::unlock(master.as_fd()).step(|| "unlock the pty".into())?;
    let n = berth_sys::pty::pty_number(master.as_fd()).step(|| "read the pty number".into())?;
    let slave = berth_sys::pty::open_peer(master.as_fd()).step(|| "open the pty slave".into())?;
    if let Some((rows, cols)) = console_size {
        berth_sys::pty::set_window_size(slave.as_fd(), rows, cols)
            .step(|| "set the console size".into())?;
    }
    make_controlling(slave.as_fd())?;
    Ok((master, format!("/dev/pts/{n}")))
}

/// `tty` as the controlling terminal of this process, which leads a new session already (every
/// process that enters a container does: see `process::new_session`), and dup'ed onto stdin,
/// stdout and stderr.
pub fn make_controlling(tty: BorrowedFd<'_>) -> StepResult<()> {
    berth_sys::pty::set_controlling_terminal(tty)
        .step(|| "make the pty the controlling terminal".into())?;
    for fd in 0..3 {
        berth_sys::fd::dup_onto(tty, fd).step(|| format!("dup the pty onto fd {fd}"))?;
    }
    Ok(())
}

/// Sends `master` over the connected console socket.
pub fn send_master(socket: BorrowedFd<'_>, master: BorrowedFd<'_>) -> StepResult<()> {
    let name = b"/dev/ptmx";
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name)],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .step(|| "send the pty master to the console socket".into())?;
    Ok(())
}
