//! The monitor's life: serve the first client's hello, then run the container — create, start,
//! relay, record the exit, tear down — as many times as the restart policy says.

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use super::logfile::LogFile;
use super::proto::{self, ErrorReply, Hello, Kind, StopRequest};
use super::stdio::{self, Stdio};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records::{self, Record, Status};
use crate::request::RestartPolicy;

/// A connected client: attach streams, a waiter for the exit, or a stop request.
struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
    hello: Option<Hello>,
    /// Wants the Exit frame (waiters, stoppers).
    waits: bool,
    gone: bool,
}

impl Client {
    fn new(stream: UnixStream) -> Client {
        let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
        Client {
            stream,
            buf: Vec::new(),
            hello: None,
            waits: false,
            gone: false,
        }
    }

    fn send(&mut self, kind: Kind, payload: &[u8]) {
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
struct Run<'a> {
    engine: &'a Engine,
    id: String,
    stdio: Stdio,
    pid: i32,
    pidfd: OwnedFd,
    log: Option<LogFile>,
    stop_signal: Signal,
    kill_at: Option<Instant>,
}

pub fn main_loop(engine: &Engine, id: &str, first: UnixStream) -> Result<()> {
    let dir = engine.containers.dir(id);
    let dirfd = std::fs::File::open(&dir).map_err(Error::io("open", &dir))?;
    let sock = stdio::short_path(&dirfd, "monitor.sock");
    let _ = std::fs::remove_file(&sock);
    let listener =
        UnixListener::bind(&sock).map_err(Error::io("listen on", dir.join("monitor.sock")))?;
    let mut clients = vec![Client::new(first)];
    // The first client says what it attaches before anything runs, so no output is lost.
    let hello = read_hello(&mut clients[0]);
    clients[0].hello = Some(hello.clone());
    clients[0].waits = hello.wait;
    let mut first_run = true;
    loop {
        let record = engine.containers.load(id)?;
        let (code, links) = match start(engine, &record, hello.size.filter(|_| first_run)) {
            Ok(run) => {
                for c in clients.iter_mut() {
                    c.send(Kind::Started, b"");
                }
                run.serve(&listener, &mut clients)?
            }
            Err(e) => {
                let reply = ErrorReply {
                    code: e.exit_code(),
                    message: e.to_string(),
                };
                let _ = engine.containers.update(id, |r| {
                    r.state.error = reply.message.clone();
                    if r.state.status.is_live() {
                        r.state.status = Status::Exited;
                        r.state.exit_code = i32::from(reply.code);
                        r.state.finished_at = records::now();
                    }
                });
                let payload = serde_json::to_vec(&reply).unwrap_or_default();
                if record.request.auto_remove {
                    crate::lifecycle::remove_all(engine, &record);
                }
                for c in clients.iter_mut() {
                    c.send(Kind::Error, &payload);
                }
                return Ok(());
            }
        };
        first_run = false;
        let record = engine.containers.load(id)?;
        let delay = restart_delay(&record, code);
        if let Some(delay) = delay {
            engine.containers.update(id, |r| {
                r.state.status = Status::Restarting;
                r.state.restart_count += 1;
            })?;
            notify_exit(&mut clients, code);
            clients.retain(|c| !c.gone && c.hello.is_none() && !c.waits);
            // The next attach names its veth like the old one: that one must be gone first.
            log_errors(id, crate::network::delete_links(engine, &links));
            if wait_or_stop(engine, id, &listener, delay)? {
                continue;
            }
            engine
                .containers
                .update(id, |r| r.state.status = Status::Exited)?;
        }
        if record.request.auto_remove {
            crate::lifecycle::remove_all(engine, &record);
        }
        notify_exit(&mut clients, code);
        // Last, after the exit was reported: deleting a veth waits for the kernel (tens of
        // ms), and `rm` waits for this monitor to end, so nothing is left once it returns.
        log_errors(id, crate::network::delete_links(engine, &links));
        return Ok(());
    }
}

fn log_errors(id: &str, errors: Vec<String>) {
    if !errors.is_empty() {
        eprintln!(
            "berth monitor {}: {}",
            crate::error::short(id),
            errors.join("; ")
        );
    }
}

fn notify_exit(clients: &mut [Client], code: i32) {
    for c in clients.iter_mut().filter(|c| c.waits) {
        c.send(Kind::Exit, &code.to_be_bytes());
    }
}

fn read_hello(client: &mut Client) -> Hello {
    let _ = client
        .stream
        .set_read_timeout(Some(Duration::from_secs(30)));
    let hello = match proto::read_frame(&mut client.stream) {
        Ok(Some((Kind::Hello, payload))) => serde_json::from_slice(&payload).unwrap_or_default(),
        // The CLI went away: start detached, as asked when it spawned us.
        _ => {
            client.gone = true;
            Hello::default()
        }
    };
    let _ = client.stream.set_read_timeout(None);
    hello
}

/// Docker's restart decision and its backoff (100 ms doubling, reset after 10 s of running).
fn restart_delay(record: &Record, code: i32) -> Option<Duration> {
    let st = &record.state;
    if st.manually_stopped || record.request.auto_remove {
        return None;
    }
    let again = match record.request.restart {
        RestartPolicy::No => false,
        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
        RestartPolicy::OnFailure { max_retries } => {
            code != 0 && (max_retries == 0 || st.restart_count < max_retries)
        }
    };
    let ran_long = humantime::parse_rfc3339(&st.started_at)
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|d| d > Duration::from_secs(10));
    let step = if ran_long { 0 } else { st.restart_count.min(9) };
    again.then(|| Duration::from_millis(100 << step))
}

