//! `exec`: a new process in a running container. The engine writes its record
//! (`<engine.execs>/<container id>/<id>.json`, on /run: what to run; then, appended, whether it
//! runs, its pid and exit code, which `exec inspect` reads); the container's monitor starts it through
//! berth-runtime, holds its pipes or pty, relays them in the attach framing and reaps it
//! (monitor/exec.rs). Nothing here forks or enters a namespace, so a multi-threaded API server
//! can call every function.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use oci_spec::runtime::{Process, User};
use serde::{Deserialize, Serialize};

use crate::attach::{self, Session};
use crate::engine::Engine;
use crate::error::{short, Error, Result};
use crate::events::{self, Event};
use crate::monitor::proto::{ExecRequest, ExecResize, Kind};
use crate::records::{self, Record, Status};

/// What an exec runs, as Docker's ExecConfig has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExecConfig {
    pub cmd: Vec<String>,
    /// `KEY=value`, added to the container's environment or replacing a key of it.
    pub env: Vec<String>,
    /// Absolute; the container's working directory when None.
    pub workdir: Option<String>,
    /// `<name|uid>[:<group|gid>]`, resolved in the container's /etc/passwd and /etc/group.
    pub user: Option<String>,
    pub tty: bool,
    /// The process's stdin is open to a client (`-i`); /dev/null otherwise.
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// The keys that detach its client from a terminal (`attach::DetachKeys`); empty for
    /// Docker's default.
    pub detach_keys: String,
    /// Every capability of the host's bounding set, whatever the container's (`--privileged`).
    pub privileged: bool,
}

/// An exec instance: what `exec inspect` shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecRecord {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    /// The process as the runtime runs it: the container's, changed as `config` asks.
    pub process: Process,
    #[serde(default)]
    pub running: bool,
    /// Set once the process has exited (shell style: 128 + n for signal n).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The host's pid of the process once started; 0 before.
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub pid_start: u64,
}

/// How long the record of a finished exec is kept once a newer exec is made (a health check
/// every few seconds would otherwise fill the directory).
const KEEP_FINISHED: Duration = Duration::from_secs(300);

/// How often an exec looks for the finished records of its container: a look stats every
/// record there (hundreds after a busy five minutes), the exec in between one stamp.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The stamp of a container's last look for finished records, among its records (not one:
/// no record's name starts with a dot).
const PRUNED: &str = ".pruned";

/// `exec create`: checks the container runs, builds the process from its runtime's spec and the
/// config, and writes the record. Nothing runs until [`start`].
pub fn create(engine: &Engine, key: &str, config: ExecConfig) -> Result<ExecRecord> {
    if config.cmd.is_empty() {
        return Err(Error::Invalid(
            "exec: no command given: name the program to run".into(),
        ));
    }
    crate::attach::DetachKeys::parse(&config.detach_keys)?;
    let container = crate::lifecycle::refresh(engine, engine.containers.find(key)?)?;
    match container.state.status {
        Status::Running => {}
        Status::Paused => {
            return Err(Error::state(
                &container.id,
                "is paused: unpause the container before exec",
            ))
        }
        _ => return Err(Error::state(&container.id, "is not running")),
    }
    let process = process(engine, &container, &config)?;
    let record = ExecRecord {
        id: crate::names::new_id()?.0,
        container_id: container.id.clone(),
        config,
        process,
        running: false,
        exit_code: None,
        pid: 0,
        pid_start: 0,
    };
    forget_finished(&execs_dir(engine, &container.id));
    save(engine, &record)?;
    emit(engine, Some(&container), &record, "exec_create", None);
    Ok(record)
}

/// `exec start`: the monitor starts the process; the session carries its streams (as the
/// record's attach_* ask) and its exit code, unless `detach`, where nothing is attached.
pub fn start(
    engine: &Engine,
    exec_id: &str,
    detach: bool,
    size: Option<(u16, u16)>,
) -> Result<Session> {
    start_created(engine, inspect(engine, exec_id)?, detach, size)
}

