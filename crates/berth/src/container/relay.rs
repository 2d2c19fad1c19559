//! The terminal side of `run`/`start -a`/`attach` and `exec`: an engine session relayed to
//! the caller's terminal (raw mode with -ti), stdin to the process, output back, window size
//! followed, Ctrl-P Ctrl-Q to detach. Single-threaded: one poll over stdin and the session.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};

pub use berth_engine::attach::DetachKeys;
use berth_engine::attach::{AttachOptions, Output, Session};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::termios::{self, SetArg, Termios};

/// Restores the terminal's settings when dropped (even on error paths).
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Raw mode on stdin if it is a terminal; a no-op otherwise.
    pub fn enable() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = termios::tcgetattr(stdin.as_fd()) else {
            return RawMode { saved: None };
        };
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        if termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// The caller's terminal size, if stdout is one.
pub fn terminal_size() -> Option<(u16, u16)> {
    berth_sys::pty::window_size(std::io::stdout().as_fd()).ok()
}

/// What a terminal attached to a container asks of its monitor: the output, stdin when
/// asked, the exit code, and with a tty our terminal's size.
pub fn attached(stdin: bool, tty: bool) -> AttachOptions {
    AttachOptions {
        stdin,
        stdout: true,
        stderr: true,
        wait: true,
        size: if tty { terminal_size() } else { None },
    }
}

/// Relays an attached session to its end (our signals passed on with `proxy`); the container's
/// exit code (if the monitor went away without a word, what it recorded), or `None` after a
/// detach.
pub fn exit_code(
    engine: &berth_engine::Engine,
    id: &str,
    session: &mut Session,
    stdin: bool,
    tty: bool,
    proxy: bool,
    keys: DetachKeys,
) -> std::io::Result<Option<i32>> {
    Ok(match relay(session, stdin, tty, proxy, keys)? {
        Ended::Exit(code) => Some(code),
        Ended::Detached => None,
        Ended::Closed => Some(berth_engine::lifecycle::wait(engine, id).unwrap_or(125)),
    })
}

/// After a detach from `attach` or `exec`, what the docker CLI does: says so and exits 1 (the
/// terminal back in its own mode first). `run` and `start -a` detach silently, with 0.
pub fn escaped() -> i32 {
    eprintln!("read escape sequence");
    1
}

/// `--detach-keys`, in Docker's syntax; Ctrl-P Ctrl-Q when not given.
pub fn detach_keys(spec: Option<&str>) -> berth_engine::Result<DetachKeys> {
    DetachKeys::parse(spec.unwrap_or_default())
}

/// How a relay ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Exit(i32),
    Detached,
    /// The monitor closed the stream without an exit code.
    Closed,
}

/// Blocks the signals `run` passes on to the container instead of dying of them (Docker's
/// `--sig-proxy`, on without a terminal; with one, Ctrl-C is a byte for the container's pty):
/// all that Docker's CLI forwards, real-time ones included (berth_sys::signal::forwarded).
/// Returns a descriptor that reads them.
fn signal_proxy() -> Option<SignalFd> {
    let set = berth_sys::signal::forwarded();
    set.thread_block().ok()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).ok()
}

/// Relays a session: stdin (when `stdin`) to it, its output to stdout/stderr, and with
/// `proxy` but no terminal the signals we get to the container. On a terminal, `keys` typed
/// end it (held back while they may be the sequence, as Docker does).
pub fn relay(
    session: &mut Session,
    stdin: bool,
    tty: bool,
    proxy: bool,
    mut keys: DetachKeys,
) -> std::io::Result<Ended> {
    let mut signals = if tty || !proxy { None } else { signal_proxy() };
    let mut stdin_open = stdin;
    let mut size = if tty { terminal_size() } else { None };
    loop {
        let input = std::io::stdin();
        let mut fds = vec![PollFd::new(session.as_fd(), PollFlags::POLLIN)];
        if stdin_open {
            fds.push(PollFd::new(input.as_fd(), PollFlags::POLLIN));
        }
        if let Some(sfd) = &signals {
            fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::from(250u16)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let session_ready = ready(0);
        let stdin_ready = stdin_open && ready(1);
        let signal_ready = signals.is_some() && ready(if stdin_open { 2 } else { 1 });
        drop(fds);
        if signal_ready {
            if let Some(Ok(Some(info))) = signals.as_mut().map(|s| s.read_signal()) {
                session.signal(i32::try_from(info.ssi_signo).unwrap_or(0))?;
            }
        }
        if tty {
            let now = terminal_size();
            if now != size {
                if let Some((r, c)) = now {
                    session.resize(r, c)?;
                }
                size = now;
            }
        }
        if stdin_ready {
            let mut chunk = [0u8; 32 * 1024];
            let n = read_fd(input.as_fd(), &mut chunk)?;
            if n == 0 {
                stdin_open = false;
                session.close_stdin()?;
            } else {
                let (data, detached) = if tty {
                    keys.scan(&chunk[..n])
                } else {
                    (chunk[..n].to_vec(), false)
                };
                if !data.is_empty() {
                    stdin_open = session.send_stdin(&data)?;
                }
                if detached {
                    return Ok(Ended::Detached);
                }
            }
        }
        if session_ready {
            let Some(outputs) = session.read()? else {
                return Ok(Ended::Closed);
            };
            for output in outputs {
                match output {
                    Output::Stdout(data) => write_out(&mut std::io::stdout(), &data)?,
                    Output::Stderr(data) => write_out(&mut std::io::stderr(), &data)?,
                    Output::Exit(code) => return Ok(Ended::Exit(code)),
                }
            }
        }
    }
}

fn write_out(w: &mut impl Write, data: &[u8]) -> std::io::Result<()> {
    match w.write_all(data).and_then(|()| w.flush()) {
        // The reader went away (`| head`): keep the container's stream going regardless.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

fn read_fd(fd: BorrowedFd<'_>, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match nix::unistd::read(fd, buf) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(nix::errno::Errno::EIO) => return Ok(0),
            Err(e) => return Err(e.into()),
        }
    }
}
