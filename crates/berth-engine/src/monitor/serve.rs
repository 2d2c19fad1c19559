//! The monitor's loop for one run of the container: poll the init's pidfd, its output, the
//! clients and the exec'd processes; relay output to the log and the attached clients, input
//! and resizes to the container, stop requests and signals to its init, an exec's streams to
//! its client (exec.rs); at the exit drain, record and tear down.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use berth_sys::signal::SignalNumber;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::client::Client;
use super::exec::{self, Exec};
use super::health::Checker;
use super::logfile::LogFile;
use super::proto::{self, ErrorReply, ExecRequest, ExecResize, Kind, StopRequest};
use super::reap::{exit_code, reap_children, wait_readable};
use super::stdio::{self, Input, Read, Stdio};
use crate::engine::Engine;
use crate::events::{self, Event};
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
    pub(super) stop_signal: SignalNumber,
    pub(super) kill_at: Option<Instant>,
    /// Input for the container not written yet.
    pub(super) input: Input,
    /// Writes to the log that failed: the first is reported, the rest only counted (a full
    /// disk would otherwise fill monitor.log on it with one line per read of output).
    pub(super) log_failures: u64,
    /// The exec'd processes still running (a health probe among them).
    pub(super) execs: Vec<Exec>,
    /// The health check, if the container has one.
    pub(super) health: Option<Checker>,
    /// `--rm`, or an `rm -f` that asked (StopRequest::remove): the container is removed at
    /// its exit, which is reported before the runtime's delete and the unmounts (they follow
    /// in `lifecycle::finish_removal`, see `main_loop`); the record is not saved again.
    pub(super) remove: bool,
    /// With `remove`, its anonymous volumes too (`--rm` always, `rm -f` with `-v`).
    pub(super) remove_volumes: bool,
    /// What the start warned about (its primary network's warnings: a host firewall that
    /// drops forwarded traffic...), told to the clients in `Started`.
    pub(super) warnings: Vec<String>,
}

/// How one run of the container ended: its exit code, what of the teardown failed, and the
/// attachments whose links are still to delete (slow: see `network::delete_links`).
pub(super) struct Ended {
    pub(super) code: i32,
    pub(super) errors: Vec<String>,
    pub(super) links: Vec<berth_net::Attachment>,
    /// The container is to be removed (`Run::remove`), its anonymous volumes with it or not.
    pub(super) remove: bool,
    pub(super) remove_volumes: bool,
    /// The record as the exit left it (None if it could not be read).
    pub(super) record: Option<records::Record>,
}

/// Which fd a poll slot watches.
#[derive(Clone, Copy)]
enum Slot {
    Listener,
    Pidfd,
    Output(usize),
    Client(usize),
    Stdin,
    Exec(usize, exec::Fd),
}