/// [`start`] of the record [`create`] just returned (the CLI's `exec`, which has it in hand:
/// no lookup of it among the containers).
pub fn start_created(
    engine: &Engine,
    record: ExecRecord,
    detach: bool,
    size: Option<(u16, u16)>,
) -> Result<Session> {
    let mut session = attach::connect(engine, &record.container_id)?;
    let request = ExecRequest {
        id: record.id.clone(),
        detach,
        size,
    };
    session.send(Kind::Exec, &request).map_err(Error::io(
        "talk to the monitor of",
        short(&record.container_id),
    ))?;
    match attach::answer(&mut session) {
        attach::Answer::Started(_) => Ok(session),
        attach::Answer::Refused(e) => {
            // The command could not run (126, 127): its code is the exec's, for inspect.
            if let Error::Command { code, .. } = &e {
                let record = ExecRecord {
                    exit_code: Some(i32::from(*code)),
                    ..record
                };
                update(engine, &record)?;
            }
            Err(e)
        }
        attach::Answer::Silent => Err(Error::state(
            &record.container_id,
            "its monitor went away before the exec started: is the container still running?",
        )),
    }
}

/// `exec inspect`: the record, wherever its container is (among those that had an exec). A
/// process recorded as running whose monitor is gone (it cannot record the exit any more)
/// shows as not running.
pub fn inspect(engine: &Engine, exec_id: &str) -> Result<ExecRecord> {
    let no_such = || Error::NoSuchExec(exec_id.to_string());
    if exec_id.len() != 64 || !records::is_hex(exec_id) {
        return Err(no_such());
    }
    let containers = match fs::read_dir(&engine.execs) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_such()),
        Err(e) => return Err(Error::io("read", &engine.execs)(e)),
    };
    let container = containers
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .find(|c| records::is_hex(c) && record_path(engine, c, exec_id).exists())
        .ok_or_else(no_such)?;
    let mut record = load(engine, &container, exec_id)?;
    record.running = record.running && records::alive(record.pid, record.pid_start);
    Ok(record)
}

/// `exec resize`: the exec's terminal, from outside its session.
pub fn resize(engine: &Engine, exec_id: &str, rows: u16, cols: u16) -> Result<()> {
    let record = inspect(engine, exec_id)?;
    if !record.running {
        return Err(Error::Invalid(format!("exec {exec_id} is not running")));
    }
    let mut session = attach::connect(engine, &record.container_id)?;
    let request = ExecResize {
        id: record.id,
        rows,
        cols,
    };
    session.send(Kind::ExecResize, &request).map_err(Error::io(
        "talk to the monitor of",
        short(&record.container_id),
    ))
}

/// An exec's event, as Docker logs it: `exec_create: <cmd>` and `exec_start: <cmd>`, then
/// `exec_die` with its exit code, on the container's actor.
pub(crate) fn event(engine: &Engine, record: &ExecRecord, step: &str, code: Option<i32>) {
    let container = engine.containers.load(&record.container_id).ok();
    emit(engine, container.as_ref(), record, step, code);
}

/// [`event`] with the container's record at hand (None: it could not be read).
fn emit(
    engine: &Engine,
    container: Option<&Record>,
    record: &ExecRecord,
    step: &str,
    code: Option<i32>,
) {
    let action = match code {
        None => format!("{step}: {}", record.config.cmd.join(" ")),
        Some(_) => step.to_string(),
    };
    let mut event = match container {
        Some(container) => Event::container(container, action),
        None => Event::new(events::Kind::Container, action, &record.container_id),
    };
    event = event.with("execID", record.id.clone());
    if let Some(code) = code {
        event = event.with("exitCode", code.to_string());
    }
    events::record(engine, event);
}

fn execs_dir(engine: &Engine, container_id: &str) -> PathBuf {
    engine.execs.join(container_id)
}

/// Forgets every exec of a container, as it is removed; the root's directory too once no
/// container has one. Best effort: what is left is a few files on a tmpfs.
pub(crate) fn forget_all(engine: &Engine, container_id: &str) {
    let _ = fs::remove_dir_all(execs_dir(engine, container_id));
    let _ = fs::remove_dir(&engine.execs);
}

fn record_path(engine: &Engine, container_id: &str, exec_id: &str) -> PathBuf {
    execs_dir(engine, container_id).join(format!("{exec_id}.json"))
}

/// One exec record of a container (the monitor reads it to start the process).
pub(crate) fn load(engine: &Engine, container_id: &str, exec_id: &str) -> Result<ExecRecord> {
    if exec_id.len() != 64 || !records::is_hex(exec_id) {
        return Err(Error::NoSuchExec(exec_id.to_string()));
    }
    let path = record_path(engine, container_id, exec_id);
    let data = fs::read(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NoSuchExec(exec_id.to_string()),
        _ => Error::io("read", &path)(e),
    })?;
    parse(&data)
        .map_err(|e| Error::Invalid(format!("{}: corrupt exec record: {e}", path.display())))
}

