//! The container's init, from fork to execve, in named phases. It runs in the forked child of
//! the runtime, single-threaded; every failure is sent to the parent with the step that failed.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::{Hook, LinuxNamespaceType};

use super::protocol::{Channel, FromInit, FromParent};
use crate::error::ExecErrorKind;
use crate::namespaces::{clone_flag, proc_name, NsRequest};
use crate::plan::{InitPlan, ProcessPlan};
use crate::rootfs::sources::MountSources;
use crate::step::{fail, Step, StepResult};

/// What the init needs besides the plan.
pub struct InitContext<'a> {
    pub plan: &'a InitPlan,
    /// The container's cgroups, for the init to move itself into the v1 hierarchies first
    /// (it was cloned into the cgroup2 side); `None` when the runtime places it.
    pub join_cgroups: Option<&'a berth_cgroups::Manager>,
    pub chan: Channel,
    /// O_PATH descriptor of the exec fifo; `start` opening it lets the init exec. None for an
    /// init made to start at once, which waits for `Start` on its channel instead.
    pub exec_fifo: Option<OwnedFd>,
    /// Connected console socket, when the process has a terminal.
    pub console: Option<OwnedFd>,
    pub console_size: Option<(u16, u16)>,
    pub no_pivot: bool,
    /// The name of a new session keyring to join ("_ses.<id>", as runc), unless
    /// `--no-new-keyring`: the container must not share the caller's keys.
    pub session_keyring: Option<String>,
    /// Descriptors 3.. that survive into the container (--preserve-fds and LISTEN_FDS).
    pub preserve_fds: u32,
    pub create_container_hooks: Vec<Hook>,
    pub start_container_hooks: Vec<Hook>,
    /// How the container's program is executed (protect.rs).
    pub exec_via: crate::protect::ExecVia,
}

/// Runs the init to the container's execve. Never returns.
pub fn run(mut ctx: InitContext<'_>) -> ! {
    let err = match phases(&mut ctx) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    if ctx.chan.send(&err.to_message()).is_err() {
        // After `Created` the parent is gone: the container's stderr is the only witness.
        eprintln!("berth-runc init: {err}");
    }
    berth_sys::process::exit_now(err.exit_code())
}

fn phases(ctx: &mut InitContext<'_>) -> StepResult<std::convert::Infallible> {
    let plan = ctx.plan;
    close_inherited(ctx)?;
    if let Some(cgroup) = ctx.join_cgroups {
        // First: in a user namespace the host's cgroup files are no longer ours to write.
        cgroup
            .join_self_v1()
            .step(|| "join the container's v1 cgroups".into())?;
    }
    enter_namespaces(ctx)?;
    // Always, terminal or not: a container left in the caller's session could open its
    // terminal (/dev/tty) and type into it with TIOCSTI; and the caller's process group (berth's
    // monitor) is not the container's to signal with kill(0, ...), nor to have SIGHUPed as an
    // orphaned group with a stopped member.
    super::new_session()?;
    if let Some(name) = &ctx.session_keyring {
        join_session_keyring(name, plan.in_user_ns())?;
    }
    ctx.chan
        .send(&FromInit::Ready)
        .step(|| "tell the runtime the namespaces are ready".into())?;
    let mut sources = MountSources::default();
    let state: String = loop {
        match ctx.chan.recv_with_fds::<FromParent>() {
            Ok((FromParent::MountSources { mounts }, fds)) => {
                sources = MountSources::new(mounts, fds)
            }
            Ok((FromParent::Go { state }, _)) => break state,
            Ok((other, _)) => {
                return fail(
                    "wait for the runtime",
                    format!("unexpected message {other:?}"),
                )
            }
            Err(e) => return fail("wait for the runtime", e.to_string()),
        }
    };
    // Our cgroups as the host names them, for cgroup mounts: after a cgroup namespace is
    // unshared, every path reads "/".
    let host_cgroups = berth_sys::file::read_to_string("/proc/self/cgroup")
        .step(|| "read /proc/self/cgroup".into())?;
    if plan.creates(LinuxNamespaceType::Cgroup) {
        // After the parent placed us in our cgroup, so that it becomes the namespace's root.
        berth_sys::ns::unshare(berth_sys::ns::CLONE_NEWCGROUP)
            .step(|| "unshare the cgroup namespace".into())?;
    }
    if let Some(adj) = plan.process.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .step(|| "write /proc/self/oom_score_adj".into())?;
    }
    let root = crate::rootfs::prepare(plan, &host_cgroups, &sources)?;
    drop((root, sources));
    run_hooks_inside(&ctx.create_container_hooks, "createContainer", &state)?;
    crate::rootfs::enter(plan, ctx.no_pivot)?;
    set_names(plan)?;
    if plan.process.terminal {
        let Some(console) = ctx.console.take() else {
            return fail(
                "set up the terminal",
                "process.terminal is true but no --console-socket was given",
            );
        };
        let (master, slave_path) = crate::tty::setup_pty(ctx.console_size)?;
        bind_console(&slave_path)?;
        crate::tty::send_master(console.as_fd(), master.as_fd())?;
    }
    // Before /proc/sys becomes read-only.
    write_sysctls(&plan.sysctl)?;
    if plan.has_mount_ns() {
        crate::rootfs::finish(plan)?;
    }
    let ours = [
        ctx.chan.raw_fd(),
        ctx.exec_fifo.as_ref().map_or(-1, |f| f.as_raw_fd()),
        ctx.exec_via.raw_fd().unwrap_or(-1),
    ];
    let exe = finalize_process(&plan.process, ctx.preserve_fds, &ours, &ctx.chan)?;
    ctx.chan
        .send(&FromInit::Created)
        .step(|| "tell the runtime the container is created".into())?;
    match &ctx.exec_fifo {
        Some(fifo) => wait_for_start(fifo)?,
        None => wait_for_start_message(&ctx.chan)?,
    }
    run_hooks_inside(&ctx.start_container_hooks, "startContainer", &state)?;
    if plan.reaper {
        super::reaper::exec_under_reaper(&plan.process, &exe, &ctx.exec_via)
    } else {
        exec(&plan.process, &exe, &ctx.exec_via)
    }
}

