//! `run` and `exec` of a process with a terminal, without `--console-socket` and without
//! detaching: as runc does, berth-runc takes the pty master the container's process made and
//! relays between it and its own stdio, its caller's terminal in raw mode, the window size
//! copied and followed (SIGWINCH), the usual signals passed on, until the process exits.
//! Single-threaded: one poll over the master, stdin, a signalfd and the process's pidfd.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};

/// The caller's terminal, found before anything is created, and the console socket
/// berth-runc gives the runtime for itself.
pub struct Console {
    host: OwnedFd,
    socket: Socket,
}

/// A listening socket in a directory of its own, both removed when dropped.
struct Socket {
    listener: UnixListener,
    dir: PathBuf,
}

impl Socket {
    fn path(&self) -> PathBuf {
        self.dir.join("console.sock")
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

impl Console {
    /// Fails, as runc does, when berth-runc has no terminal: none of stderr, stdout and stdin
    /// is one and there is no controlling terminal to open.
    pub fn new() -> Result<Console> {
        let host = host_terminal()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("berth-runc-console-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("create {}", dir.display()))?;
        let sock = dir.join("console.sock");
        match UnixListener::bind(&sock) {
            Ok(listener) => Ok(Console {
                host,
                socket: Socket { listener, dir },
            }),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(e).with_context(|| format!("bind {}", sock.display()))
            }
        }
    }

    /// The path to give the runtime as `--console-socket`.
    pub fn path(&self) -> PathBuf {
        self.socket.path()
    }

    /// The pty master the container's process sent: it waits in the socket once create or
    /// exec returned.
    pub fn accept(self) -> Result<Terminal> {
        let (conn, _) = self
            .socket
            .listener
            .accept()
            .context("accept on the console socket")?;
        let master = berth_sys::fd::recv_fd(conn.as_fd()).context("receive the pty master")?;
        Ok(Terminal {
            host: self.host,
            master,
        })
    }
}

/// The caller's terminal and the container's pty master, to relay between.
pub struct Terminal {
    host: OwnedFd,
    master: OwnedFd,
}

/// The first of stderr, stdout and stdin that is a terminal, else the controlling terminal.
fn host_terminal() -> Result<OwnedFd> {
    for fd in [
        std::io::stderr().as_fd(),
        std::io::stdout().as_fd(),
        std::io::stdin().as_fd(),
    ] {
        if nix::unistd::isatty(fd).unwrap_or(false) {
            return fd.try_clone_to_owned().context("dup the terminal");
        }
    }
    match std::fs::File::options()
        .read(true)
        .write(true)
        .open("/dev/tty")
    {
        Ok(tty) => Ok(tty.into()),
        Err(e) => bail!(
            "open /dev/tty: {e}: process.terminal is true and berth-runc has no terminal to \
             relay it to (give --console-socket, or set process.terminal to false)"
        ),
    }
}

/// The caller's terminal in raw mode until dropped, when its settings are put back.
struct RawMode<'a> {
    tty: BorrowedFd<'a>,
    saved: Termios,
}

impl<'a> RawMode<'a> {
    fn enable(tty: BorrowedFd<'a>) -> Result<RawMode<'a>> {
        let saved = termios::tcgetattr(tty).context("read the terminal's settings")?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(tty, SetArg::TCSANOW, &raw).context("set the terminal raw")?;
        Ok(RawMode { tty, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.tty, SetArg::TCSANOW, &self.saved);
    }
}

/// The signals passed on to the process, as runc passes on what it gets (real-time ones
/// included: berth_sys::signal::forwarded), SIGWINCH ours: blocked and read from a descriptor
/// until dropped.
struct Signals {
    set: SigSet,
    fd: SignalFd,
}

impl Signals {
    fn block() -> Result<Signals> {
        let set = berth_sys::signal::forwarded();
        set.thread_block().context("block signals")?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
            .context("signalfd")?;
        Ok(Signals { set, fd })
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        let _ = self.set.thread_unblock();
    }
}

/// Waits for our child `pid` and returns its exit code, relaying `terminal` meanwhile if it
/// has one, else passing on the signals we get; a terminal that could not be had or relayed
/// kills the process first.
pub fn wait(terminal: Result<Option<Terminal>>, pid: i32) -> Result<i32> {
    let relayed = terminal.and_then(|t| match t {
        Some(t) => relay(pid, Some((t.master, t.host))),
        None => {
            // Without it the process runs on, as before (its signals then kill us instead).
            let _ = relay(pid, None);
            Ok(())
        }
    });
    if relayed.is_err() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let code = berth_runtime::container::wait_exit(pid)?;
    relayed.map(|()| code)
}

/// Until process `pid` exits, passes on every signal we get, as runc's foreground `run` does
/// (but SIGCHLD, SIGPIPE, SIGURG and job control: berth_sys::signal::forwarded): a TERM sent
/// to the runtime reaches the container, and the runtime lives to delete it. With `tty` (the
/// pty master, the caller's terminal) it also relays between the caller's stdio and the pty,
/// the caller's terminal in raw mode meanwhile, SIGWINCH copying its size (without, a resize
/// has nothing to resize), and reads what the process wrote last before it returns.
fn relay(pid: i32, tty: Option<(OwnedFd, OwnedFd)>) -> Result<()> {
    let pidfd = berth_sys::process::pidfd_open(pid).context("pidfd_open of the process")?;
    let signals = Signals::block()?;
    let _raw = match &tty {
        Some((master, host)) => {
            copy_size(host.as_fd(), master.as_fd());
            Some(RawMode::enable(host.as_fd())?)
        }
        None => None,
    };
    // The pty master to write the input to; the same while it has output to read (`output`)
    // and std's stdin while it has input (`input`): none of them without a terminal.
    let pty = tty.as_ref().map(|(master, _)| master.as_fd());
    let stdin = tty.as_ref().map(|_| std::io::stdin());
    let (mut output, mut input) = (pty, stdin.as_ref().map(|s| s.as_fd()));
    // One read's room, reserved only when there is a terminal to relay and written only by
    // the kernel (berth_sys::fd::read_appending).
    let mut buf = Vec::new();
    loop {
        let mut fds = vec![
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.fd.as_fd(), PollFlags::POLLIN),
        ];
        fds.extend(output.map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        fds.extend(input.map(|fd| PollFd::new(fd, PollFlags::POLLIN)));
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e).context("poll"),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(PollFd::revents)
                .is_some_and(|r| !r.is_empty())
        };
        let (exited, signalled) = (ready(0), ready(1));
        let output_ready = output.is_some() && ready(2);
        let input_ready = input.is_some() && ready(2 + usize::from(output.is_some()));
        if signalled {
            while let Ok(Some(info)) = signals.fd.read_signal() {
                match i32::try_from(info.ssi_signo) {
                    Ok(sig) if sig == Signal::SIGWINCH as i32 => {
                        if let Some((master, host)) = &tty {
                            copy_size(host.as_fd(), master.as_fd());
                        }
                    }
                    Ok(sig) => {
                        let _ = berth_sys::process::pidfd_send_signal(pidfd.as_fd(), sig);
                    }
                    Err(_) => {}
                }
            }
        }
        if let (true, Some(master)) = (output_ready, output) {
            if !copy(master, &mut buf, &mut std::io::stdout())? {
                output = None;
            }
        }
        if let (true, Some(stdin), Some(master)) = (input_ready, input, pty) {
            if !copy_in(stdin, master, &mut buf)? {
                input = None;
            }
        }
        if exited {
            // What the process wrote last is still in the pty: read it all, without waiting
            // on a slave that a child it left behind may hold open.
            if let Some(master) = output {
                nix::fcntl::fcntl(
                    master,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                )
                .context("make the pty master non-blocking")?;
                while copy(master, &mut buf, &mut std::io::stdout())? {}
            }
            return Ok(());
        }
    }
}

/// The caller's window size onto the container's pty, which tells its foreground process.
fn copy_size(host: BorrowedFd<'_>, master: BorrowedFd<'_>) {
    if let Ok((rows, cols)) = berth_sys::pty::window_size(host) {
        let _ = berth_sys::pty::set_window_size(master, rows, cols);
    }
}

/// The most one read of the relay takes.
const CHUNK: usize = 32 * 1024;

/// One read from the pty master to `out` (through `buf`): false once there is nothing more to
/// read (every slave closed: EIO; or, non-blocking, nothing now).
fn copy(master: BorrowedFd<'_>, buf: &mut Vec<u8>, out: &mut impl Write) -> Result<bool> {
    buf.clear();
    let n = match berth_sys::fd::read_appending(master, buf, CHUNK) {
        Ok(n) => n,
        Err(e) if matches!(e.raw_os_error(), Some(nix::libc::EIO | nix::libc::EAGAIN)) => 0,
        Err(e) => return Err(e).context("read the pty master"),
    };
    if n == 0 {
        return Ok(false);
    }
    // A reader that went away (`| head`) does not stop the container's output being drained.
    match out.write_all(buf).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("write the container's output")
        }
        _ => Ok(true),
    }
}

/// One read from stdin into the pty master (through `buf`): false at the end of stdin.
fn copy_in(stdin: BorrowedFd<'_>, master: BorrowedFd<'_>, buf: &mut Vec<u8>) -> Result<bool> {
    buf.clear();
    let n = match berth_sys::fd::read_appending(stdin, buf, CHUNK) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => 0,
        Err(e) => return Err(e).context("read stdin"),
    };
    let mut data = &buf[..];
    while !data.is_empty() {
        match nix::unistd::write(master, data) {
            Ok(w) => data = &data[w..],
            Err(nix::errno::Errno::EINTR) => {}
            // Nobody reads the pty any more: the process is going.
            Err(nix::errno::Errno::EIO) => return Ok(false),
            Err(e) => return Err(e).context("write to the pty master"),
        }
    }
    Ok(n > 0)
}