/// What an exec's start and its exit change in its record, appended to the record's file as a
/// line of its own: a file replaced by rename (a new inode, the old one's blocks freed) costs
/// milliseconds on ext4, which is what /run is on some hosts; an append, microseconds.
#[derive(Serialize, Deserialize)]
struct Progress {
    running: bool,
    pid: i32,
    pid_start: u64,
    exit_code: Option<i32>,
}

/// A record's file: the record on its first line, then its progress, the last line winning.
/// Only whole lines count: a line being appended is not there yet. A progress line that is no
/// progress (a torn append that another one followed) is passed over, not the record's end.
fn parse(data: &[u8]) -> serde_json::Result<ExecRecord> {
    let mut lines = data
        .split_inclusive(|b| *b == b'\n')
        .filter(|l| l.ends_with(b"\n"));
    let mut record: ExecRecord = serde_json::from_slice(lines.next().unwrap_or_default())?;
    for line in lines {
        let Ok(p) = serde_json::from_slice::<Progress>(line) else {
            continue;
        };
        record.running = p.running;
        record.pid = p.pid;
        record.pid_start = p.pid_start;
        record.exit_code = p.exit_code;
    }
    Ok(record)
}

/// Writes a new exec record (at create).
pub(crate) fn save(engine: &Engine, record: &ExecRecord) -> Result<()> {
    let mut data = serde_json::to_vec(record)
        .map_err(|e| Error::Invalid(format!("serialise exec record: {e}")))?;
    data.push(b'\n');
    let path = record_path(engine, &record.container_id, &record.id);
    match records::write_atomic(&path, &data) {
        // The container's first exec (or the root's, whose directory the last container
        // removed took along: `forget_all`).
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            let dir = execs_dir(engine, &record.container_id);
            fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
            records::write_atomic(&path, &data)
        }
        written => written,
    }
}

/// Records an exec's progress (the monitor at the start and the exit; the engine when the
/// command could not run): one line appended, in one write.
pub(crate) fn update(engine: &Engine, record: &ExecRecord) -> Result<()> {
    let progress = Progress {
        running: record.running,
        pid: record.pid,
        pid_start: record.pid_start,
        exit_code: record.exit_code,
    };
    let mut line = serde_json::to_vec(&progress)
        .map_err(|e| Error::Invalid(format!("serialise exec progress: {e}")))?;
    line.push(b'\n');
    let path = record_path(engine, &record.container_id, &record.id);
    let mut file = fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(Error::io("open for append", &path))?;
    std::io::Write::write_all(&mut file, &line).map_err(Error::io("append to", &path))
}

/// Removes the records of execs that finished more than [`KEEP_FINISHED`] ago (the file is
/// last written at the exit), at most once every [`PRUNE_EVERY`]. Best effort: a record left
/// is only a file.
fn forget_finished(dir: &std::path::Path) {
    let now = SystemTime::now();
    let stamp = dir.join(PRUNED);
    let looked = fs::metadata(&stamp).and_then(|m| m.modified());
    // A stamp from the future (the clock was set back) is no reason to wait.
    let recent = now
        .checked_sub(PRUNE_EVERY)
        .is_some_and(|since| looked.is_ok_and(|t| t > since && t <= now));
    let (false, Some(old)) = (recent, now.checked_sub(KEEP_FINISHED)) else {
        return;
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let _ = fs::File::create(&stamp).and_then(|f| f.set_modified(now));
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < old);
        let finished = || {
            fs::read(&path)
                .ok()
                .and_then(|d| parse(&d).ok())
                .is_some_and(|r| !r.running || !records::alive(r.pid, r.pid_start))
        };
        if stale && finished() {
            let _ = fs::remove_file(&path);
        }
    }
}