/// Closes, first thing, every descriptor the fork copied from the runtime but the init's own
/// (its end of the protocol socket, the exec fifo, the console socket, the trampoline) and the
/// preserved ones: the runtime's end of the socket among them, without which the init would
/// wait for good on a runtime that was killed, and whatever else the runtime and its caller
/// held, which has no business in the container's namespaces. The frames that own them in this
/// copy of the runtime never return (berth_sys's contract): the init executes or _exits.
fn close_inherited(ctx: &InitContext<'_>) -> StepResult<()> {
    let ours = [
        ctx.chan.raw_fd(),
        ctx.exec_fifo.as_ref().map_or(-1, |f| f.as_raw_fd()),
        ctx.console.as_ref().map_or(-1, |c| c.as_raw_fd()),
        ctx.exec_via.raw_fd().unwrap_or(-1),
    ];
    let keep: Vec<u32> = (3..3 + ctx.preserve_fds)
        .chain(ours.iter().filter_map(|&fd| u32::try_from(fd).ok()))
        .collect();
    berth_sys::fd::close_from_except(3, &keep)
        .step(|| "close the runtime's descriptors in the init".into())
}

/// Joins the namespaces given by path, creates the new ones, and sets time offsets. The pid
/// namespace was already chosen by the parent before the fork (it applies to children only).
fn enter_namespaces(ctx: &mut InitContext<'_>) -> StepResult<()> {
    let plan = ctx.plan;
    // Every path is opened before the first setns, as runc's nsexec does: once in another
    // user namespace we no longer pass the ptrace check that opening /proc/PID/ns/* makes.
    let mut joins = Vec::new();
    for (kind, req) in &plan.namespaces {
        if let NsRequest::Join(path) = req {
            if *kind == LinuxNamespaceType::Pid {
                continue;
            }
            let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .step(|| format!("open {} namespace {}", proc_name(*kind), path.display()))?;
            joins.push((*kind, path, fd));
        }
    }
    for (kind, path, fd) in joins {
        berth_sys::ns::setns(fd.as_fd(), clone_flag(kind))
            .step(|| format!("join {} namespace {}", proc_name(kind), path.display()))?;
        if kind == LinuxNamespaceType::User {
            // Our host ids mean nothing there: be its root, as after making a new one.
            become_root()?;
        }
    }
    if plan.creates(LinuxNamespaceType::User) {
        berth_sys::ns::unshare(berth_sys::ns::CLONE_NEWUSER)
            .step(|| "unshare the user namespace".into())?;
        ctx.chan
            .send(&FromInit::IdMapsPlease)
            .step(|| "ask for uid/gid maps".into())?;
        match ctx.chan.recv::<FromParent>() {
            Ok(FromParent::IdMapsDone) => {}
            Ok(other) => {
                return fail(
                    "wait for uid/gid maps",
                    format!("unexpected message {other:?}"),
                )
            }
            Err(e) => return fail("wait for uid/gid maps", e.to_string()),
        }
        become_root()?;
    }
    let mut flags = 0;
    for kind in [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Network,
    ] {
        if plan.creates(kind) {
            flags |= clone_flag(kind);
        }
    }
    if plan.pid_ns_in_init() {
        flags |= berth_sys::ns::CLONE_NEWPID;
    }
    if flags != 0 {
        berth_sys::ns::unshare(flags).step(|| "unshare the new namespaces".into())?;
    }
    if plan.creates(LinuxNamespaceType::Network) {
        // A new network namespace has only a loopback link, and it is down: runc brings it up.
        berth_sys::net::set_new_loopback_up()
            .step(|| "bring up lo in the new network namespace".into())?;
    }
    if plan.creates(LinuxNamespaceType::Time) {
        enter_new_time_ns(&plan.time_offsets)?;
    }
    if plan.pid_ns_in_init() {
        // The pid namespace must belong to the new user namespace, so it is made here and
        // only a child enters it: fork, hand the child's pid to the parent, and leave.
        match berth_sys::process::fork().step(|| "fork into the new pid namespace".into())? {
            berth_sys::process::Forked::Parent(pid) => {
                let _ = ctx.chan.send(&FromInit::Pid(pid));
                berth_sys::process::exit_now(0);
            }
            berth_sys::process::Forked::Child => {}
        }
    }
    Ok(())
}

