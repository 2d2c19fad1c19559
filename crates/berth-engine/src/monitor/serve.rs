//! The monitor's loop for one run of the container: poll the init's pidfd, its output and the
//! clients; relay output to the log and the attached clients, input and resizes to the
//! container, stop requests and signals to its init; at the exit drain, record and tear down.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use super::logfile::LogFile;
use super::proto::{self, Hello, Kind, StopRequest};
use super::stdio::Stdio;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records::{self, Status};

/// A connected client: attach streams, a waiter for the exit, or a stop request.
pub(super) struct Client {
    pub(super) stream: UnixStream,
    pub(super) buf: Vec<u8>,
    pub(super) hello: Option<Hello>,
    /// Wants the Exit frame (waiters, stoppers).
    pub(super) waits: bool,
    pub(super) gone: bool,
}

impl Client {
    pub(super) fn new(stream: UnixStream) -> Client {
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        Client {
            stream,
            buf: Vec::new(),
            hello: None,
            waits: false,
            gone: false,
        }
    }

    pub(super) fn send(&mut self, kind: Kind, payload: &[u8]) {
        if !self.gone && proto::write_frame(&mut self.stream, kind, payload).is_err() {
            self.gone = true;
        }
    }

    fn wants(&self, kind: Kind) -> bool {
        let Some(h) = &self.hello else { return false };
        match kind {
            Kind::Stdout => h.stdout,
            Kind::Stderr => h.stderr,
            _ => false,
        }
    }
}

/// Everything the loop works with for one run of the container.
pub(super) struct Run<'a> {
    pub(super) engine: &'a Engine,
    pub(super) id: String,
    pub(super) stdio: Stdio,
    pub(super) pid: i32,
    pub(super) pid_start: u64,
    pub(super) pidfd: OwnedFd,
    pub(super) log: Option<LogFile>,
    pub(super) stop_signal: Signal,
    pub(super) kill_at: Option<Instant>,
    /// Input for the container not written yet (its stdin is non-blocking: a container that
    /// does not read must not stall the monitor), and whether the end of it was asked for.
    pub(super) stdin_buf: Vec<u8>,
    pub(super) stdin_closing: bool,
}

/// Past this much unwritten input, the monitor stops reading its stdin clients (whose writes
/// then block: back-pressure) until the container reads.
const STDIN_BACKLOG: usize = 1 << 20;

/// What one read of container output gave.
#[derive(PartialEq, Eq)]
enum Pumped {
    Data,
    Nothing,
    End,
}

/// Which fd a poll slot watches.
#[derive(Clone, Copy)]
enum Slot {
    Listener,
    Pidfd,
    Output(usize),
    Client(usize),
    Stdin,
}

