//! The monitor's loop for one run of the container: poll the init's pidfd, its output and the
//! clients; relay output to the log and the attached clients, input and resizes to the
//! container, stop requests and signals to its init; at the exit drain, record and tear down.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use super::client::Client;
use super::logfile::LogFile;
use super::proto::{self, Kind, StopRequest};
use super::stdio::Stdio;
use crate::engine::Engine;
use crate::records::{self, Status};

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
    /// Writes to the log that failed: the first is reported, the rest only counted (a full
    /// disk would otherwise fill monitor.log on it with one line per read of output).
    pub(super) log_failures: u64,
}

/// How one run of the container ended: its exit code, what of the teardown failed, and the
/// attachments whose links are still to delete (slow: see `network::delete_links`).
pub(super) struct Ended {
    pub(super) code: i32,
    pub(super) errors: Vec<String>,
    pub(super) links: Vec<berth_net::Attachment>,
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
    /// Relays until the init exits; returns how it ended, after the teardown. Whatever fails
    /// on the way, the container is never left running unwatched.
    pub(super) fn serve(mut self, listener: &UnixListener, clients: &mut Vec<Client>) -> Ended {
        let mut outputs: Vec<(usize, OwnedFd)> = Vec::new();
        let mut errors = Vec::new();
        if let Some(t) = &self.stdio.tty {
            match t.try_clone() {
                Ok(fd) => outputs.push((0, fd)),
                Err(e) => errors.push(format!("dup the pty master: {e}")),
            }
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
        while errors.is_empty() {
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
                let mut events = c.events();
                if backlogged && c.hello.as_ref().is_some_and(|h| h.stdin) {
                    events.remove(PollFlags::POLLIN);
                }
                if !c.gone && !events.is_empty() {
                    slots.push(Slot::Client(i));
                    fds.push(PollFd::new(c.stream.as_fd(), events));
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
                Err(e) => {
                    errors.push(format!("poll: {e}"));
                    break;
                }
            }
            let ready: Vec<(Slot, PollFlags)> = slots
                .iter()
                .zip(fds.iter())
                .map(|(s, f)| (*s, f.revents().unwrap_or(PollFlags::empty())))
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
                self.kill_all();
            }
            let mut exited = false;
            let mut closed = Vec::new();
            for (slot, revents) in ready {
                if revents.is_empty() {
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
                    Slot::Client(i) => {
                        if revents.contains(PollFlags::POLLOUT) {
                            clients[i].flush();
                        }
                        if revents.intersects(!PollFlags::POLLOUT) {
                            self.client_input(&mut clients[i]);
                        }
                    }
                    Slot::Stdin => self.flush_stdin(),
                }
            }
            for i in closed.into_iter().rev() {
                outputs.remove(i);
            }
            clients.retain(|c| !c.gone);
            if exited {
                break;
            }
        }
        if !errors.is_empty() {
            // The container cannot be watched: it is not left running unwatched.
            self.kill_all();
            let _ = wait_readable(&self.pidfd);
        }
        let mut ended = self.finish(outputs, clients);
        errors.append(&mut ended.errors);
        ended.errors = errors;
        ended
    }

    /// SIGKILL to every process of the container (its cgroup).
    fn kill_all(&self) {
        let _ =
            berth_runtime::container::kill(&self.engine.runtime, &self.id, Signal::SIGKILL, true);
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
                self.log_failed(&e);
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

    fn log_failed(&mut self, e: &std::io::Error) {
        if self.log_failures == 0 {
            eprintln!(
                "berth monitor {}: write log: {e} (further failures are only counted)",
                crate::error::short(&self.id)
            );
        }
        self.log_failures += 1;
    }

    fn client_input(&mut self, client: &mut Client) {
        let frames = client.read_frames();
        for (kind, payload) in frames {
            match kind {
                Kind::Attach => {
                    let size = client.take_hello(&payload).and_then(|h| h.size);
                    if let (Some(tty), Some((r, c))) = (&self.stdio.tty, size) {
                        let _ = berth_sys::pty::set_window_size(tty.as_fd(), r, c);
                    }
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
            self.kill_all();
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
    /// network. Every step is tried whatever failed before; the links are left to delete.
    fn finish(mut self, outputs: Vec<(usize, OwnedFd)>, clients: &mut [Client]) -> Ended {
        for out in &outputs {
            let _ = nix::fcntl::fcntl(
                &out.1,
                nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
            );
            while self.pump(out, clients) == Pumped::Data {}
        }
        if let Some(log) = &mut self.log {
            if let Err(e) = log.flush() {
                self.log_failed(&e);
            }
        }
        if self.log_failures > 1 {
            eprintln!(
                "berth monitor {}: {} writes to the log failed in all",
                crate::error::short(&self.id),
                self.log_failures
            );
        }
        let mut errors = Vec::new();
        let code = exit_code(&self.pidfd, self.pid, self.pid_start);
        let oom = crate::lifecycle::oom_killed(&self.id);
        match berth_runtime::container::delete(&self.engine.runtime, &self.id, true) {
            Ok(()) | Err(berth_runtime::Error::NotFound(_)) => {}
            Err(e) => errors.push(e.to_string()),
        }
        // Under the record's lock until the exit is recorded: a `network connect` racing the
        // exit either finished before (its lease is released here) or finds the container
        // exited.
        let containers = &self.engine.containers;
        let lock = containers.lock(&self.id);
        let mut record = containers.load(&self.id);
        let (errs, links) = crate::network::release(self.engine, &self.id, record.as_ref().ok());
        errors.extend(errs);
        let dir = containers.dir(&self.id);
        if let Err(e) = crate::bundle::teardown(&dir) {
            errors.push(e.to_string());
        }
        reap_orphans(None);
        let recorded = match (&lock, &mut record) {
            (Err(e), _) => Err(e.to_string()),
            (_, Err(e)) => Err(e.to_string()),
            (Ok(_), Ok(r)) => {
                r.state.status = Status::Exited;
                r.state.exit_code = code;
                r.state.pid = 0;
                r.state.finished_at = records::now();
                r.state.oom_killed = oom;
                r.state.error = errors.join("; ");
                r.network = None;
                r.networks.clear();
                containers.save(r).map_err(|e| e.to_string())
            }
        };
        drop(lock);
        if let Err(e) = recorded {
            errors.push(format!("record the exit: {e}"));
        }
        Ended {
            code,
            errors,
            links,
        }
    }
}

/// Waits, with no timeout, until the pidfd is readable: its process exited.
fn wait_readable(pidfd: &OwnedFd) -> nix::Result<()> {
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r.map(drop),
        }
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