/// Kernels without keyrings (ENOSYS) are no error, as in runc: the keyring is a best-effort
/// separation, the real one being credentials.
///
/// The new keyring's permissions are then widened as runc widens them, so that a process that
/// later joins the container (exec, with other credentials) can still search it: search for
/// "user" (the keyring's uid) outside a user namespace, search for "other" inside one.
fn join_session_keyring(name: &str, in_user_ns: bool) -> StepResult<()> {
    let serial = match berth_sys::keyring::join_new_session_keyring(name) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => return Ok(()),
        other => other.step(|| format!("join a new session keyring {name:?}"))?,
    };
    let search = if in_user_ns {
        KEY_OTH_SEARCH
    } else {
        KEY_USR_SEARCH
    };
    let perm = berth_sys::keyring::permissions(serial)
        .step(|| format!("read the permissions of session keyring {name:?}"))?;
    berth_sys::keyring::set_permissions(serial, perm | search)
        .step(|| format!("set the permissions of session keyring {name:?}"))
}

/// Bits of a key's permission mask (linux/key.h).
const KEY_USR_SEARCH: u32 = 0x0008_0000;
const KEY_OTH_SEARCH: u32 = 0x0000_0008;

fn become_root() -> StepResult<()> {
    let root_u = nix::unistd::Uid::from_raw(0);
    let root_g = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(root_g, root_g, root_g)
        .step(|| "setresgid 0 in the user namespace".into())?;
    nix::unistd::setresuid(root_u, root_u, root_u)
        .step(|| "setresuid 0 in the user namespace".into())
}

