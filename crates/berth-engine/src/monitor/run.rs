//! The monitor's life: serve the first client's hello, then run the container — create, start,
//! relay, record the exit, tear down — as many times as the restart policy says.

use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use berth_sys::signal::SignalNumber;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::client::{self, Client, LAST_WORDS};
use super::health::Checker;
use super::logfile::LogFile;
use super::proto::{self, AttachOptions, ErrorReply, Kind};
use super::serve::Run;
use super::stdio;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events::{self, Event};
use crate::records::{self, Owner, Record, Status};
use crate::request::RestartPolicy;

pub fn main_loop(engine: &Engine, id: &str, mut first: UnixStream) -> Result<()> {
    // One owner per container for the monitor's whole life (records::Owner): a second `start`
    // racing the first, or an `rm` removing the container, finds it taken and we say so before
    // we touch the socket, the mounts or the record; the monitor of the last run, finishing
    // its teardown, is waited for.
    let _owner = match crate::lifecycle::own_for_start(engine, id) {
        Ok(Owner::Us(lock)) => lock,
        Ok(Owner::Other(_)) => {
            let message = "is busy: another monitor or an rm holds it";
            return refuse(&mut first, &Error::state(id, message));
        }
        Err(e) => return refuse(&mut first, &e),
    };
    // Removed before we got here (the lock is taken by path: nothing is left to run).
    let record = match engine.containers.load(id) {
        Ok(record) => record,
        Err(e) => return refuse(&mut first, &e),
    };
    // The record as read serves the first start (one read less on its way), unless the
    // teardown below may have changed it.
    let mut fresh = Some(record);
    // A monitor killed while it started the container (its init created, the record not yet
    // saying running) left that init, its runtime state, networks and mounts: cleared now,
    // or the runtime's create would find the id taken at every start until `rm -f`.
    if let Some(record) =
        fresh.take_if(|r| !r.state.status.is_live() && engine.runtime.dir(id).exists())
    {
        log_errors(id, &crate::lifecycle::teardown(engine, id, Some(&record)));
    }
    let dir = engine.containers.dir(id);
    let dirfd = std::fs::File::open(&dir).map_err(Error::io("open", &dir))?;
    let sock = stdio::short_path(&dirfd, "monitor.sock");
    let _ = std::fs::remove_file(&sock);
    let listener =
        UnixListener::bind(&sock).map_err(Error::io("listen on", dir.join("monitor.sock")))?;
    // The first client says what it attaches before anything runs, so no output is lost.
    let hello = match read_hello(&mut first) {
        Ok(hello) => hello,
        Err(reply) => {
            let _ = proto::write_json(&mut first, Kind::Error, &reply);
            return Ok(());
        }
    };
    let size = hello.as_ref().and_then(|h| h.size);
    let mut clients = vec![Client::new(first)];
    match hello {
        Some(h) => {
            clients[0].waits = h.wait;
            clients[0].hello = Some(h);
        }
        // The CLI went away: start detached, as asked when it spawned us.
        None => clients[0].gone = true,
    }
    clients.extend(client::pending(&dir));
    let mut first_run = true;
    loop {
        let record = match fresh.take().map_or_else(|| engine.containers.load(id), Ok) {
            Ok(record) => record,
            Err(e) => {
                start_failed(engine, id, None, &mut clients, &e);
                return Ok(());
            }
        };
        let size = size.or(record.request.console_size);
        let run = match start(engine, &record, size.filter(|_| first_run)) {
            Ok(run) => run,
            Err(e) => {
                start_failed(engine, id, Some(&record), &mut clients, &e);
                return Ok(());
            }
        };
        first_run = false;
        let started = serde_json::to_vec(&run.warnings).unwrap_or_default();
        clients
            .iter_mut()
            .for_each(|c| c.send(Kind::Started, &started));
        let ended = run.serve(&listener, &mut clients);
        log_errors(id, &ended.errors);
        let restarts = if ended.remove {
            None
        } else {
            restart(engine, id, ended.code)
        };
        if let Some(delay) = restarts {
            client::notify_exit(&mut clients, ended.code);
            client::drain(&mut clients, LAST_WORDS);
            clients.retain(|c| !c.gone && c.hello.is_none() && !c.waits);
            // The next attach names its veth like the old one: that one must be gone first.
            log_errors(id, &crate::network::delete_links(engine, &ended.links));
            if wait_or_stop(engine, id, &listener, &mut clients, delay) {
                continue;
            }
            if let Err(e) = engine
                .containers
                .update(id, |r| r.state.status = Status::Exited)
            {
                log_errors(id, &[e.to_string()]);
            }
        }
        // `--rm` (or `rm -f`): the exit is reported once the container is gone from every listing and its
        // name is free (Docker's `run --rm` returns then); the runtime's delete (cgroups), the
        // unmounts (each waits for an RCU grace period) and the files follow it.
        let doomed = if ended.remove {
            // The record as the exit left it: a `rename` meanwhile changed its name.
            let last = ended.record.as_ref().unwrap_or(&record);
            let (errors, doomed) =
                crate::lifecycle::remove_at_exit(engine, last, ended.remove_volumes);
            log_errors(id, &errors);
            Some(doomed)
        } else {
            None
        };
        client::notify_exit(&mut clients, ended.code);
        client::drain(&mut clients, LAST_WORDS);
        if let Some(doomed) = doomed {
            let errors = crate::lifecycle::finish_removal(engine, id, doomed.as_deref());
            log_errors(id, &errors);
        }
        // Last, after the exit was reported: deleting a veth waits for the kernel (tens of
        // ms), and `rm` waits for this monitor to end, so nothing is left once it returns.
        log_errors(id, &crate::network::delete_links(engine, &ended.links));
        return Ok(());
    }
}

