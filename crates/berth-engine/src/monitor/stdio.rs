//! A process's stdio as the monitor holds it (the container's init, an exec'd process): pipes
//! (stdout, stderr, and stdin with -i) or a pty master received over a console socket; and
//! the monitor's own stdio, which is /dev/null and `<dir>/monitor.log` once it runs on its own.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The container side and our side of its stdio for one run.
pub struct Stdio {
    /// Pty master (tty mode): output and input both.
    pub tty: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// Write end of the container's stdin pipe (`-i` without `-t`).
    pub stdin: Option<OwnedFd>,
}

impl Stdio {
    /// Where input for the process goes: the pty, or the stdin pipe.
    pub fn input_fd(&self) -> Option<BorrowedFd<'_>> {
        self.tty.as_ref().or(self.stdin.as_ref()).map(|f| f.as_fd())
    }

    /// The descriptors to read the process's output from, with their stream (0 stdout, 1
    /// stderr); the pty's is a duplicate, its original stays for input and resizes.
    pub fn take_outputs(&mut self) -> std::io::Result<Vec<(usize, OwnedFd)>> {
        let mut outputs = Vec::new();
        if let Some(t) = &self.tty {
            outputs.push((0, t.try_clone()?));
        }
        outputs.extend(self.stdout.take().map(|o| (0, o)));
        outputs.extend(self.stderr.take().map(|e| (1, e)));
        Ok(outputs)
    }
}

/// Input for a process not written yet (its end is non-blocking: a process that does not
/// read must not stall the monitor), and whether the end of it was asked for.
#[derive(Default)]
pub(super) struct Input {
    pub(super) buf: Vec<u8>,
    pub(super) closing: bool,
}

impl Input {
    /// Past this much unwritten input, the monitor stops reading the clients that send it
    /// (whose writes then block: back-pressure) until the process reads.
    const BACKLOG: usize = 1 << 20;

    pub(super) fn full(&self) -> bool {
        self.buf.len() > Self::BACKLOG
    }

    /// Writes what `fd` takes now; true when the pipe's end should go (asked, all written).
    pub(super) fn flush(&mut self, fd: Option<BorrowedFd<'_>>) -> bool {
        while !self.buf.is_empty() {
            let Some(fd) = fd else {
                self.buf.clear();
                break;
            };
            match nix::unistd::write(fd, &self.buf) {
                Ok(n) => {
                    self.buf.drain(..n);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => return false,
                // The process closed its stdin: what is left has nowhere to go.
                Err(_) => self.buf.clear(),
            }
        }
        self.closing
    }
}

/// What one read of a process's output gave.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Read {
    Data(usize),
    Nothing,
    End,
}

/// One read of output into `buf`.
pub(super) fn read_output(fd: &OwnedFd, buf: &mut [u8]) -> Read {
    match nix::unistd::read(fd, buf) {
        Ok(0) => Read::End,
        Ok(n) => Read::Data(n),
        // A pty master shares its non-blocking flag with the stdin side.
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => Read::Nothing,
        Err(_) => Read::End,
    }
}

/// Makes `fd` non-blocking (the monitor never waits on one process's descriptor).
pub(super) fn nonblocking(fd: BorrowedFd<'_>) {
    let _ = nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
}

/// Points our fds 0 and 1 at /dev/null and 2 at `<dir>/monitor.log`.
pub fn detach_own_stdio(dir: &Path) -> Result<()> {
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(Error::io("open", "/dev/null"))?;
    let log_path = dir.join("monitor.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(Error::io("open", &log_path))?;
    for (fd, target) in [(null.as_fd(), 0), (null.as_fd(), 1), (log.as_fd(), 2)] {
        berth_sys::fd::dup_onto(fd, target).map_err(Error::io("dup2 onto stdio", &log_path))?;
    }
    Ok(())
}

/// What the runtime's create needs (the console socket in tty mode); `finish` after create.
pub struct Pending {
    console: Option<(UnixListener, PathBuf)>,
    ours: Stdio,
    /// The container's ends, dup'ed onto our 0, 1, 2 for the fork; dropped after create.
    theirs: Vec<OwnedFd>,
    dir: PathBuf,
}

impl Pending {
    pub fn console_socket(&self) -> Option<PathBuf> {
        self.console.as_ref().map(|(_, p)| p.clone())
    }

    /// After create: our own stdio back, and, if the container was `created`, the pty master
    /// out of the console socket (a failed create may never have connected: no accept then).
    pub fn finish(mut self, created: bool) -> Result<Stdio> {
        drop(std::mem::take(&mut self.theirs));
        detach_own_stdio(&self.dir)?;
        if let Some((listener, _)) = self.console.take() {
            // The dirfd behind the short path is closed by now: the real path.
            let path = self.dir.join("console.sock");
            let _ = std::fs::remove_file(&path);
            if created {
                let (conn, _) = listener.accept().map_err(Error::io("accept on", &path))?;
                let master = berth_sys::fd::recv_fd(conn.as_fd())
                    .map_err(Error::io("receive the pty master from", &path))?;
                self.ours.tty = Some(master);
            }
        }
        Ok(self.ours)
    }
}

/// Sets up the container's stdio before create: in tty mode a console socket in the container's
/// directory (through /proc/self/fd, so the path stays short); otherwise pipes, their container
/// ends dup'ed onto our 0, 1, 2, which the runtime's fork hands to the container's process.
pub fn prepare(dir: &Path, tty: bool, interactive: bool) -> Result<Pending> {
    let mut pending = Pending {
        console: None,
        ours: Stdio {
            tty: None,
            stdout: None,
            stderr: None,
            stdin: None,
        },
        theirs: Vec::new(),
        dir: dir.to_path_buf(),
    };
    if tty {
        let dirfd = File::open(dir).map_err(Error::io("open", dir))?;
        let path = short_path(&dirfd, "console.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(Error::io("bind console socket", dir))?;
        pending.theirs.push(dirfd.into());
        pending.console = Some((listener, path));
        return Ok(pending);
    }
    let pipe = || {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| Error::Io {
            step: "create a pipe for the container's stdio",
            path: dir.to_path_buf(),
            source: e.into(),
        })
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let stdin_theirs = if interactive {
        let (in_r, in_w) = pipe()?;
        pending.ours.stdin = Some(in_w);
        in_r
    } else {
        File::open("/dev/null")
            .map_err(Error::io("open", "/dev/null"))?
            .into()
    };
    for (fd, target) in [(&stdin_theirs, 0), (&out_w, 1), (&err_w, 2)] {
        berth_sys::fd::dup_onto(fd.as_fd(), target)
            .map_err(Error::io("dup2 the container's stdio", dir))?;
    }
    pending.ours.stdout = Some(out_r);
    pending.ours.stderr = Some(err_r);
    pending.theirs.extend([stdin_theirs, out_w, err_w]);
    Ok(pending)
}

/// `/proc/self/fd/<dirfd>/<name>`: a socket path well under the 108-byte limit however deep
/// the data root is.
pub fn short_path(dirfd: &File, name: &str) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dirfd.as_raw_fd()))
}
