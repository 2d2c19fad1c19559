//! The lifecycle operations on a created container: start, state, kill, delete, pause, resume,
//! processes and stats. Each loads the record, derives the status from the live process, acts.

use std::os::fd::AsFd;

use berth_sys::signal::SignalNumber;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::cgroup::{self, CgroupManager, FreezerState};
use crate::error::{Error, IoContext, Result};
use crate::state::{self, Record, Root, Status};

/// A container's record and its status now.
pub struct Container {
    pub record: Record,
    pub status: Status,
    /// Its cgroup, when the caller has it open already (`run` has create's): otherwise what
    /// needs it opens it from the record.
    pub cgroup: Option<cgroup::Manager>,
}

/// Loads `id` and works out its status from the process, the exec fifo and the freezer.
pub fn load(root: &Root, id: &str) -> Result<Container> {
    let record = root.load(id)?;
    let status = status_of(root, &record);
    Ok(Container {
        record,
        status,
        cgroup: None,
    })
}

fn status_of(root: &Root, record: &Record) -> Status {
    status_from(
        root,
        &record.id,
        (record.pid, record.pid_start),
        &record.cgroup_path,
    )
}

/// The status of the container `id` whose init is `(pid, its start time)`.
fn status_from(
    root: &Root,
    id: &str,
    init: (i32, u64),
    cgroup_path: &cgroup::CgroupPath,
) -> Status {
    if !state::is_alive(init.0, init.1) {
        return Status::Stopped;
    }
    // A created container can be paused too (as with runc), and resumed to created.
    match cgroup::open(cgroup_path).and_then(|c| Ok(c.state()?)) {
        Ok(FreezerState::Frozen) => Status::Paused,
        _ if root.dir(id).join(state::EXEC_FIFO).exists() => Status::Created,
        _ => Status::Running,
    }
}

fn require(c: &Container, ok: &[Status], what: &'static str) -> Result<()> {
    if ok.contains(&c.status) {
        Ok(())
    } else {
        Err(Error::Status {
            id: c.record.id.clone(),
            status: c.status,
            what,
        })
    }
}

/// The state document `state` prints.
pub fn state_json(c: &Container) -> String {
    serde_json::to_string_pretty(&c.record.doc(c.status)).unwrap_or_default()
}

/// Lets a created container run its process: opens the exec fifo, which unblocks the init,
/// and waits for its byte — or for the init's death, so a dead init cannot hang us.
pub fn start(root: &Root, id: &str) -> Result<()> {
    let c = load(root, id)?;
    let what = match c.status {
        Status::Created => return start_created(root, &c.record),
        Status::Running => "cannot start an already running container",
        Status::Stopped => "cannot start a container that has stopped",
        Status::Paused => "cannot start a container in the paused state",
        Status::Creating => "cannot start a container in the creating state",
    };
    Err(Error::Status {
        id: id.to_string(),
        status: c.status,
        what,
    })
}

/// [`start`] of a container this process has just created (`run`), whose record it holds:
/// the state is not read back from disk.
pub fn start_created(root: &Root, record: &Record) -> Result<()> {
    let id = record.id.as_str();
    let fifo_path = root.dir(id).join(state::EXEC_FIFO);
    // The init first, while it still waits for the fifo: once the fifo is open it writes its
    // byte and execs, and a program that exits at once can be reaped by its parent (conmon,
    // a shim) before a pidfd_open made after the open, which then fails with ESRCH.
    let pidfd = berth_sys::process::pidfd_open(record.pid).during("pidfd_open of the init")?;
    let fifo = nix::fcntl::open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .at("open exec fifo", &fifo_path)?;
    let mut byte = [0u8; 1];
    loop {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => {
                r.during("wait for the init to take the start signal")?;
            }
        }
        match nix::unistd::read(&fifo, &mut byte) {
            Ok(1) => break,
            Ok(_) | Err(nix::errno::Errno::EAGAIN) => {
                if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                    return Err(Error::Init(format!(
                        "container {id:?}: the init exited before it could start"
                    )));
                }
            }
            Err(e) => return Err(e).at("read exec fifo", &fifo_path),
        }
    }
    std::fs::remove_file(&fifo_path).at("remove exec fifo", &fifo_path)?;
    crate::log::debug(&format!("container {id:?}: the init took the start signal"));
    run_poststart(record);
    Ok(())
}