/// Tells the spawning client why this monitor will not run the container.
fn refuse(first: &mut UnixStream, e: &Error) -> Result<()> {
    let reply = ErrorReply {
        code: e.exit_code(),
        message: e.to_string(),
    };
    let _ = proto::write_json(first, Kind::Error, &reply);
    Ok(())
}

/// The container did not start: the reason recorded, `--rm` honoured, the clients told.
fn start_failed(
    engine: &Engine,
    id: &str,
    record: Option<&Record>,
    clients: &mut [Client],
    e: &Error,
) {
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
        } else {
            // Docker's (moby's containerStart): the command's own 126 or 127; for any other
            // failure 128, unless an earlier run left a status to keep.
            match e.command_code() {
                Some(code) => r.state.exit_code = i32::from(code),
                None if r.state.exit_code == 0 => r.state.exit_code = 128,
                None => {}
            }
        }
    });
    if let Some(record) = record.filter(|r| r.request.auto_remove) {
        if let Err(e) = crate::lifecycle::remove_all(engine, record) {
            log_errors(id, &[e.to_string()]);
        }
    }
    for c in clients.iter_mut() {
        c.send_json(Kind::Error, &reply);
    }
    client::drain(clients, LAST_WORDS);
}

fn log_errors(id: &str, errors: &[String]) {
    if !errors.is_empty() {
        eprintln!(
            "berth monitor {}: {}",
            crate::error::short(id),
            errors.join("; ")
        );
    }
}

/// The first client's Start; None if the spawning CLI went away (or said nothing for 30 s);
/// the Error reply refusing anything else.
fn read_hello(first: &mut UnixStream) -> std::result::Result<Option<AttachOptions>, ErrorReply> {
    let _ = first.set_read_timeout(Some(Duration::from_secs(30)));
    let hello = match proto::read_frame(first) {
        Ok(Some((Kind::Start, payload))) => client::parse_hello(&payload).map(Some),
        Ok(Some((kind, _))) => Err(ErrorReply {
            code: 125,
            message: format!("the monitor expected a Start, not a {kind:?} frame"),
        }),
        Ok(None) | Err(_) => Ok(None),
    };
    let _ = first.set_read_timeout(None);
    hello
}