/// The container's process (as its runtime was given it at the start) with the exec's command,
/// environment, working directory, user and terminal, as `docker exec` changes them.
fn process(engine: &Engine, container: &Record, config: &ExecConfig) -> Result<Process> {
    let dir = engine.containers.dir(&container.id);
    let template = match engine.runtime.load_process(&container.id) {
        Ok(p) => p,
        // Its runtime's state goes with its end: it stopped since it was seen running, unless
        // its init still runs (rootless berth with another XDG_RUNTIME_DIR than its start's).
        Err(berth_runtime::Error::NotFound(_)) => {
            let st = &container.state;
            if !records::alive(st.pid, st.pid_start) {
                return Err(Error::state(&container.id, "is not running"));
            }
            return Err(Error::state(
                &container.id,
                format!(
                    "runs, but its runtime's state is not in {}: run berth with the \
                     XDG_RUNTIME_DIR it was started with",
                    engine.runtime.dir(&container.id).display()
                ),
            ));
        }
        Err(e) => return Err(Error::Runtime(e)),
    };
    let mut process = template.unwrap_or_default();
    process.set_args(Some(config.cmd.clone()));
    process.set_terminal(Some(config.tty));
    let mut env = process.env().clone().unwrap_or_default();
    if config.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    for e in &config.env {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    process.set_env(Some(env));
    if let Some(w) = &config.workdir {
        process.set_cwd(w.into());
    }
    if let Some(u) = &config.user {
        let resolved = crate::spec::resolve_user(&crate::bundle::rootfs(&dir), u, &[])?;
        let mut user = User::default();
        user.set_uid(resolved.uid);
        user.set_gid(resolved.gid);
        user.set_additional_gids(Some(resolved.gids));
        process.set_user(user);
    }
    if config.privileged {
        // moby's exec: all capabilities, in the sets a process of this user gets.
        let host = crate::spec::security::host_capabilities();
        let uid = process.user().uid();
        process.set_capabilities(Some(crate::spec::security::capabilities(&host, uid)));
    }
    Ok(process)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished_record(dir: &std::path::Path, name: &str, age: Duration) -> PathBuf {
        let record = ExecRecord {
            id: name.repeat(64),
            container_id: "c".repeat(64),
            config: ExecConfig::default(),
            process: Process::default(),
            running: false,
            exit_code: Some(0),
            pid: 0,
            pid_start: 0,
        };
        let path = dir.join(format!("{}.json", record.id));
        let mut data = serde_json::to_vec(&record).unwrap();
        data.push(b'\n');
        fs::write(&path, data).unwrap();
        let file = fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
        path
    }

    #[test]
    fn finished_records_are_looked_for_once_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let old = finished_record(dir.path(), "a", KEEP_FINISHED * 2);
        let fresh = finished_record(dir.path(), "b", Duration::ZERO);
        forget_finished(dir.path());
        assert!(!old.exists(), "a record finished long ago goes");
        assert!(fresh.exists(), "a fresh one stays");
        // Within the minute, the next exec only reads the stamp.
        let old = finished_record(dir.path(), "d", KEEP_FINISHED * 2);
        forget_finished(dir.path());
        assert!(old.exists());
        let stamp = fs::File::options()
            .write(true)
            .open(dir.path().join(PRUNED))
            .unwrap();
        stamp
            .set_modified(SystemTime::now() - PRUNE_EVERY * 2)
            .unwrap();
        forget_finished(dir.path());
        assert!(!old.exists(), "a minute later it looks again");
        assert!(fresh.exists());
    }

    #[test]
    fn a_records_progress_is_its_last_whole_line() {
        let record = ExecRecord {
            id: "e".repeat(64),
            container_id: "c".repeat(64),
            config: ExecConfig::default(),
            process: Process::default(),
            running: false,
            exit_code: None,
            pid: 0,
            pid_start: 0,
        };
        let mut data = serde_json::to_vec(&record).unwrap();
        data.extend_from_slice(
            b"\n{\"running\":true,\"pid\":7,\"pid_start\":9,\"exit_code\":null}\n",
        );
        let started = parse(&data).unwrap();
        assert!(started.running);
        assert_eq!(
            (started.pid, started.pid_start, started.exit_code),
            (7, 9, None)
        );
        // An exit being appended is not seen until its line is whole.
        data.extend_from_slice(b"{\"running\":false,\"pid\":7,\"pid_start\":9,\"exit_co");
        assert!(parse(&data).unwrap().running);
        data.extend_from_slice(b"de\":3}\n");
        let exited = parse(&data).unwrap();
        assert!(!exited.running);
        assert_eq!(exited.exit_code, Some(3));
        // A torn append followed by another, and garbage: passed over, the last good line wins.
        data.extend_from_slice(b"{\"running\":tr{\"running\":false,\"pid\":7,\"pid_start\":9,\"exit_code\":4}\ngarbage\n\0\xff\n");
        assert_eq!(parse(&data).unwrap().exit_code, Some(3));
        data.extend_from_slice(b"{\"running\":false,\"pid\":7,\"pid_start\":9,\"exit_code\":5}\n");
        assert_eq!(parse(&data).unwrap().exit_code, Some(5));
        assert!(parse(b"{\"id\":").is_err());
    }
}
