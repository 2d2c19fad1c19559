//! `exec`: a new process in a running container's namespaces and cgroup, with its own user,
//! capabilities, terminal and the container's seccomp filter.

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use oci_spec::runtime::Process;

use crate::cgroup::{self, CgroupManager};
use crate::container::{self, wait_exit};
use crate::error::{Error, IoContext, Result};
use crate::process::protocol::{self, Channel, FromInit, FromParent};
use crate::protect::{Conditions, ExecVia};
use crate::state::{Root, Status};
use crate::step::{fail, Step, StepResult};

#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub process: Process,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub detach: bool,
    pub preserve_fds: u32,
    /// Join a paused container too: the process starts frozen, and exec waits for the resume
    /// (runc's --ignore-paused).
    pub ignore_paused: bool,
}

/// Runs the process; returns its exit code, or 0 at once with `detach`.
pub fn exec(root: &Root, id: &str, opts: &ExecOptions) -> Result<i32> {
    let (c, plan, exec_via) = prepare(root, id, opts)?;
    let console = match &opts.console_socket {
        Some(p) => Some(OwnedFd::from(
            UnixStream::connect(p).at("connect to console socket", p)?,
        )),
        None => None,
    };
    let pidfd = berth_sys::process::pidfd_open(c.record.pid)
        .during("pidfd_open of the container's init")?;
    let (join_now, join_later) = namespaces_to_join(c.record.pid);
    if join_now != 0 {
        // Applies to our children only: the exec'd process is born in the container's pid ns.
        berth_sys::ns::setns(pidfd.as_fd(), join_now)
            .during("join the container's pid namespace")?;
    }
    let cg = cgroup::open(&c.record.cgroup_path)?;
    let (parent_end, child_end) = protocol::pair().during("create the exec socketpair")?;
    // Born in the container's cgroup, as the init is (process/parent.rs): cloned into the
    // cgroup2 side, and moving itself into the v1 hierarchies first, instead of a pid written
    // to cgroup.procs from here, which waits for an RCU grace period.
    let into = crate::process::parent::clone_target(&cg, true)?;
    exec_via.prepare()?;
    let (forked, cloned_into) =
        crate::process::parent::fork_into(into.as_ref().map(|fd| fd.as_fd()));
    drop(into);
    let pid = match forked.during("fork the exec process")? {
        berth_sys::process::Forked::Child => {
            drop(parent_end);
            let parts = ChildParts {
                cgroup: &cg,
                pidfd,
                join: join_later,
                plan: &plan,
                console,
                preserve_fds: opts.preserve_fds,
                exec_via: &exec_via,
            };
            let err = match child(&child_end, parts) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            if child_end.send(&err.to_message()).is_err() {
                eprintln!("berth-runc exec: {err}");
            }
            berth_sys::process::exit_now(err.exec.map_or(126, |k| k.exit_code()))
        }
        berth_sys::process::Forked::Parent(pid) => pid,
    };
    drop(child_end);
    let started = (|| {
        if cg.unified_dir().is_some() && !cloned_into {
            cg.add_task(pid)?;
        }
        let go = parent_end.send(&FromParent::Go {
            state: String::new(),
        });
        if let Err(e) = &go {
            if !matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) {
                return go.during("tell the exec process to go on");
            }
        }
        // A send that fails may be the child having failed first (it joins its cgroups and
        // namespaces before it waits for Go): its message says why, so read it either way.
        match parent_end.recv::<FromInit>() {
            Ok(FromInit::Created) if go.is_err() => go.during("tell the exec process to go on"),
            Ok(FromInit::Created) => Ok(()),
            Ok(FromInit::Failed { step, error, exec }) => {
                Err(Error::from_init(&step, &error, exec))
            }
            Ok(m) => Err(Error::Init(format!("exec: unexpected message {m:?}"))),
            Err(_) if go.is_err() => go.during("tell the exec process to go on"),
            Err(e) => Err(Error::Init(format!(
                "exec: the process exited without a word ({e})"
            ))),
        }
    })();
    if let Err(e) = started {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = wait_exit(pid);
        return Err(e);
    }
    if let Some(p) = &opts.pid_file {
        crate::process::parent::write_pid_file(p, pid)?;
    }
    if opts.detach {
        return Ok(0);
    }
    drop(parent_end);
    wait_exit(pid)
}