/// unshare(CLONE_NEWTIME) only applies to children: set the offsets while the namespace is
/// still empty, then enter it through /proc/self/ns/time_for_children.
fn enter_new_time_ns(offsets: &[(String, i64, u32)]) -> StepResult<()> {
    berth_sys::ns::unshare(berth_sys::ns::CLONE_NEWTIME)
        .step(|| "unshare the time namespace".into())?;
    if !offsets.is_empty() {
        let text: String = offsets
            .iter()
            .map(|(clock, s, ns)| format!("{clock} {s} {ns}\n"))
            .collect();
        std::fs::write("/proc/self/timens_offsets", text)
            .step(|| "write /proc/self/timens_offsets".into())?;
    }
    let fd = nix::fcntl::open(
        "/proc/self/ns/time_for_children",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .step(|| "open /proc/self/ns/time_for_children".into())?;
    berth_sys::ns::setns(fd.as_fd(), berth_sys::ns::CLONE_NEWTIME)
        .step(|| "enter the new time namespace".into())
}

fn set_names(plan: &InitPlan) -> StepResult<()> {
    if let Some(h) = &plan.hostname {
        nix::unistd::sethostname(h).step(|| format!("set hostname {h:?}"))?;
    }
    if let Some(d) = &plan.domainname {
        berth_sys::ns::setdomainname(d).step(|| format!("set domainname {d:?}"))?;
    }
    Ok(())
}

fn bind_console(slave: &str) -> StepResult<()> {
    let console = Path::new("/dev/console");
    if std::fs::symlink_metadata(console).is_err() {
        std::fs::File::create(console).step(|| "create /dev/console".into())?;
    }
    nix::mount::mount(
        Some(slave),
        console,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .step(|| format!("bind mount {slave} on /dev/console"))
}

fn write_sysctls(sysctl: &[(String, String)]) -> StepResult<()> {
    for (key, value) in sysctl {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).step(|| format!("set sysctl {key}={value}"))?;
    }
    Ok(())
}

fn run_hooks_inside(hooks: &[Hook], kind: &str, state: &str) -> StepResult<()> {
    crate::hooks::run_all(hooks, state.as_bytes()).step(|| format!("run {kind} hooks"))
}

/// Everything between the root being ready and the exec: rlimits, fds, cwd, security, user.
/// Shared by the init and by `exec`. Returns the program to execute. A seccomp filter with a
/// listener is loaded here whatever no_new_privileges says, and its listener handed to the
/// runtime on `chan` (see [`load_seccomp`]).
///
/// Every descriptor past stdio is closed first but the preserved ones and `ours` (the
/// runtime's own, still needed until the exec: they are made close-on-exec), so that no
/// directory of the host is reachable through `/proc/self/fd` when the process changes to the
/// container's working directory (CVE-2024-21626). Nothing here after the seccomp filter
/// depends on a syscall a filter may refuse, but for what runc needs there too (prctl,
/// capset, setgroups, setresuid, setresgid).
pub fn finalize_process(
    p: &ProcessPlan,
    preserve_fds: u32,
    ours: &[i32],
    chan: &Channel,
) -> StepResult<CString> {
    // Before any seccomp filter, which may not allow rt_sigaction: the program starts with no
    // signal ignored or blocked (Docker's containers show SigIgn 0), not with our SIGPIPE.
    berth_sys::process::default_signal_dispositions(p.ignored_signals);
    for (res, soft, hard) in &p.rlimits {
        nix::sys::resource::setrlimit(*res, *soft, *hard).step(|| {
            format!(
                "set rlimit {res:?} to {soft}/{hard} (raising a hard limit needs CAP_SYS_RESOURCE)"
            )
        })?;
    }
    // While the process still has its capabilities: a realtime class or policy needs them.
    if let Some((class, level)) = p.io_priority {
        berth_sys::sched::set_io_priority(class, level)
            .step(|| format!("set the I/O priority to class {class} level {level} (ioprio_set)"))?;
    }
    if let Some(attr) = &p.scheduler {
        berth_sys::sched::set_scheduler(attr).step(|| {
            format!(
                "set the scheduler to policy {} nice {} priority {} (sched_setattr)",
                attr.policy, attr.nice, attr.priority
            )
        })?;
    }
    if let (Some(profile), true) = (&p.apparmor_profile, p.apparmor_enabled) {
        std::fs::write("/proc/self/attr/apparmor/exec", format!("exec {profile}"))
            .or_else(|_| std::fs::write("/proc/self/attr/exec", format!("exec {profile}")))
            .step(|| format!("set AppArmor profile {profile}"))?;
    }
    let preserved: Vec<u32> = (3..3 + preserve_fds).collect();
    let keep: Vec<u32> = preserved
        .iter()
        .copied()
        .chain(ours.iter().filter_map(|&fd| u32::try_from(fd).ok()))
        .collect();
    // The frames that own the descriptors closed here never return: this process executes
    // the container's program, or reports its error and _exits (berth_sys's contract).
    berth_sys::fd::close_from_except(3, &keep).step(|| "close the runtime's descriptors".into())?;
    nix::unistd::chdir(&p.cwd).step(|| format!("chdir to cwd {}", p.cwd.display()))?;
    // "/" is the process's root itself: nothing to check.
    if p.cwd != Path::new("/") {
        check_cwd_inside_root(&p.cwd)?;
    }
    let exe = lookup_executable(p)?;
    // What is left of ours is needed until the exec, and no further.
    berth_sys::fd::cloexec_from(3, &preserved)
        .step(|| "mark the runtime's descriptors close-on-exec".into())?;
    if let (Some(prog), false) = (&p.seccomp, p.no_new_privileges) {
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: do it before the drop.
        load_seccomp(prog, chan)?;
    }
    crate::capabilities::drop_bounding(&p.capabilities)
        .step(|| "drop capabilities from the bounding set".into())?;
    // The user the process is already (root, most often): then there is no change of user,
    // and nothing to keep across one or to restore after it.
    let ids = nix::unistd::getresuid().step(|| "getresuid".into())?;
    let same_user = [ids.real, ids.effective, ids.saved]
        .iter()
        .all(|id| id.as_raw() == p.uid);
    let ids = nix::unistd::getresgid().step(|| "getresgid".into())?;
    let same_group = [ids.real, ids.effective, ids.saved]
        .iter()
        .all(|id| id.as_raw() == p.gid);
    if !same_user {
        crate::capabilities::keep_caps_across_setuid(true)
            .step(|| "keep capabilities across setuid".into())?;
    }
    let gids: Vec<nix::unistd::Gid> = p
        .additional_gids
        .iter()
        .map(|g| nix::unistd::Gid::from_raw(*g))
        .collect();
    if let Err(e) = nix::unistd::setgroups(&gids) {
        // setgroups is refused in a user namespace whose setgroups file says deny.
        if !gids.is_empty() || e != nix::errno::Errno::EPERM {
            return Err(e).step(|| "setgroups".into());
        }
    }
    // A change of user resets the dumpable flag to fs.suid_dumpable: a process made
    // non-dumpable (protect.rs) must stay so until its exec. Without one (and the capset
    // below only ever lowers the permitted set, which leaves the flag alone) it stays as is.
    let dumpable = if same_user && same_group {
        true
    } else {
        nix::sys::prctl::get_dumpable().step(|| "read the dumpable flag".into())?
    };
    if !same_group {
        let gid = nix::unistd::Gid::from_raw(p.gid);
        nix::unistd::setresgid(gid, gid, gid).step(|| format!("setgid {}", p.gid))?;
    }
    if !same_user {
        let uid = nix::unistd::Uid::from_raw(p.uid);
        nix::unistd::setresuid(uid, uid, uid).step(|| format!("setuid {}", p.uid))?;
        crate::capabilities::keep_caps_across_setuid(false).step(|| "reset keepcaps".into())?;
    }
    crate::capabilities::apply_sets(&p.capabilities).step(|| "set capabilities".into())?;
    if !dumpable {
        nix::sys::prctl::set_dumpable(false).step(|| "stay non-dumpable".into())?;
    }
    if p.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().step(|| "set no_new_privs".into())?;
    }
    if let Some(mask) = p.umask {
        nix::sys::stat::umask(Mode::from_bits_truncate(mask));
    }
    if let (Some(prog), true) = (&p.seccomp, p.no_new_privileges) {
        if prog.has_listener() {
            // Here rather than at the exec: the runtime, which takes the listener to the
            // agent, is gone by then.
            load_seccomp(prog, chan)?;
        }
    }
    Ok(exe)
}