impl Run<'_> {
    /// Relays until the init exits; returns how it ended, after the teardown. Whatever fails
    /// on the way, the container is never left running unwatched.
    pub(super) fn serve(mut self, listener: &UnixListener, clients: &mut Vec<Client>) -> Ended {
        let mut errors = Vec::new();
        let mut outputs = match self.stdio.take_outputs() {
            Ok(outputs) => outputs,
            Err(e) => {
                errors.push(format!("dup the pty master: {e}"));
                Vec::new()
            }
        };
        // Creating the container allocated a lot and ran much code, briefly: a second after
        // the start the monitor gives back the heap and the code pages only its start used
        // (what the loop needs faults back in). Containers that end sooner never pay for it.
        let mut trim_at = Some(Instant::now() + Duration::from_secs(1));
        if let Some(fd) = self.stdio.input_fd() {
            stdio::nonblocking(fd);
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
            for (i, c) in clients.iter().enumerate() {
                let mut events = c.events();
                if self.input.full() && c.hello.as_ref().is_some_and(|h| h.stdin) {
                    events.remove(PollFlags::POLLIN);
                }
                if !c.gone && !events.is_empty() {
                    slots.push(Slot::Client(i));
                    fds.push(PollFd::new(c.stream.as_fd(), events));
                }
            }
            if !self.input.buf.is_empty() {
                if let Some(fd) = self.stdio.input_fd() {
                    slots.push(Slot::Stdin);
                    fds.push(PollFd::new(fd, PollFlags::POLLOUT));
                }
            }
            for (i, e) in self.execs.iter().enumerate() {
                let mut exec_slots = Vec::new();
                e.poll_fds(&mut fds, &mut exec_slots);
                slots.extend(exec_slots.into_iter().map(|fd| Slot::Exec(i, fd)));
            }
            let probe_at = self.health.as_ref().and_then(Checker::deadline);
            let next = [self.kill_at, trim_at, probe_at]
                .into_iter()
                .flatten()
                .min();
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
                let _ = berth_sys::process::drop_clean_code_pages();
                let _ = berth_sys::process::drop_unused_stack();
                // Last: the two above read /proc into the heap.
                berth_sys::process::trim_heap();
            }
            self.reaped(reap_children(Some(self.pid)));
            if self.kill_at.is_some_and(|t| Instant::now() >= t) {
                self.kill_at = None;
                self.kill_all();
            }
            let mut exited = false;
            let mut closed = Vec::new();
            let mut exec_requests = Vec::new();
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
                        if self.pump(&outputs[i], clients) == Read::End {
                            closed.push(i);
                        }
                    }
                    Slot::Client(i) => {
                        if revents.contains(PollFlags::POLLOUT) {
                            clients[i].flush();
                        }
                        if revents.intersects(!PollFlags::POLLOUT) {
                            if let Some(req) = self.client_input(&mut clients[i]) {
                                exec_requests.push((i, req));
                            }
                        }
                    }
                    Slot::Stdin => self.flush_stdin(),
                    Slot::Exec(i, fd) => {
                        if let Some(e) = self.execs.get_mut(i) {
                            e.ready(fd, revents);
                        }
                    }
                }
            }
            for i in closed.into_iter().rev() {
                outputs.remove(i);
            }
            for (i, req) in exec_requests.into_iter().rev() {
                let client = clients.remove(i);
                self.start_exec(client, &req, clients);
            }
            self.finish_execs(clients, false);
            if let (Some(health), false) = (&mut self.health, exited) {
                health.tick(self.engine, &self.id, &mut self.execs);
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

    /// Starts the exec `req` names with `client` as its streams (unless detached); the client
    /// is told either way, and goes back to the others if the exec is not its to hold.
    fn start_exec(&mut self, mut client: Client, req: &ExecRequest, clients: &mut Vec<Client>) {
        if client.hello.is_some() {
            let refused = crate::error::Error::Invalid(
                "a connection attached to the container cannot start an exec: open another".into(),
            );
            client.refuse(&refused);
            clients.push(client);
            return;
        }
        match Exec::start(self.engine, &self.id, req) {
            Ok(mut exec) => {
                client.send(Kind::Started, b"");
                if req.detach {
                    clients.push(client);
                } else {
                    exec.attach(client);
                }
                self.execs.push(exec);
            }
            Err(e) => {
                client.refuse(&e);
                clients.push(client);
            }
        }
    }

    /// Notes the exit codes of reaped exec'd processes.
    fn reaped(&mut self, reaped: Vec<(i32, i32)>) {
        for (pid, code) in reaped {
            if let Some(e) = self.execs.iter_mut().find(|e| e.record.pid == pid) {
                e.exit.get_or_insert(code);
            }
        }
    }

    /// Finishes the execs that exited (every one once the container is gone), their clients
    /// back with the others for their last words.
    fn finish_execs(&mut self, clients: &mut Vec<Client>, container_gone: bool) {
        let (done, running): (Vec<Exec>, Vec<Exec>) = std::mem::take(&mut self.execs)
            .into_iter()
            .partition(|e| container_gone || e.exit.is_some());
        self.execs = running;
        for e in done {
            match &mut self.health {
                // A probe the container's end cut short has no result to record.
                Some(h) if h.owns(&e) && container_gone => drop(e.finish_probe(self.engine)),
                Some(h) if h.owns(&e) => h.finished(self.engine, &self.id, e),
                _ => clients.extend(e.finish(self.engine, None)),
            }
        }
    }

    /// SIGKILL to every process of the container (its cgroup).
    fn kill_all(&self) {
        let _ = berth_runtime::container::kill(
            &self.engine.runtime,
            &self.id,
            SignalNumber::KILL,
            true,
        );
    }

    /// One read of container output to the log and the attached clients.
    #[inline(never)] // its buffer below the serve loop's frame (mod.rs, "Stack")
    fn pump(&mut self, (stream, fd): &(usize, OwnedFd), clients: &mut [Client]) -> Read {
        let mut buf = [0u8; 32 * 1024];
        let read = stdio::read_output(fd, &mut buf);
        let Read::Data(n) = read else {
            return read;
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
        read
    }

    /// Writes what it can of the pending input; closes a pipe's end once asked and drained.
    fn flush_stdin(&mut self) {
        if self.input.flush(self.stdio.input_fd()) {
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

    /// What a client sent; an Exec asks for the client itself, which the caller hands over.
    fn client_input(&mut self, client: &mut Client) -> Option<ExecRequest> {
        let mut exec = None;
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
                    self.input.buf.extend_from_slice(&payload);
                    self.flush_stdin();
                }
                Kind::StdinClose if client.hello.as_ref().is_some_and(|h| h.stdin) => {
                    self.input.closing = true;
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
                Kind::Exec => match serde_json::from_slice::<ExecRequest>(&payload) {
                    Ok(req) => exec = Some(req),
                    Err(e) => {
                        client.send_json(
                            Kind::Error,
                            &ErrorReply {
                                code: 125,
                                message: format!("the monitor refused a malformed exec: {e}"),
                            },
                        );
                        client.gone = true;
                    }
                },
                Kind::ExecResize => {
                    if let Ok(r) = serde_json::from_slice::<ExecResize>(&payload) {
                        let found = self.execs.iter().find(|e| e.record.id == r.id);
                        found.inspect(|e| e.resize(r.rows, r.cols));
                    }
                }
                _ => {}
            }
        }
        exec.filter(|_| !client.gone)
    }

    /// The stop signal now, SIGKILL (to the whole cgroup) after the timeout.
    fn stop(&mut self, req: Option<StopRequest>) {
        let (timeout, signal) = match &req {
            Some(r) => (r.timeout, SignalNumber::parse(&r.signal)),
            None => (10, None),
        };
        match &req {
            // Removed at the exit: nothing will read the record again.
            Some(r) if r.remove => {
                self.remove = true;
                self.remove_volumes |= r.volumes;
            }
            _ => {
                let _ = self
                    .engine
                    .containers
                    .update(&self.id, |r| r.state.manually_stopped = true);
            }
        }
        if timeout == 0 {
            // The runtime's SIGKILL thaws a paused container itself.
            self.kill_all();
            return;
        }
        // A paused container cannot take the signal before it is thawed.
        let _ = berth_runtime::container::resume(&self.engine.runtime, &self.id);
        let signal = signal.unwrap_or(self.stop_signal);
        let _ = berth_sys::process::pidfd_send_signal(self.pidfd.as_fd(), signal.get());
        // Docker's -1: wait as long as it takes; any other wait is clamped to what an Instant
        // can hold (a year is plenty).
        self.kill_at = u64::try_from(timeout)
            .ok()
            .map(|secs| Duration::from_secs(secs.min(365 * 24 * 3600)))
            .and_then(|d| Instant::now().checked_add(d));
    }

    /// The init exited: drain its output, record the exit, delete, unmount, release the
    /// network. Every step is tried whatever failed before; the links are left to delete.
    fn finish(mut self, outputs: Vec<(usize, OwnedFd)>, clients: &mut Vec<Client>) -> Ended {
        for out in &outputs {
            stdio::nonblocking(out.1.as_fd());
            while matches!(self.pump(out, clients), Read::Data(_)) {}
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
        if !self.remove {
            match berth_runtime::container::delete(&self.engine.runtime, &self.id, true) {
                Ok(()) | Err(berth_runtime::Error::NotFound(_)) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }
        // Under the record's lock until the exit is recorded: a `network connect` racing the
        // exit either finished before (its lease is released here) or finds the container
        // exited.
        let containers = &self.engine.containers;
        let lock = containers.lock(&self.id);
        let mut record = containers.load(&self.id);
        let (errs, links) = crate::network::release(self.engine, &self.id, record.as_ref().ok());
        errors.extend(errs);
        for att in &links {
            crate::network::event(self.engine, "disconnect", att);
        }
        let dir = containers.dir(&self.id);
        if !self.remove {
            if let Err(e) = crate::bundle::teardown(&dir) {
                errors.push(e.to_string());
            }
        }
        let volumes =
            crate::volumes::local::release_all(self.engine, &self.id, record.as_ref().ok());
        errors.extend(volumes);
        // The exec'd processes went with the container's cgroup: their exits recorded too.
        let reaped = reap_children(None);
        self.reaped(reaped);
        self.finish_execs(clients, true);
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
                // Docker's: a health check no longer watched is unhealthy.
                if let Some(h) = &mut r.state.health {
                    h.status = crate::health::UNHEALTHY.into();
                }
                // A record about to be removed is not written again (its `die` event says it).
                if self.remove {
                    Ok(())
                } else {
                    containers.save(r).map_err(|e| e.to_string())
                }
            }
        };
        drop(lock);
        if let Ok(r) = &record {
            if oom {
                events::record(self.engine, Event::container(r, "oom"));
            }
            let die = Event::container(r, "die").with("exitCode", code.to_string());
            events::record(self.engine, die);
        }
        if let Err(e) = recorded {
            errors.push(format!("record the exit: {e}"));
        }
        Ended {
            code,
            errors,
            links,
            remove: self.remove,
            remove_volumes: self.remove_volumes,
            record: record.ok(),
        }
    }
}