/// Loads the container and plans the process: every check that fails before anything is
/// made (and where a re-execution from the protected binary may be asked for).
fn prepare(
    root: &Root,
    id: &str,
    opts: &ExecOptions,
) -> Result<(container::Container, crate::plan::ProcessPlan, ExecVia)> {
    let c = container::load(root, id)?;
    match c.status {
        Status::Created | Status::Running => {}
        Status::Paused if opts.ignore_paused => {}
        Status::Paused => {
            return Err(Error::Status {
                id: id.to_string(),
                status: c.status,
                what: "cannot exec in a paused container (use --ignore-paused to override)",
            })
        }
        _ => {
            return Err(Error::Status {
                id: id.to_string(),
                status: c.status,
                what: "exec needs a running container",
            })
        }
    }
    let linux = c.record.spec.linux().as_ref();
    let seccomp = linux.and_then(|l| l.seccomp().as_ref());
    let plan = crate::plan::process_plan(&opts.process, seccomp).map_err(Error::Config)?;
    if plan.terminal && opts.console_socket.is_none() {
        return Err(Error::Config("--tty needs --console-socket".into()));
    }
    let in_user_ns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| {
            ns.iter()
                .any(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::User)
        });
    let not_started = root.dir(id).join(crate::state::EXEC_FIFO).exists();
    if not_started
        && plan.capabilities.has(caps::Capability::CAP_SYS_PTRACE)
        && !crate::protect::runs_protected(c.record.pid)
    {
        // Its init, waiting for `start`, still runs the runtime's binary (protect.rs): a
        // process that may read any /proc/<pid>/exe must not join it yet.
        return Err(Error::Status {
            id: id.to_string(),
            status: c.status,
            what: "exec with CAP_SYS_PTRACE must wait for start",
        });
    }
    let ptrace = caps::Capability::CAP_SYS_PTRACE;
    let mark = root.dir(id).join(PTRACE_MARK);
    let exec_via = ExecVia::choose(
        &plan,
        Conditions {
            user_namespace: in_user_ns,
            ptrace_in_container: spec_has_cap(
                &c.record.spec,
                oci_spec::runtime::Capability::SysPtrace,
            ) || mark.exists(),
            ..Conditions::default()
        },
    )?;
    if plan.capabilities.has(ptrace) {
        // Every later exec into this container takes the protected path (protect.rs).
        std::fs::write(&mark, "").at("mark the container's CAP_SYS_PTRACE exec", &mark)?;
    }
    Ok((c, plan, exec_via))
}

/// The file in a container's state directory that says an exec was given CAP_SYS_PTRACE.
const PTRACE_MARK: &str = "exec-ptrace";

/// True when any capability set of the spec's process holds `cap`.
fn spec_has_cap(spec: &oci_spec::runtime::Spec, cap: oci_spec::runtime::Capability) -> bool {
    let Some(sets) = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
    else {
        return false;
    };
    [
        sets.bounding(),
        sets.effective(),
        sets.permitted(),
        sets.inheritable(),
        sets.ambient(),
    ]
    .iter()
    .any(|set| set.as_ref().is_some_and(|s| s.contains(&cap)))
}

/// The container's namespaces that differ from ours: (pid, to set before the fork; the rest,
/// to join in the child). Comparing inodes skips namespaces the container shares with us.
fn namespaces_to_join(pid: i32) -> (i32, i32) {
    use std::os::unix::fs::MetadataExt;
    let mut later = 0;
    let mut now = 0;
    for (name, flag) in [
        ("user", berth_sys::ns::CLONE_NEWUSER),
        ("pid", berth_sys::ns::CLONE_NEWPID),
        ("time", berth_sys::ns::CLONE_NEWTIME),
        ("ipc", berth_sys::ns::CLONE_NEWIPC),
        ("uts", berth_sys::ns::CLONE_NEWUTS),
        ("net", berth_sys::ns::CLONE_NEWNET),
        ("cgroup", berth_sys::ns::CLONE_NEWCGROUP),
        ("mnt", berth_sys::ns::CLONE_NEWNS),
    ] {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
        let (Ok(theirs), Ok(ours)) = (theirs, ours) else {
            continue;
        };
        if theirs.ino() != ours.ino() || theirs.dev() != ours.dev() {
            if flag == berth_sys::ns::CLONE_NEWPID {
                now |= flag;
            } else {
                later |= flag;
            }
        }
    }
    (now, later)
}

/// What the exec'd process takes into the container, besides its protocol channel.
struct ChildParts<'a> {
    cgroup: &'a cgroup::Manager,
    /// The container's init, whose namespaces (`join`) it enters.
    pidfd: OwnedFd,
    join: i32,
    plan: &'a crate::plan::ProcessPlan,
    console: Option<OwnedFd>,
    preserve_fds: u32,
    exec_via: &'a ExecVia,
}

fn child(chan: &Channel, parts: ChildParts<'_>) -> StepResult<std::convert::Infallible> {
    let ChildParts {
        cgroup,
        pidfd,
        join,
        plan,
        console,
        preserve_fds,
        exec_via,
    } = parts;
    // First: in a user namespace the host's cgroup files are no longer ours to write.
    cgroup
        .join_self_v1()
        .step(|| "join the container's v1 cgroups".into())?;
    // At once: born in the container's pid namespace, this process is visible there, and it
    // must not wait in the host's mount namespace.
    if join != 0 {
        berth_sys::ns::setns(pidfd.as_fd(), join)
            .step(|| "join the container's namespaces".into())?;
    }
    drop(pidfd);
    match chan.recv::<FromParent>() {
        Ok(FromParent::Go { .. }) => {}
        Ok(m) => return fail("wait for the runtime", format!("unexpected message {m:?}")),
        Err(e) => return fail("wait for the runtime", e.to_string()),
    }
    if plan.terminal {
        let Some(console) = console else {
            return fail("set up the terminal", "no console socket");
        };
        let (master, _) = crate::tty::setup_pty(None)?;
        crate::tty::send_master(console.as_fd(), master.as_fd())?;
    } else {
        nix::unistd::setsid().step(|| "setsid".into()).ok();
    }
    let exe = crate::process::init::finalize_process(plan, preserve_fds)?;
    chan.send(&FromInit::Created)
        .step(|| "tell the runtime the process is ready".into())?;
    crate::process::init::exec(plan, &exe, exec_via)
}