/// The poststart hooks, once the init has taken the start signal. A failing one is logged, not
/// fatal: the process already runs (spec).
pub(crate) fn run_poststart(record: &Record) {
    let doc = record.hook_input(Status::Running);
    if let Some(hooks) = record
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.poststart().clone())
    {
        if let Err(e) = crate::hooks::run_all(&hooks, &doc) {
            crate::log::warn(&e.to_string());
        }
    }
}

/// Sends `signal` to the init, or with `all` to every process of the container's cgroup, with
/// runc's outcomes, which containerd's shim tells apart by the text (pkg/process checkKillError):
/// a stopped container's init is not signalled (its pid may be another process's now) and the
/// error says "container not running", which the shim takes as "already finished"; with `all`
/// whatever is left in the cgroup is signalled even once the init has exited, and nothing left is
/// success. The shim relies on both: it sends `kill --all` when the init of a container sharing
/// the pod's pid namespace exits (to end the children it left) and before every task delete.
/// SIGKILL thaws a paused container, as in runc: a frozen task does not die until thawed.
pub fn kill(root: &Root, id: &str, signal: SignalNumber, all: bool) -> Result<()> {
    // The init and its cgroup are all a signal needs: the spec is not parsed (`rm -f`, `stop`
    // and the shim's kills wait on it otherwise).
    let header = root.load_header(id)?;
    let init = (header.pid, header.pid_start);
    let status = status_from(root, &header.id, init, &header.cgroup_path);
    if !all && status == Status::Stopped {
        return Err(Error::NotRunning(id.to_string()));
    }
    let cg = cgroup::open(&header.cgroup_path)?;
    // Without a cgroup (rootless), the init is all there is to signal: its pid namespace's
    // other processes end with it.
    let absent = matches!(cg, cgroup::Manager::Absent(_));
    if all && absent && status == Status::Stopped {
        return Ok(());
    }
    if all && !absent {
        // A stopped container's cgroup may already be empty, or gone: nothing to signal.
        if status == Status::Stopped && cg.pids().map_or(true, |p| p.is_empty()) {
            return Ok(());
        }
        cg.kill_all(signal)?;
    } else {
        let pidfd = berth_sys::process::pidfd_open(header.pid).during("pidfd_open of the init")?;
        berth_sys::process::pidfd_send_signal(pidfd.as_fd(), signal.get())
            .during("signal the init")?;
    }
    if status == Status::Paused && signal == SignalNumber::KILL {
        cg.thaw()?;
    }
    Ok(())
}

/// Removes a container. A running one needs `force`: its init is killed and waited for via
/// its pidfd, never by sleeping. What else is in its cgroup is killed as runc's `destroy`
/// decides: when the container has no pid namespace of its own (the host's, or another
/// container's joined by path), every process of the cgroup, since the init's death ends none
/// of them; with its own, nothing more, since the kernel ended the namespace with its init,
/// and whatever is left belongs to someone else (a container sharing the cgroup), whom runc
/// leaves running, and the cgroup with them. Teardown keeps going past errors and reports
/// them all.
pub fn delete(root: &Root, id: &str, force: bool) -> Result<()> {
    let c = match load(root, id) {
        // No state: never created, or its creator was killed between making the directory and
        // writing state.json (an exec fifo may be there, no process of it is known). The
        // directory goes either way, as runc's does; only --force makes that a success.
        Err(Error::NotFound(_)) => {
            root.remove_dir(id)?;
            return if force {
                Ok(())
            } else {
                Err(Error::NotFound(id.to_string()))
            };
        }
        r => r?,
    };
    delete_loaded(root, c, force)
}