/// Sleeps `delay` while answering clients; true to restart, false if a stop came.
fn wait_or_stop(
    engine: &Engine,
    id: &str,
    listener: &UnixListener,
    delay: Duration,
) -> Result<bool> {
    let until = Instant::now() + delay;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(true);
        }
        let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        let ms = left.as_millis().min(60_000) as u16;
        if poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) > 0 {
            if let Ok((mut s, _)) = listener.accept() {
                if let Ok(Some((Kind::Stop, _))) = proto::read_frame(&mut s) {
                    engine
                        .containers
                        .update(id, |r| r.state.manually_stopped = true)?;
                    return Ok(false);
                }
            }
        }
    }
}

/// Bundle, create, network, record, start.
fn start<'a>(engine: &'a Engine, record: &Record, size: Option<(u16, u16)>) -> Result<Run<'a>> {
    let id = record.id.as_str();
    let dir = engine.containers.dir(id);
    let prepared = crate::bundle::prepare(engine, record)?;
    let req = &record.request;
    let created = (|| {
        let pending = stdio::prepare(&dir, req.tty, req.interactive)?;
        let opts = berth_runtime::process::parent::CreateOptions {
            id: id.to_string(),
            bundle: dir.clone(),
            console_socket: pending.console_socket(),
            ..Default::default()
        };
        let created = berth_runtime::process::parent::create(&engine.runtime, &opts);
        let stdio = pending.finish()?;
        let created = created.map_err(crate::lifecycle::command_error)?;
        Ok::<_, Error>((created, stdio))
    })();
    let (created, stdio) = match created {
        Ok(c) => c,
        Err(e) => {
            let _ = crate::bundle::teardown(&dir);
            return Err(e);
        }
    };
    let pid = created.pid;
    let abort = |e: Error| {
        let _ = berth_runtime::container::delete(&engine.runtime, id, true);
        let _ = crate::bundle::teardown(&dir);
        e
    };
    if let (Some(tty), Some((rows, cols))) = (&stdio.tty, size) {
        let _ = berth_sys::pty::set_window_size(tty.as_fd(), rows, cols);
    }
    let pidfd = berth_sys::process::pidfd_open(pid)
        .map_err(Error::io("pidfd_open the container's init", &dir))
        .map_err(abort)?;
    let attachment =
        crate::network::attach(engine, record, pid, &prepared.exposed).map_err(abort)?;
    let undo_net = |e: Error| {
        if let Some(att) = &attachment {
            if let Ok(store) = crate::network::store(engine) {
                let _ = store.detach(att);
            }
        }
        abort(e)
    };
    if let Some(att) = &attachment {
        crate::bundle::network_etc_files(&dir, record, att).map_err(undo_net)?;
    }
    let network = attachment
        .as_ref()
        .and_then(|a| serde_json::to_value(a).ok());
    let log = open_log(&dir, id, req).map_err(undo_net)?;
    let stop_signal =
        crate::lifecycle::parse_signal(&prepared.stop_signal).unwrap_or(Signal::SIGTERM);
    let pid_start = berth_runtime::state::process_start_time(pid).unwrap_or(0);
    let me = std::process::id() as i32;
    let me_start = berth_runtime::state::process_start_time(me).unwrap_or(0);
    engine
        .containers
        .update(id, |r| {
            r.state.status = Status::Running;
            r.state.pid = pid;
            r.state.pid_start = pid_start;
            r.state.monitor_pid = me;
            r.state.monitor_start = me_start;
            r.state.started_at = records::now();
            r.state.finished_at = String::new();
            r.state.exit_code = 0;
            r.state.error = String::new();
            r.state.manually_stopped = false;
            r.hostname = prepared.hostname.clone();
            r.network = network.clone();
        })
        .map_err(undo_net)?;
    berth_runtime::container::start(&engine.runtime, id)
        .map_err(crate::lifecycle::command_error)
        .map_err(undo_net)?;
    Ok(Run {
        engine,
        id: id.to_string(),
        stdio,
        pid,
        pidfd,
        log,
        stop_signal,
        kill_at: None,
    })
}