impl Run<'_> {
    /// Relays until the init exits; returns its exit code after the teardown.
    pub(super) fn serve(
        mut self,
        listener: &UnixListener,
        clients: &mut Vec<Client>,
    ) -> Result<(i32, Vec<berth_net::Attachment>)> {
        let mut outputs: Vec<(usize, OwnedFd)> = Vec::new();
        if let Some(t) = &self.stdio.tty {
            outputs.push((
                0,
                t.try_clone()
                    .map_err(Error::io("dup the pty master", "/dev/ptmx"))?,
            ));
        }
        if let Some(o) = self.stdio.stdout.take() {
            outputs.push((0, o));
        }
        if let Some(e) = self.stdio.stderr.take() {
            outputs.push((1, e));
        }
        // Creating the container allocated a lot and ran much code, briefly: a second after
        // the start the monitor gives back the heap and the code pages only its start used
        // (what the loop needs faults back in). Containers that end sooner never pay for it.
        let mut trim_at = Some(Instant::now() + Duration::from_secs(1));
        if let Some(fd) = self.stdin_fd() {
            let _ = nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
        }
        loop {
            let mut slots = vec![Slot::Listener, Slot::Pidfd];
            let mut fds = vec![
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN),
            ];
            for (i, (_, fd)) in outputs.iter().enumerate() {
                slots.push(Slot::Output(i));
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
            }
            let backlogged = self.stdin_buf.len() > STDIN_BACKLOG;
            for (i, c) in clients.iter().enumerate() {
                let held_back = backlogged && c.hello.as_ref().is_some_and(|h| h.stdin);
                if !c.gone && !held_back {
                    slots.push(Slot::Client(i));
                    fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
                }
            }
            if !self.stdin_buf.is_empty() {
                if let Some(fd) = self.stdin_fd() {
                    slots.push(Slot::Stdin);
                    fds.push(PollFd::new(fd, PollFlags::POLLOUT));
                }
            }
            let next = [self.kill_at, trim_at].into_iter().flatten().min();
            let timeout = match next {
                Some(t) => PollTimeout::from(
                    t.saturating_duration_since(Instant::now())
                        .as_millis()
                        .min(60_000) as u16,
                ),
                None => PollTimeout::from(5_000u16),
            };
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::io("poll", "monitor")(e.into())),
            }
            let ready: Vec<(Slot, bool)> = slots
                .iter()
                .zip(fds.iter())
                .map(|(s, f)| (*s, f.revents().is_some_and(|r| !r.is_empty())))
                .collect();
            drop(fds);
            if trim_at.is_some_and(|t| Instant::now() >= t) {
                trim_at = None;
                berth_sys::process::trim_heap();
                let _ = berth_sys::process::drop_clean_code_pages();
            }
            reap_orphans(Some(self.pid));
            if self.kill_at.is_some_and(|t| Instant::now() >= t) {
                self.kill_at = None;
                let _ = berth_runtime::container::kill(
                    &self.engine.runtime,
                    &self.id,
                    Signal::SIGKILL,
                    true,
                );
            }
            let mut exited = false;
            let mut closed = Vec::new();
            for (slot, is_ready) in ready {
                if !is_ready {
                    continue;
                }
                match slot {
                    Slot::Listener => {
                        if let Ok((s, _)) = listener.accept() {
                            clients.push(Client::new(s));
                        }
                    }
                    Slot::Pidfd => exited = true,
                    Slot::Output(i) => {
                        if self.pump(&outputs[i], clients) == Pumped::End {
                            closed.push(i);
                        }
                    }
                    Slot::Client(i) => self.client_input(&mut clients[i]),
                    Slot::Stdin => self.flush_stdin(),
                }
            }
            for i in closed.into_iter().rev() {
                outputs.remove(i);
            }
            clients.retain(|c| !c.gone);
            if exited {
                return self.finish(outputs, clients);
            }
        }
    }

    /// One read of container output to the log and the attached clients.
    fn pump(&mut self, (stream, fd): &(usize, OwnedFd), clients: &mut [Client]) -> Pumped {
        let mut buf = [0u8; 32 * 1024];
        let n = match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return Pumped::End,
            // A pty master shares its non-blocking flag with the stdin side.
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Pumped::Nothing,
            Err(_) => return Pumped::End,
            Ok(n) => n,
        };
        if let Some(log) = &mut self.log {
            if let Err(e) = log.write(*stream, &buf[..n]) {
                eprintln!("berth monitor {}: write log: {e}", &self.id);
            }
        }
        let kind = if *stream == 0 {
            Kind::Stdout
        } else {
            Kind::Stderr
        };
        for c in clients.iter_mut().filter(|c| c.wants(kind)) {
            c.send(kind, &buf[..n]);
        }
        Pumped::Data
    }

    /// Writes what it can of the pending input; closes a pipe's end once asked and drained.
    fn flush_stdin(&mut self) {
        while !self.stdin_buf.is_empty() {
            let Some(fd) = self.stdin_fd() else {
                self.stdin_buf.clear();
                break;
            };
            match nix::unistd::write(fd, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => return,
                // The container closed its stdin: what is left has nowhere to go.
                Err(_) => self.stdin_buf.clear(),
            }
        }
        if self.stdin_closing {
            // A pty has no end of input to give; a pipe does.
            self.stdio.stdin = None;
        }
    }

    fn client_input(&mut self, client: &mut Client) {
        let mut buf = [0u8; 32 * 1024];
        match client.stream.read(&mut buf) {
            Ok(0) | Err(_) => {
                client.gone = true;
                return;
            }
            Ok(n) => client.buf.extend_from_slice(&buf[..n]),
        }
        let frames = match proto::take_frames(&mut client.buf) {
            Ok(f) => f,
            Err(_) => {
                client.gone = true;
                return;
            }
        };
        for (kind, payload) in frames {
            match kind {
                Kind::Hello => {
                    let hello: Hello = serde_json::from_slice(&payload).unwrap_or_default();
                    client.waits = hello.wait;
                    if let (Some(tty), Some((r, c))) = (&self.stdio.tty, hello.size) {
                        let _ = berth_sys::pty::set_window_size(tty.as_fd(), r, c);
                    }
                    client.hello = Some(hello);
                }
                Kind::Stdin if client.hello.as_ref().is_some_and(|h| h.stdin) => {
                    self.stdin_buf.extend_from_slice(&payload);
                    self.flush_stdin();
                }
                Kind::StdinClose if client.hello.as_ref().is_some_and(|h| h.stdin) => {
                    self.stdin_closing = true;
                    self.flush_stdin();
                }
                Kind::Resize => {
                    if let (Some(tty), Some((r, c))) =
                        (&self.stdio.tty, proto::parse_resize(&payload))
                    {
                        let _ = berth_sys::pty::set_window_size(tty.as_fd(), r, c);
                    }
                }
                Kind::Signal if payload.len() == 4 => {
                    let n = i32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    let _ = berth_sys::process::pidfd_send_signal(self.pidfd.as_fd(), n);
                }
                Kind::Stop => {
                    let req: Option<StopRequest> = serde_json::from_slice(&payload).ok();
                    client.waits = true;
                    self.stop(req);
                }
                _ => {}
            }
        }
    }

    fn stdin_fd(&self) -> Option<BorrowedFd<'_>> {
        self.stdio
            .tty
            .as_ref()
            .or(self.stdio.stdin.as_ref())
            .map(|f| f.as_fd())
    }

    /// The stop signal now, SIGKILL (to the whole cgroup) after the timeout.
    fn stop(&mut self, req: Option<StopRequest>) {
        let (timeout, signal) = match &req {
            Some(r) => (r.timeout, crate::lifecycle::parse_signal(&r.signal)),
            None => (10, None),
        };
        let _ = self
            .engine
            .containers
            .update(&self.id, |r| r.state.manually_stopped = true);
        // A paused container cannot take the signal before it is thawed.
        let _ = berth_runtime::container::resume(&self.engine.runtime, &self.id);
        if timeout == 0 {
            let _ = berth_runtime::container::kill(
                &self.engine.runtime,
                &self.id,
                Signal::SIGKILL,
                true,
            );
            return;
        }
        let signal = signal.unwrap_or(self.stop_signal);
        let _ = berth_sys::process::pidfd_send_signal(self.pidfd.as_fd(), signal as i32);
        // Docker's -1: wait as long as it takes; any other wait is clamped to what an Instant
        // can hold (a year is plenty).
        self.kill_at = u64::try_from(timeout)
            .ok()
            .map(|secs| Duration::from_secs(secs.min(365 * 24 * 3600)))
            .and_then(|d| Instant::now().checked_add(d));
    }

    /// The init exited: drain its output, record the exit, delete, unmount, release the
    /// network; returns the exit code and the attachments whose links are still to delete
    /// (slow: see `network::delete_links`).
    fn finish(
        mut self,
        outputs: Vec<(usize, OwnedFd)>,
        clients: &mut [Client],
    ) -> Result<(i32, Vec<berth_net::Attachment>)> {
        for out in &outputs {
            let _ = nix::fcntl::fcntl(
                &out.1,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
            while self.pump(out, clients) == Pumped::Data {}
        }
        if let Some(log) = &mut self.log {
            let _ = log.flush();
        }
        let code = exit_code(&self.pidfd, self.pid, self.pid_start);
        let oom = crate::lifecycle::oom_killed(&self.id);
        let mut errors = Vec::new();
        if let Err(e) = berth_runtime::container::delete(&self.engine.runtime, &self.id, true) {
            errors.push(e.to_string());
        }
        let mut links = Vec::new();
        if let Ok(record) = self.engine.containers.load(&self.id) {
            let (errs, atts) = crate::network::release(self.engine, &record);
            errors.extend(errs);
            links = atts;
        }
        let dir = self.engine.containers.dir(&self.id);
        if let Err(e) = crate::bundle::teardown(&dir) {
            errors.push(e.to_string());
        }
        reap_orphans(None);
        self.engine.containers.update(&self.id, |r| {
            r.state.status = Status::Exited;
            r.state.exit_code = code;
            r.state.pid = 0;
            r.state.finished_at = records::now();
            r.state.oom_killed = oom;
            r.state.error = errors.join("; ");
            r.network = None;
            r.networks.clear();
        })?;
        Ok((code, links))
    }
}

