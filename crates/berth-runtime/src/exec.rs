//! `exec`: a new process in a running container's namespaces and cgroup, with its own user,
//! capabilities, terminal and the container's seccomp filter.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
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
    /// A cgroup below the container's, in every hierarchy, to run the process in (runc's
    /// `exec --cgroup PATH`); it must exist.
    pub sub_cgroup: Option<PathBuf>,
}

/// Runs the process; returns its exit code, or 0 at once with `detach`.
pub fn exec(root: &Root, id: &str, opts: &ExecOptions) -> Result<i32> {
    let pid = spawn(root, id, opts)?;
    if opts.detach {
        return Ok(0);
    }
    wait_exit(pid)
}

/// Starts the process and returns its pid, a child of ours, once it is about to execute its
/// program (`detach` is the caller's to act on).
///
/// The process is made in two forks, in the order runc's nsexec uses, so that it is never
/// visible in the container's pid namespace while anything of the host is within its reach:
///
/// ```text
/// exec (here)                  middle (host pid ns)               process (container pid ns)
///   fork into the cgroup ----->  join the v1 cgroups
///   place it (old kernels)
///   Go ----------------------->  close every host descriptor
///                                setns: mnt (root, cwd), user, ...,
///                                  pid for its children
///                                fork as our sibling -------------->  born inside: root, cwd,
///   <----------------------- Pid(process)                            namespaces the container's
///   reap the middle              _exit                               setsid, terminal, user,
///   <------------------------------------------------------------- Created, then execve
/// ```
///
/// Both are non-dumpable from before the first fork until the execve, so that the container's
/// processes cannot ptrace them or open their /proc files without CAP_SYS_PTRACE.
pub fn spawn(root: &Root, id: &str, opts: &ExecOptions) -> Result<i32> {
    let (c, plan, exec_via) = prepare(root, id, opts)?;
    let console = match &opts.console_socket {
        Some(p) => Some(OwnedFd::from(
            UnixStream::connect(p).at("connect to console socket", p)?,
        )),
        None => None,
    };
    let pidfd = berth_sys::process::pidfd_open(c.record.pid)
        .during("pidfd_open of the container's init")?;
    let join = namespaces_to_join(c.record.pid);
    let cg = match &opts.sub_cgroup {
        Some(sub) => cgroup::open(c.record.cgroup_path.join(sub))?,
        None => cgroup::open(&c.record.cgroup_path)?,
    };
    let (parent_end, child_end) = protocol::pair().during("create the exec socketpair")?;
    // Born in the container's cgroup, as the init is (process/parent.rs): cloned into the
    // cgroup2 side, and moving itself into the v1 hierarchies first, instead of a pid written
    // to cgroup.procs from here, which waits for an RCU grace period.
    let into = crate::process::fork::clone_target(&cg, true)?;
    exec_via.prepare()?;
    nix::sys::prctl::set_dumpable(false)
        .during("make the runtime non-dumpable before exec's fork (prctl PR_SET_DUMPABLE)")?;
    let (forked, cloned_into) = crate::process::fork::fork_into(into.as_ref().map(|fd| fd.as_fd()));
    drop(into);
    let middle = match forked.during("fork the exec process")? {
        berth_sys::process::Forked::Child => {
            drop(parent_end);
            let parts = ChildParts {
                cgroup: &cg,
                pidfd,
                join,
                plan: &plan,
                console,
                preserve_fds: opts.preserve_fds,
                exec_via: &exec_via,
            };
            let err = match middle(&child_end, parts) {
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
    drop(pidfd);
    let mut procs = Procs {
        middle: Some(middle),
        process: None,
    };
    let started = (|| {
        if cg.unified_dir().is_some() && !cloned_into {
            cg.add_task(middle)?;
        }
        let go = parent_end.send(&FromParent::Go {
            state: String::new(),
        });
        if let Err(e) = &go {
            if !matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)) {
                return go.during("tell the exec process to go on");
            }
        }
        // A send that fails may be the middle having failed first (it joins its cgroups before
        // it waits for Go): its message says why, so read it either way.
        wait_created(&parent_end, &mut procs, go, &c.record)
    })();
    if let Err(e) = started {
        procs.kill();
        return Err(e);
    }
    let Some(pid) = procs.process else {
        return Err(Error::Init("exec: no process".into()));
    };
    if let Some(p) = &opts.pid_file {
        crate::process::parent::write_pid_file(p, pid)?;
    }
    Ok(pid)
}

/// Waits until the middle has told the process's pid and the process is `Created`: the two
/// race on the socket. A seccomp listener the process sends goes to the agent as soon as its
/// pid is known (its next syscalls may wait on the agent). `go` is how telling the middle to go
/// on went: a middle that failed first is heard before that error is told.
fn wait_created(
    chan: &Channel,
    procs: &mut Procs,
    go: std::io::Result<()>,
    record: &crate::state::Record,
) -> Result<()> {
    let mut created = false;
    let mut listener = None;
    while !(created && procs.process.is_some()) {
        match chan.recv_with_fds::<FromInit>() {
            Ok((FromInit::Pid(pid), _)) => {
                procs.reap_middle();
                procs.process = Some(pid);
            }
            Ok((FromInit::Created, _)) => created = true,
            Ok((FromInit::SeccompListener, mut fds)) => listener = fds.pop(),
            Ok((FromInit::Failed { step, error, exec }, _)) => {
                // The process may have failed before the middle's Pid came: take it, so
                // that the process is reaped too (the socket ends when both are gone).
                while let Ok(m) = chan.recv::<FromInit>() {
                    if let FromInit::Pid(pid) = m {
                        procs.reap_middle();
                        procs.process = Some(pid);
                    }
                }
                return Err(Error::from_init(&step, &error, exec));
            }
            Ok((m, _)) => return Err(Error::Init(format!("exec: unexpected message {m:?}"))),
            Err(_) if go.is_err() => return go.during("tell the exec process to go on"),
            Err(e) => {
                return Err(Error::Init(format!(
                    "exec: the process exited without a word ({e})"
                )))
            }
        }
        let Some(pid) = procs.process else { continue };
        if let Some(fd) = listener.take() {
            let seccomp = crate::process::parent::seccomp_of(&record.spec)
                .ok_or_else(|| Error::Init("exec: a seccomp listener out of place".into()))?;
            let running = oci_spec::runtime::ContainerState::Running;
            crate::seccomp::agent::hand_over(seccomp, record, running, pid, fd)?;
        }
    }
    Ok(())
}

/// exec's children: the middle until it is reaped, the process once it is known.
struct Procs {
    middle: Option<i32>,
    process: Option<i32>,
}

impl Procs {
    fn reap_middle(&mut self) {
        if let Some(pid) = self.middle.take() {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
    }

    /// After a failure: kill and reap whatever was made.
    fn kill(&mut self) {
        for pid in [self.middle, self.process].into_iter().flatten() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        self.reap_middle();
        if let Some(pid) = self.process.take() {
            let _ = wait_exit(pid);
        }
    }
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
                what: "cannot exec in a stopped container",
            })
        }
    }
    let linux = c.record.spec.linux().as_ref();
    let seccomp = linux.and_then(|l| l.seccomp().as_ref());
    let plan = crate::plan::process_plan(&opts.process, seccomp).map_err(Error::Config)?;
    crate::process::parent::check_console(plan.terminal, opts.console_socket.is_some())?;
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