fn open_log(
    dir: &std::path::Path,
    id: &str,
    req: &crate::request::RunRequest,
) -> Result<Option<LogFile>> {
    if req.log_driver == "none" {
        return Ok(None);
    }
    let max_size = req
        .log_opts
        .get("max-size")
        .and_then(|s| super::logfile::parse_size(s));
    let max_files = req
        .log_opts
        .get("max-file")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let path = dir.join(format!("{id}-json.log"));
    LogFile::open(&path, max_size, max_files)
        .map(Some)
        .map_err(Error::io("open log", &path))
}

/// Which fd a poll slot watches.
#[derive(Clone, Copy)]
enum Slot {
    Listener,
    Pidfd,
    Output(usize),
    Client(usize),
}

impl Run<'_> {
    /// Relays until the init exits; returns its exit code after the teardown.
    fn serve(
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
        // Creating the container allocated a lot and ran much code, briefly: once the
        // container has run quietly for a second, the monitor gives back the heap and the code
        // pages only its start used (what the loop needs faults back in). Short-lived
        // containers never pay for it.
        let mut trimmed = false;
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
            for (i, c) in clients.iter().enumerate() {
                if !c.gone {
                    slots.push(Slot::Client(i));
                    fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
                }
            }
            let timeout = match self.kill_at {
                Some(t) => PollTimeout::from(
                    t.saturating_duration_since(Instant::now())
                        .as_millis()
                        .min(60_000) as u16,
                ),
                None if !trimmed => PollTimeout::from(1_000u16),
                None => PollTimeout::from(5_000u16),
            };
            match poll(&mut fds, timeout) {
                Ok(0) if !trimmed => {
                    trimmed = true;
                    berth_sys::process::trim_heap();
                    let _ = berth_sys::process::drop_clean_code_pages();
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::io("poll", "monitor")(e.into())),
            }
            let ready: Vec<(Slot, bool)> = slots
                .iter()
                .zip(fds.iter())
                .map(|(s, f)| (*s, f.revents().is_some_and(|r| !r.is_empty())))
                .collect();
            drop(fds);
            reap_orphans(self.pid);
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
                        if !self.pump(&outputs[i], clients) {
                            closed.push(i);
                        }
                    }
                    Slot::Client(i) => self.client_input(&mut clients[i]),
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

    /// One read of container output to the log and the attached clients; false at its end.
    fn pump(&mut self, (stream, fd): &(usize, OwnedFd), clients: &mut [Client]) -> bool {
        let mut buf = [0u8; 32 * 1024];
        let n = match nix::unistd::read(fd, &mut buf) {
            Ok(0) | Err(_) => return false,
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
        true
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
                    if let Some(fd) = self.stdin_fd() {
                        let _ = write_all(fd, &payload);
                    }
                }
                Kind::StdinClose if client.hello.as_ref().is_some_and(|h| h.stdin) => {
                    // A pty has no end of input to give; a pipe does.
                    self.stdio.stdin = None;
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
        if timeout <= 0 {
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
        self.kill_at = Some(Instant::now() + Duration::from_secs(timeout as u64));
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
            while self.pump(out, clients) {}
        }
        if let Some(log) = &mut self.log {
            let _ = log.flush();
        }
        let code = wait_init(self.pid);
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
        reap_orphans(self.pid);
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

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The init's exit code, shell style (128 + n for signal n).
fn wait_init(pid: i32) -> i32 {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Err(nix::errno::Errno::EINTR) | Ok(_) => continue,
            // Not our child (it was reparented away): the code is lost.
            Err(_) => return 255,
        }
    }
}

/// Reaps orphans the subreaper inherited (other than the init, which `wait_init` collects).
fn reap_orphans(init: i32) {
    use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
    loop {
        // Peek first so the init's status is left for wait_init.
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::All, flags) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(status) => match status.pid() {
                Some(p) if p.as_raw() != init => {
                    let _ = nix::sys::wait::waitpid(p, None);
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
