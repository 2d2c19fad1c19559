//! The monitor's life: serve the first client's hello, then run the container — create, start,
//! relay, record the exit, tear down — as many times as the restart policy says.

use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use super::logfile::LogFile;
use super::proto::{self, ErrorReply, Hello, Kind};
use super::serve::{Client, Run};
use super::stdio;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records::{self, Record, Status};
use crate::request::RestartPolicy;

pub fn main_loop(engine: &Engine, id: &str, mut first: UnixStream) -> Result<()> {
    let dir = engine.containers.dir(id);
    // One monitor per container, for its whole life: a second `start` racing the first finds
    // the lock taken and says so, before it touches the socket, the mounts or the record.
    let lock_path = dir.join("monitor.lock");
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(Error::io("open", &lock_path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let reply = ErrorReply {
                code: 125,
                message: format!(
                    "container {}: is already running (another monitor holds it)",
                    crate::error::short(id)
                ),
            };
            let _ = proto::write_json(&mut first, Kind::Error, &reply);
            return Ok(());
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", &lock_path)(e)),
    }
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
        let stdio = pending.finish(created.is_ok());
        match (created, stdio) {
            (Err(e), _) => Err(crate::lifecycle::command_error(e)),
            (Ok(_), Err(e)) => {
                let _ = berth_runtime::container::delete(&engine.runtime, id, true);
                Err(e)
            }
            (Ok(created), Ok(stdio)) => Ok((created, stdio)),
        }
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
        pid_start,
        pidfd,
        log,
        stop_signal,
        kill_at: None,
        stdin_buf: Vec::new(),
        stdin_closing: false,
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