/// The container's namespaces that differ from ours, as setns flags. Comparing inodes skips
/// namespaces the container shares with us.
fn namespaces_to_join(pid: i32) -> i32 {
    use std::os::unix::fs::MetadataExt;
    let mut join = 0;
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
            join |= flag;
        }
    }
    join
}

/// What the middle takes into the container, besides its protocol channel.
struct ChildParts<'a> {
    cgroup: &'a cgroup::Manager,
    /// The container's init, whose namespaces (`join`) the middle enters.
    pidfd: OwnedFd,
    join: i32,
    plan: &'a crate::plan::ProcessPlan,
    console: Option<OwnedFd>,
    preserve_fds: u32,
    exec_via: &'a ExecVia,
}

/// The middle: in its cgroups, with nothing of the host open, in the container's namespaces
/// (the pid one for its children), it forks the process as our sibling, tells us its pid and
/// leaves. Returns only on error.
fn middle(chan: &Channel, parts: ChildParts<'_>) -> StepResult<std::convert::Infallible> {
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
    match chan.recv::<FromParent>() {
        Ok(FromParent::Go { .. }) => {}
        Ok(m) => return fail("wait for the runtime", format!("unexpected message {m:?}")),
        Err(e) => return fail("wait for the runtime", e.to_string()),
    }
    // Whatever the caller and the runtime held (the cgroup directory, the state directory,
    // inherited descriptors) is closed before anything of ours enters the container. The
    // frames owning them never return: this process _exits.
    let keep: Vec<u32> = (3..3 + preserve_fds)
        .chain(
            [
                chan.raw_fd(),
                pidfd.as_raw_fd(),
                console.as_ref().map_or(-1, |c| c.as_raw_fd()),
                exec_via.raw_fd().unwrap_or(-1),
            ]
            .into_iter()
            .filter_map(|fd| u32::try_from(fd).ok()),
        )
        .collect();
    berth_sys::fd::close_from_except(3, &keep).step(|| "close the runtime's descriptors".into())?;
    // Checked while /proc/self is still ours: the container's procfs does not show us.
    let single = berth_sys::process::SingleThreaded::check()
        .step(|| "check that the exec process has one thread".into())?;
    if join != 0 {
        // One call for all: the kernel enters the user namespace first. The mount namespace
        // gives this process the container's root and working directory; the pid namespace
        // applies to the child only.
        berth_sys::ns::setns(pidfd.as_fd(), join)
            .step(|| "join the container's namespaces".into())?;
    }
    drop(pidfd);
    match berth_sys::process::fork_as_sibling(single)
        .step(|| "fork into the container's pid namespace".into())?
    {
        berth_sys::process::Forked::Parent(pid) => {
            let _ = chan.send(&FromInit::Pid(pid));
            berth_sys::process::exit_now(0)
        }
        berth_sys::process::Forked::Child => process(chan, plan, console, preserve_fds, exec_via),
    }
}

/// The exec'd process, inside from its birth: session, terminal, then as the init.
fn process(
    chan: &Channel,
    plan: &crate::plan::ProcessPlan,
    console: Option<OwnedFd>,
    preserve_fds: u32,
    exec_via: &ExecVia,
) -> StepResult<std::convert::Infallible> {
    crate::process::new_session()?;
    if plan.terminal {
        let Some(console) = console else {
            return fail("set up the terminal", "no console socket");
        };
        let (master, _) = crate::tty::setup_pty(None)?;
        crate::tty::send_master(console.as_fd(), master.as_fd())?;
    }
    let ours = [chan.raw_fd(), exec_via.raw_fd().unwrap_or(-1)];
    let exe = crate::process::init::finalize_process(plan, preserve_fds, &ours, chan)?;
    chan.send(&FromInit::Created)
        .step(|| "tell the runtime the process is ready".into())?;
    crate::process::init::exec(plan, &exe, exec_via)
}