/// Loads `prog`, and hands its listener (SCMP_ACT_NOTIFY) to the runtime at once, which takes
/// it to the seccomp agent: the next syscall may be one that waits for the agent's answer.
/// `sendmsg` itself cannot be notified (seccomp.rs refuses it).
fn load_seccomp(prog: &crate::seccomp::SeccompProgram, chan: &Channel) -> StepResult<()> {
    let listener = prog.install().step(|| "load the seccomp filter".into())?;
    if let Some(fd) = listener {
        chan.send_with_fds(&FromInit::SeccompListener, &[fd.as_fd()])
            .step(|| "hand the seccomp listener to the runtime".into())?;
    }
    Ok(())
}

/// After the chdir: the working directory must be under the process's root. A path through a
/// descriptor of the host (`/proc/self/fd/N`, CVE-2024-21626) would land outside it, where the
/// kernel's getcwd answers "(unreachable)..." and glibc's ENOENT.
fn check_cwd_inside_root(cwd: &Path) -> StepResult<()> {
    match nix::unistd::getcwd() {
        Ok(dir) if dir.is_absolute() => Ok(()),
        _ => fail(
            format!("chdir to cwd {}", cwd.display()),
            "the working directory is outside the container's root filesystem: refused (give a path inside the container)",
        ),
    }
}