/// [`delete`] of a container whose record and status the caller already has (`run`, after
/// its init exited): nothing is read back from disk.
pub fn delete_loaded(root: &Root, mut c: Container, force: bool) -> Result<()> {
    let id = c.record.id.as_str();
    if matches!(c.status, Status::Running | Status::Paused) && !force {
        return Err(Error::Status {
            id: id.to_string(),
            status: c.status,
            what: "cannot delete a container that is not stopped (use delete --force)",
        });
    }
    let mut errors = Vec::new();
    let cg = match c.cgroup.take() {
        Some(cg) => Ok(cg),
        None => cgroup::open(&c.record.cgroup_path),
    };
    if c.status != Status::Stopped {
        if let (Ok(cg), Status::Paused) = (&cg, c.status) {
            let _ = cg.thaw();
        }
        kill_init_and_wait(&c.record);
    }
    if let Err(e) = cg.and_then(|cg| remove_cgroup(&c.record, &cg)) {
        errors.push(e);
    }
    let doc = c.record.hook_input(Status::Stopped);
    if let Some(hooks) = c
        .record
        .spec
        .hooks()
        .as_ref()
        .and_then(|h| h.poststop().clone())
    {
        if let Err(e) = crate::hooks::run_all(&hooks, &doc) {
            crate::log::warn(&e.to_string());
        }
    }
    if let Err(e) = root.remove_dir(id) {
        errors.push(e);
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(Error::Many(errors)),
    }
}

/// SIGKILL to the init, then a wait for its end on its pidfd.
fn kill_init_and_wait(record: &Record) {
    if let Ok(fd) = berth_sys::process::pidfd_open(record.pid) {
        let _ = berth_sys::process::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        crate::hooks::wait_readable(fd.as_fd(), -1);
    }
}

/// Removes the container's cgroup, killing what is left in it only when the container has no
/// pid namespace of its own (see [`delete`]).
fn remove_cgroup(record: &Record, cg: &cgroup::Manager) -> Result<()> {
    // The usual case first, a cgroup its processes have all left: one rmdir per hierarchy,
    // without reading who is in it.
    if cg.remove_if_empty()? {
        return Ok(());
    }
    if has_own_pid_namespace(&record.spec) {
        destroy_unless_shared(cg)
    } else {
        cgroup::kill_and_wait_empty(cg, &record.cgroup_path, CGROUP_EMPTY)?;
        Ok(cg.destroy()?)
    }
}

/// True when the container made a pid namespace of its own (not the host's, not one joined).
fn has_own_pid_namespace(spec: &oci_spec::runtime::Spec) -> bool {
    spec.linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter().any(|n| {
                n.typ() == oci_spec::runtime::LinuxNamespaceType::Pid
                    && n.path().as_ref().is_none_or(|p| p.as_os_str().is_empty())
            })
        })
}

/// Removes the cgroup of a container whose processes all died with its init: one that still
/// has processes holds another container's, and is left to it with a warning, as runc leaves
/// it (after failing to remove it).
fn destroy_unless_shared(cg: &cgroup::Manager) -> Result<()> {
    // A cgroup already gone has none.
    let left = cg.pids().map_or(0, |p| p.len());
    if left > 0 {
        crate::log::warn(&format!(
            "container's cgroup is not empty: {left} process(es) of another container left in \
             it, which is not removed"
        ));
        return Ok(());
    }
    Ok(cg.destroy()?)
}

/// How long `delete` waits for a killed container's cgroup to empty.
const CGROUP_EMPTY: std::time::Duration = std::time::Duration::from_secs(10);

pub fn pause(root: &Root, id: &str) -> Result<()> {
    let c = load(root, id)?;
    require(
        &c,
        &[Status::Running, Status::Created],
        "container not running",
    )?;
    Ok(cgroup::open(&c.record.cgroup_path)?.freeze()?)
}

pub fn resume(root: &Root, id: &str) -> Result<()> {
    let c = load(root, id)?;
    require(&c, &[Status::Paused], "container not paused")?;
    Ok(cgroup::open(&c.record.cgroup_path)?.thaw()?)
}