/// Whether the restart policy restarts the container after its exit with `code`, and after
/// which delay; if so it is recorded as restarting. A record that cannot be read or written
/// is never restarted.
fn restart(engine: &Engine, id: &str, code: i32) -> Option<Duration> {
    let delay = match engine.containers.load(id) {
        Ok(record) => restart_delay(&record, code)?,
        Err(e) => {
            log_errors(id, &[format!("no restart: {e}")]);
            return None;
        }
    };
    let recorded = engine.containers.update(id, |r| {
        r.state.status = Status::Restarting;
        r.state.restart_count += 1;
    });
    match recorded {
        Ok(()) => Some(delay),
        Err(e) => {
            log_errors(id, &[format!("no restart: {e}")]);
            None
        }
    }
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

/// Sleeps `delay` while serving clients (never waiting on one: a silent one must not hold up
/// the restart or a stop); true to restart, false if a stop came.
fn wait_or_stop(
    engine: &Engine,
    id: &str,
    listener: &UnixListener,
    clients: &mut Vec<Client>,
    delay: Duration,
) -> bool {
    let until = Instant::now() + delay;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        let mut fds = vec![PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
        fds.extend(
            clients
                .iter()
                .map(|c| PollFd::new(c.stream.as_fd(), c.events())),
        );
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        if poll(&mut fds, PollTimeout::from(ms)).is_err() {
            continue;
        }
        let revents: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        let mut stopped = false;
        for (c, ev) in clients.iter_mut().zip(&revents[1..]) {
            if ev.contains(PollFlags::POLLOUT) {
                c.flush();
            }
            if !ev.intersects(!PollFlags::POLLOUT) {
                continue;
            }
            for (kind, payload) in c.read_frames() {
                match kind {
                    Kind::Attach => {
                        c.take_hello(&payload);
                    }
                    Kind::Stop => {
                        c.waits = true;
                        stopped = true;
                    }
                    Kind::Exec => {
                        c.refuse(&Error::state(id, "is restarting: exec once it runs again"));
                    }
                    _ => {}
                }
            }
        }
        if revents[0].contains(PollFlags::POLLIN) {
            if let Ok((s, _)) = listener.accept() {
                clients.push(Client::new(s));
            }
        }
        clients.retain(|c| !c.gone || c.waits);
        if stopped {
            if let Err(e) = engine
                .containers
                .update(id, |r| r.state.manually_stopped = true)
            {
                log_errors(id, &[e.to_string()]);
            }
            return false;
        }
    }
}

/// Bundle, create, network, record, start.
#[inline(never)] // what it holds (the spec, the runtime's create) below the loop (mod.rs, "Stack")
fn start<'a>(engine: &'a Engine, record: &Record, size: Option<(u16, u16)>) -> Result<Run<'a>> {
    let id = record.id.as_str();
    let dir = engine.containers.dir(id);
    let policy_restart = record.state.status == Status::Restarting;
    let prepared = crate::bundle::prepare(engine, record)?;
    let req = &record.request;
    let pending = stdio::prepare(&dir, req.tty, req.interactive).inspect_err(|_| {
        crate::bundle::undo(engine, record);
    })?;
    // Started by this process once the networks are attached (no exec fifo to make, open and
    // remove, no state to read back), from the spec as built (moved: nothing else reads it).
    // The networks are attached while the init sets up its root, once its namespaces exist.
    let opts = berth_runtime::process::parent::CreateOptions {
        id: id.to_string(),
        bundle: dir.clone(),
        console_socket: pending.console_socket(),
        spec: Some(prepared.spec),
        start_at_once: true,
        hold_start: true,
        ..Default::default()
    };
    let health = Checker::initial(req.healthcheck.as_ref(), record.state.health.as_ref());
    let me = std::process::id() as i32;
    let me_start = berth_runtime::state::process_start_time(me).unwrap_or(0);
    // The record as it will be once the program runs, staged (written, not yet renamed into
    // place) once the networks are attached.
    let running = |pid: i32,
                   pid_start: u64,
                   attachment: &Option<berth_net::Attachment>,
                   joined: &[berth_net::Attachment]| {
        let (staged, joined) = engine.containers.stage(id, |r| {
            // A `network connect` or `disconnect` saved since `record` was read (the
            // container was not running, so it was only recorded) is carried out now, under
            // the record's lock, held until the record says running: any later one finds the
            // container running and acts on it live.
            let joined =
                crate::network::reconcile_connected(engine, r, pid, attachment.as_ref(), joined)?;
            r.state.status = Status::Running;
            r.state.pid = pid;
            r.state.pid_start = pid_start;
            r.state.monitor_pid = me;
            r.state.monitor_start = me_start;
            r.state.started_at = records::now();
            r.state.finished_at = String::new();
            r.state.exit_code = 0;
            r.state.error = String::new();
            // A start asked for clears the last stop by hand; the restart policy's own start
            // keeps one a `kill` made since the policy chose to restart (moby's ExitOnNext).
            if !policy_restart {
                r.state.manually_stopped = false;
            }
            r.state.health = health.clone();
            r.hostname = prepared.hostname.clone();
            r.network = attachment.clone();
            r.networks = joined.clone();
            // The request as it is now: an `update` saved since `record` was read is caught
            // up with below, still under the lock.
            Ok::<_, Error>((joined, r.request.clone()))
        })?;
        Ok::<_, Error>((staged, joined?))
    };
    // While the init sets up its root, on another core: the networks and the /etc files that
    // name them, the log and the record, all there (the record renamed into place) before the
    // program runs.
    let (created, meanwhile) = berth_runtime::process::parent::create_overlapped(
        &engine.runtime,
        opts,
        |pid, pid_start| {
            let networks = crate::network::attach_all(engine, record, pid, &prepared.exposed);
            // /etc/hosts and resolv.conf from the first network joined.
            let etc = match &networks {
                Ok((attachment, joined)) => match attachment.as_ref().or(joined.first()) {
                    Some(att) => {
                        crate::bundle::network_etc_files(&dir, record, &prepared.add_hosts, att)
                    }
                    None => Ok(()),
                },
                Err(_) => Ok(()),
            };
            let files = etc.and_then(|()| open_log(&dir, id, req));
            let staged = match (&networks, &files) {
                (Ok((attachment, joined)), Ok(_)) => {
                    Some(running(pid, pid_start, attachment, joined))
                }
                _ => None,
            };
            (networks, files, staged)
        },
    );
    let stdio = pending.finish(created.is_ok());
    let (networks, log, staged) = match meanwhile {
        Some((networks, log, staged)) => (Some(networks), Some(log), staged),
        None => (None, None, None),
    };
    let parts = (created, stdio, networks, log, staged);
    let (mut created, stdio, (attachment, joined), log, (staged, (joined_now, now))) = match parts {
        (Ok(created), Ok(stdio), Some(Ok(networks)), Some(Ok(log)), Some(Ok(staged))) => {
            (created, stdio, networks, log, staged)
        }
        (created, stdio, networks, log, staged) => {
            if created.is_ok() {
                let _ = berth_runtime::container::delete(&engine.runtime, id, true);
            }
            // The staged record is dropped: the record stays as it was.
            let (joined_now, staged_error) = match staged {
                Some(Ok((staged, (joined_now, _)))) => {
                    drop(staged);
                    (Some(joined_now), None)
                }
                Some(Err(e)) => (None, Some(e)),
                None => (None, None),
            };
            let networks = networks.unwrap_or(Ok((None, Vec::new())));
            if let Ok((attachment, joined)) = &networks {
                // With the endpoints a `network connect` added meanwhile, if any.
                let joined = joined_now.as_ref().unwrap_or(joined);
                crate::network::leave(engine, attachment.iter().chain(joined));
            }
            crate::bundle::undo(engine, record);
            // The init's failure first: the rest follows from it.
            let log = log.unwrap_or(Ok(None)).map(drop);
            let error = match (created, networks, stdio, log) {
                (Err(e), _, _, _) => crate::lifecycle::command_error(e),
                (_, Err(e), _, _) | (_, _, Err(e), _) | (_, _, _, Err(e)) => e,
                (Ok(_), Ok(_), Ok(_), Ok(())) => match staged_error {
                    Some(e) => e,
                    None => Error::state(id, "the monitor lost its container"),
                },
            };
            return Err(error);
        }
    };
    let pid = created.pid;
    let pid_start = created.record.pid_start;
    // Undoes the start, the container on `joined` besides its primary network.
    let undo = |joined: &[berth_net::Attachment], e: Error| {
        crate::network::leave(engine, attachment.iter().chain(joined));
        let _ = berth_runtime::container::delete(&engine.runtime, id, true);
        crate::bundle::undo(engine, record);
        e
    };
    if let (Some(tty), Some((rows, cols))) = (&stdio.tty, size) {
        let _ = berth_sys::pty::set_window_size(tty.as_fd(), rows, cols);
    }
    let pidfd = berth_sys::process::pidfd_open(pid)
        .map_err(Error::io("pidfd_open the container's init", &dir))
        .map_err(|e| undo(&joined_now, e))?;
    for att in attachment.iter().chain(&joined) {
        for w in &att.warnings {
            eprintln!("berth monitor {}: warning: {w}", crate::error::short(id));
        }
    }
    let stop_signal = SignalNumber::parse(&prepared.stop_signal).unwrap_or(SignalNumber::TERM);
    // Limits an `update` recorded while the spec was built (the container did not run yet)
    // are the cgroups' before the program runs, as Docker's update, which waits for the start.
    crate::update::catch_up(engine, id, req, &now).map_err(|e| undo(&joined_now, e))?;
    // Before the start, the log (above) and the record: a container whose start fails
    // (neither can be written) does not run its program.
    staged.commit().map_err(|e| undo(&joined_now, e))?;
    // The program runs from here on (the client hears of it once it does).
    created
        .start()
        .map_err(crate::lifecycle::command_error)
        .map_err(|e| undo(&joined_now, e))?;
    if let Some(att) = &attachment {
        crate::network::event(engine, "connect", att);
    }
    events::record(engine, Event::container(record, "start"));
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
        input: super::stdio::Input::default(),
        log_failures: 0,
        execs: Vec::new(),
        health: Checker::new(req.healthcheck.as_ref(), &req.shell, health),
        remove: req.auto_remove,
        remove_volumes: req.auto_remove,
        warnings: attachment.map(|a| a.warnings).unwrap_or_default(),
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