/// Finds `args[0]` in the container: as given when it has a slash, else in the process's PATH.
fn lookup_executable(p: &ProcessPlan) -> StepResult<CString> {
    let arg0 = &p.args[0];
    let candidates: Vec<PathBuf> = if arg0.contains('/') {
        vec![PathBuf::from(arg0)]
    } else {
        let path = p
            .env
            .iter()
            .find_map(|kv| kv.strip_prefix("PATH="))
            .unwrap_or("");
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join(arg0))
            .collect()
    };
    for c in &candidates {
        if let Ok(meta) = std::fs::metadata(c) {
            use std::os::unix::fs::PermissionsExt;
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return CString::new(c.as_os_str().as_encoded_bytes())
                    .step(|| format!("exec {arg0:?}"));
            }
            if arg0.contains('/') {
                return fail(
                    format!("exec {arg0:?}"),
                    "permission denied: not an executable file",
                )
                .map_err(|e| e.exec(ExecErrorKind::NotExecutable));
            }
        }
    }
    let why = if arg0.contains('/') {
        "no such file or directory: not found in the container"
    } else {
        "executable file not found in $PATH"
    };
    fail(format!("exec {arg0:?}"), why).map_err(|e| e.exec(ExecErrorKind::NotFound))
}

/// Blocks until `start` opens the fifo for reading, then writes one byte to it.
fn wait_for_start(fifo: &OwnedFd) -> StepResult<()> {
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let f = nix::fcntl::open(
        path.as_str(),
        OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .step(|| "open the exec fifo".into())?;
    nix::unistd::write(&f, b"0").step(|| "write the exec fifo".into())?;
    Ok(())
}

/// Waits for `Start` on the channel, then shuts it down: the runtime reads the end as the
/// fifo's byte, and a failure from here on goes to the container's stderr, as after the fifo.
fn wait_for_start_message(chan: &Channel) -> StepResult<()> {
    match chan.recv::<FromParent>() {
        Ok(FromParent::Start) => chan
            .shutdown()
            .step(|| "tell the runtime the start was taken".into()),
        Ok(other) => fail(
            "wait for the start",
            format!("unexpected message {other:?}"),
        ),
        Err(e) => fail("wait for the start", e.to_string()),
    }
}

pub fn exec(
    p: &ProcessPlan,
    exe: &CString,
    via: &crate::protect::ExecVia,
) -> StepResult<std::convert::Infallible> {
    if let (Some(prog), true) = (&p.seccomp, p.no_new_privileges) {
        // With no_new_privs the filter goes on last, so it constrains only the container (one
        // with a listener is on already: finalize_process).
        if !prog.has_listener() {
            prog.install().step(|| "load the seccomp filter".into())?;
        }
    }
    let args: Vec<CString> = p
        .args
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .step(|| "exec: argument with a NUL byte".into())?;
    let env: Vec<CString> = p
        .env
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .step(|| "exec: environment entry with a NUL byte".into())?;
    let (errno, how) = match via {
        crate::protect::ExecVia::Direct => match nix::unistd::execve(exe, &args, &env) {
            Ok(never) => match never {},
            Err(e) => (e, ""),
        },
        // Returns only if the trampoline itself could not run; it reports the program's
        // own failure to execute on stderr, with the same words as below.
        crate::protect::ExecVia::Trampoline(fd) => {
            let e = berth_sys::trampoline::exec(fd, exe, &args, &env);
            (
                nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                " (through the exec trampoline)",
            )
        }
    };
    Err(errno)
        .step(|| format!("exec {:?}{how}", p.args[0]))
        .map_err(|err| err.exec(ExecErrorKind::of_errno(errno)))
}