/// Host pids of the container's processes.
pub fn pids(root: &Root, id: &str) -> Result<Vec<i32>> {
    let c = load(root, id)?;
    if c.status == Status::Stopped {
        return Ok(Vec::new());
    }
    let mut pids = cgroup::open(&c.record.cgroup_path)?.pids()?;
    pids.sort_unstable();
    Ok(pids)
}

/// `update`: merges `resources` into the container's (field by field: what the update leaves
/// out stays as it was) and writes the result into its cgroups, then keeps it in its record.
/// Device rules are not updated, as in runc: the cgroup keeps the ones create wrote (with the
/// defaults every container gets), whatever the caller sends. One update at a time per
/// container (a lock on its state directory).
pub fn update(root: &Root, id: &str, resources: &oci_spec::runtime::LinuxResources) -> Result<()> {
    let dir = root.dir(id);
    let lock = std::fs::File::open(&dir).map_err(|_| Error::NotFound(id.to_string()))?;
    lock.lock()
        .at("lock the container's state for update", &dir)?;
    let mut c = load(root, id)?;
    require(
        &c,
        &[Status::Created, Status::Running, Status::Paused],
        "only a created, running or paused container can be updated",
    )?;
    let mut linux = c.record.spec.linux().clone().unwrap_or_default();
    let mut merged = serde_json::to_value(linux.resources().clone().unwrap_or_default())
        .map_err(|e| Error::Config(format!("update: the container's resources: {e}")))?;
    let new = serde_json::to_value(resources)
        .map_err(|e| Error::Config(format!("update: the new resources: {e}")))?;
    merge(&mut merged, new);
    let mut merged: oci_spec::runtime::LinuxResources = serde_json::from_value(merged)
        .map_err(|e| Error::Config(format!("update: the merged resources: {e}")))?;
    let mut to_write = merged.clone();
    to_write.set_devices(None);
    cgroup::open(&c.record.cgroup_path)?.apply(&to_write)?;
    merged.set_devices(linux.resources().as_ref().and_then(|r| r.devices().clone()));
    linux.set_resources(Some(merged));
    c.record.spec.set_linux(Some(linux));
    root.save(&c.record)
}

/// JSON merge: the fields `update` has replace those of `base`, recursively; null is no word.
fn merge(base: &mut serde_json::Value, update: serde_json::Value) {
    match (base, update) {
        (serde_json::Value::Object(base), serde_json::Value::Object(update)) => {
            for (key, value) in update {
                if value.is_null() {
                    continue;
                }
                match base.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (slot, value) => *slot = value,
    }
}

/// The cgroup statistics, for `events --stats`.
pub fn stats(root: &Root, id: &str) -> Result<berth_cgroups::Stats> {
    let c = load(root, id)?;
    require(
        &c,
        &[Status::Created, Status::Running, Status::Paused],
        "a stopped container has no stats",
    )?;
    Ok(cgroup::open(&c.record.cgroup_path)?.stats()?)
}

/// Every container under the root with its status.
pub fn list(root: &Root) -> Result<Vec<Container>> {
    let mut out = Vec::new();
    for id in root.ids()? {
        if let Ok(c) = load(root, &id) {
            out.push(c);
        }
    }
    Ok(out)
}

/// Waits for our child `pid` and returns its exit code the way a shell reports it
/// (128 + n for a signal).
/// Real-time signals count as the others do (berth_sys::signal::wait_exit).
pub fn wait_exit(pid: i32) -> Result<i32> {
    use berth_sys::signal::WaitFor;
    match berth_sys::signal::wait_exit(WaitFor::Pid(pid), 0) {
        Ok(Some((_, code))) => Ok(code),
        // Without WNOHANG the kernel returns only with an exit (or an error).
        Ok(None) => Err(std::io::Error::from_raw_os_error(libc::ECHILD))
            .during("wait for the container process"),
        Err(e) => Err(e).during("wait for the container process"),
    }
}