/// The init's exit code, shell style (128 + n for signal n), once its pidfd is readable (the
/// kernel's word that it exited: never a stop, whoever traces it). Never blocks: a process of
/// the container that ptrace-attached to the init is told of the exit first, and until it
/// collects it the init is not ours to reap; the kernel's record of the exit in /proc is read
/// instead (the pid cannot be reused while we have not reaped it).
fn exit_code(pidfd: &OwnedFd, pid: i32, start: u64) -> i32 {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::__WALL;
    loop {
        return match waitid(Id::PIDFd(pidfd.as_fd()), flags) {
            Ok(WaitStatus::Exited(_, code)) => code,
            Ok(WaitStatus::Signaled(_, sig, _)) => 128 + sig as i32,
            Err(nix::errno::Errno::EINTR) => continue,
            _ => zombie_exit_code(pid, start).unwrap_or(255),
        };
    }
}

/// The wait status /proc/<pid>/stat keeps for a zombie (field 52), as an exit code.
fn zombie_exit_code(pid: i32, start: u64) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: field 3 (state) is first, 22 (starttime) and
    // 52 (exit_code) follow.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let same = fields.first() == Some(&"Z") && fields.get(19)?.parse::<u64>().ok()? == start;
    let status: i32 = fields.get(49)?.parse().ok()?;
    same.then(|| match status & 0x7f {
        0 => (status >> 8) & 0xff,
        sig => 128 + sig,
    })
}

/// Reaps orphans the subreaper inherited; all but `init` while its exit is still to be read.
fn reap_orphans(init: Option<i32>) {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    loop {
        // Peek first so the init's status is left for `exit_code`.
        let flags = WaitPidFlag::WEXITED
            | WaitPidFlag::WNOHANG
            | WaitPidFlag::WNOWAIT
            | WaitPidFlag::__WALL;
        match waitid(Id::All, flags) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(status) => match status.pid() {
                Some(p) if Some(p.as_raw()) != init => {
                    let _ = waitid(Id::Pid(p), WaitPidFlag::WEXITED | WaitPidFlag::__WALL);
                }
                _ => return,
            },
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("hello", &self.hello)
            .finish()
    }
}
