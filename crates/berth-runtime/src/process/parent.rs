//! The runtime's side of create: validate, fork the init, give it its id maps and its cgroup,
//! run the runtime hooks, and wait until it reports `Created` (see protocol.rs).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::{LinuxIdMapping, LinuxNamespaceType, Spec};

use super::fork::{clone_target, fork_init, InitExtras};
use super::protocol::{self, Channel, FromInit, FromParent};
use crate::cgroup::{self, CgroupManager, Manager};
use crate::error::{Error, IoContext, Result};
use crate::plan::{self, InitPlan};
use crate::protect::{Conditions, ExecVia};
use crate::state::{self, Record, Root, Status};

/// The options of `create` (and `run`) besides the bundle's config.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    pub no_pivot: bool,
    pub preserve_fds: u32,
    /// Keep the caller's session keyring instead of a new one (runc's --no-new-keyring).
    pub no_new_keyring: bool,
    /// `<bundle>/config.json` when the caller has read it already; read from the bundle
    /// otherwise.
    pub spec: Option<Spec>,
    /// The caller starts the container itself as soon as it is created (`run`), with
    /// [`Created::start`]: the init waits for a word on the protocol socket, and no exec fifo
    /// is made (so no `created` status shows meanwhile; crun's `run` makes none either).
    pub start_at_once: bool,
    /// With `start_at_once`: the caller has work of its own between create and start (the
    /// engine attaches the container to its networks, which must be there before the program
    /// runs), so the start word waits for [`Created::start`] instead of going with `Go`.
    pub hold_start: bool,
}

/// Reads and parses `<bundle>/config.json`.
pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let data = berth_sys::file::read(&path)
        .map_err(|e| Error::Config(format!("read {}: {e}", path.display())))?;
    serde_json::from_slice(&data).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// Undoes a half-done create: kills the init, removes its cgroup and state directory.
struct Cleanup<'a> {
    root: &'a Root,
    id: String,
    pid: Option<i32>,
    cgroup: Option<Manager>,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy();
        }
        let _ = self.root.remove_dir(&self.id);
    }
}

/// What `create` leaves behind for `run`: the init's pid (our child), its record and its
/// cgroup.
pub struct Created {
    pub pid: i32,
    pub record: Record,
    pub cgroup: Option<Manager>,
    /// Our end of the protocol socket, for [`Created::start`] (`start_at_once`).
    start: Option<Channel>,
    /// The start word went with `Go` already (see `create`).
    start_sent: bool,
}

impl Created {
    /// Starts a container made with `start_at_once`, as `start` does through the exec fifo:
    /// returns once the init has taken the word (it shuts its end of the socket down), after
    /// the poststart hooks.
    pub fn start(&mut self) -> Result<()> {
        let id = &self.record.id;
        let Some(chan) = self.start.take() else {
            return Err(Error::Init(format!(
                "container {id:?} was not made to be started at once"
            )));
        };
        let exited = || {
            Error::Init(format!(
                "container {id:?}: the init exited before it could start"
            ))
        };
        if !self.start_sent {
            chan.send(&FromParent::Start).map_err(|_| exited())?;
        }
        match chan.recv::<FromInit>() {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
            _ => return Err(exited()),
        }
        crate::log::debug(&format!("container {id:?}: the init took the start signal"));
        crate::container::run_poststart(&self.record);
        Ok(())
    }
}

pub fn create(root: &Root, opts: CreateOptions) -> Result<Created> {
    create_overlapped(root, opts, |_, _| ()).0
}

/// [`create`], running `meanwhile` with the init's pid (and its start time, as the record has
/// it) once its namespaces exist and it was told to go on, while it sets up its root (mounts,
/// pivot, seccomp): the engine attaches the container's networks there, in parallel with the
/// init rather than after it. The program
/// does not run before [`Created::start`] (`hold_start`), so it still finds them attached.
/// With sysctls of network interfaces, `meanwhile` runs before the init is told to go on
/// instead: they are written once it is done.
/// What `meanwhile` returned comes back whether the create then succeeds or not (to be
/// undone); `None` when the create failed before it ran.
pub fn create_overlapped<T>(
    root: &Root,
    opts: CreateOptions,
    meanwhile: impl FnOnce(i32, u64) -> T,
) -> (Result<Created>, Option<T>) {
    let mut done = None;
    let created = create_inner(root, opts, |pid, start| done = Some(meanwhile(pid, start)));
    (created, done)
}

fn create_inner(
    root: &Root,
    mut opts: CreateOptions,
    meanwhile: impl FnOnce(i32, u64),
) -> Result<Created> {
    let Prepared {
        bundle,
        spec,
        plan,
        listen,
        hooks,
        exec_via,
    } = prepare(&mut opts)?;
    let dir = root.create_dir(&opts.id)?;
    let mut cleanup = Cleanup {
        root,
        id: opts.id.clone(),
        pid: None,
        cgroup: None,
        armed: true,
    };
    let fifo = if opts.start_at_once {
        None
    } else {
        Some(make_exec_fifo(&dir, &plan)?)
    };
    let console = match &opts.console_socket {
        Some(p) => Some(OwnedFd::from(
            UnixStream::connect(p).at("connect to console socket", p)?,
        )),
        None => None,
    };
    let (cgroup_path, cgroup) = make_cgroup(&spec, &opts.id, &mut cleanup.cgroup)?;
    warn_unsupported_lsm(&spec, &plan);

    let (parent_end, init_end) = protocol::pair().during("create the init socketpair")?;
    let extras = InitExtras {
        join_cgroups: None,
        fifo,
        console,
        console_size: spec.process().as_ref().and_then(|p| {
            p.console_size()
                .map(|b| (b.height() as u16, b.width() as u16))
        }),
        no_pivot: opts.no_pivot,
        session_keyring: (!opts.no_new_keyring).then(|| format!("_ses.{}", opts.id)),
        preserve_fds: opts.preserve_fds + listen,
        create_container_hooks: hooks.create_container().clone().unwrap_or_default(),
        start_container_hooks: hooks.start_container().clone().unwrap_or_default(),
        exec_via,
    };
    let pid = start_init(
        &plan,
        cgroup,
        init_end,
        &parent_end,
        extras,
        &mut cleanup.pid,
    )?;

    let record = Record {
        id: opts.id.clone(),
        pid,
        pid_start: state::process_start_time(pid).unwrap_or(0),
        bundle,
        rootfs: plan.rootfs.clone(),
        created: state::now_rfc3339(),
        cgroup_path,
        annotations: spec.annotations().clone().unwrap_or_default(),
        // Moved: what follows reads it from the record.
        spec,
    };
    let doc = record.hook_input(Status::Creating);
    let prestart = hooks.prestart().as_deref().unwrap_or(&[]);
    let create_runtime = hooks.create_runtime().as_deref().unwrap_or(&[]);
    // The state is on disk before a hook runs (a hook may ask the runtime for it), the init's
    // createContainer ones too; without hooks it is written while the init already goes on
    // with its root, not before.
    let inside = hooks
        .create_container()
        .as_ref()
        .is_some_and(|h| !h.is_empty());
    let hooks_first = !prestart.is_empty() || !create_runtime.is_empty() || inside;
    if hooks_first {
        root.save(&record)?;
        crate::hooks::run_all(prestart, &doc)?;
        crate::hooks::run_all(create_runtime, &doc)?;
    }
    let sources = crate::rootfs::sources::open(&plan, pid);
    if !sources.is_empty() {
        let (mounts, fds) = sources.parts();
        parent_end
            .send_with_fds(&FromParent::MountSources { mounts }, &fds)
            .during("send the init its bind sources")?;
    }
    drop(sources);
    // The init writes the sysctls with its root: an interface's may name one of the caller's
    // (`net.ipv4.conf.eth0.*`), or set the defaults of those made after it. As in Docker, whose
    // network is there before runc's init writes them, the caller's work is done first then,
    // not beside the init (which would give either order, whichever was quicker).
    let mut meanwhile = Some(meanwhile);
    if plan.sysctl.iter().any(|(key, _)| of_interfaces(key)) {
        if let Some(work) = meanwhile.take() {
            work(pid, record.pid_start);
        }
    }
    let state = String::from_utf8_lossy(&doc).into_owned();
    parent_end
        .send(&FromParent::Go { state })
        .during("tell the init to go on")?;
    if !hooks_first {
        root.save(&record)?;
    }
    // A container started at once has nothing of ours to wait for between its `Created` and
    // its start (no pid file to write first, no seccomp listener to hand to its agent): the
    // start word goes now, queued behind `Go`, so that the init takes it without waiting for
    // us to be scheduled (a round trip less, which on a loaded machine is a scheduling delay
    // less). If the init fails before it reads the word, wait_created reports its error as
    // before; if the send fails, the init is gone and wait_created says why.
    let listener = seccomp_of(&record.spec).is_some_and(|s| s.listener_path().is_some());
    let start_sent = opts.start_at_once
        && !opts.hold_start
        && opts.pid_file.is_none()
        && !listener
        && parent_end.send(&FromParent::Start).is_ok();
    if let Some(work) = meanwhile {
        work(pid, record.pid_start);
    }
    wait_created(&parent_end, &record)?;
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, pid)?;
    }
    cleanup.armed = false;
    Ok(Created {
        pid,
        record,
        cgroup: cleanup.cgroup.take(),
        start: opts.start_at_once.then_some(parent_end),
        start_sent,
    })
}

/// A sysctl of network interfaces, one by name or those to come (`default`): which ones it
/// sets depends on the interfaces there when it is written.
fn of_interfaces(key: &str) -> bool {
    [
        "net.ipv4.conf.",
        "net.ipv6.conf.",
        "net.ipv4.neigh.",
        "net.ipv6.neigh.",
        "net.mpls.conf.",
    ]
    .iter()
    .any(|tree| key.starts_with(tree))
}

/// Everything create decides before it changes anything on the host.
struct Prepared {
    bundle: PathBuf,
    spec: Spec,
    plan: InitPlan,
    /// Sockets passed by systemd (LISTEN_FDS) for the container.
    listen: u32,
    hooks: oci_spec::runtime::Hooks,
    exec_via: ExecVia,
}

/// Validates the id, the bundle and its config, and chooses how the program is executed: any
/// error here leaves nothing behind, and `NeedsProtectedBinary` may be acted on by a re-exec.
fn prepare(opts: &mut CreateOptions) -> Result<Prepared> {
    state::validate_id(&opts.id)?;
    let bundle = std::fs::canonicalize(&opts.bundle)
        .map_err(|e| Error::Config(format!("bundle {}: {e}", opts.bundle.display())))?;
    // Taken, not cloned: a spec is thousands of allocations (Docker's seccomp profile alone
    // names some 350 system calls), and the caller hands it over.
    let spec = match opts.spec.take() {
        Some(spec) => spec,
        None => load_spec(&bundle)?,
    };
    let mut plan = plan::plan(&spec, &bundle).map_err(Error::Config)?;
    let listen = listen_fds();
    if listen > 0 {
        // As runc: the process gets the sockets at 3.. and learns of them as PID 1.
        let env = &mut plan.process.env;
        env.retain(|kv| !kv.starts_with("LISTEN_FDS=") && !kv.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={listen}"));
        env.push("LISTEN_PID=1".into());
    }
    check_console(plan.process.terminal, opts.console_socket.is_some())?;
    if opts.no_pivot && !plan.has_mount_ns() {
        // The root would be moved over the host's /.
        return Err(Error::Config(
            "unable to use no-pivot without a private MNT namespace: add {\"type\": \"mount\"} \
             to linux.namespaces, or drop --no-pivot"
                .into(),
        ));
    }
    let hooks = spec.hooks().clone().unwrap_or_default();
    let some = |h: &Option<Vec<oci_spec::runtime::Hook>>| h.as_ref().is_some_and(|h| !h.is_empty());
    let exec_via = ExecVia::choose(
        &plan.process,
        Conditions {
            user_namespace: plan.in_user_ns(),
            hooks_inside: some(hooks.create_container()) || some(hooks.start_container()),
            reaper: plan.reaper,
            // The first process: its own capabilities are the container's, which protect.rs
            // checks; an exec given CAP_SYS_PTRACE before start is refused (exec.rs).
            ptrace_in_container: false,
        },
    )?;
    Ok(Prepared {
        bundle,
        spec,
        plan,
        listen,
        hooks,
        exec_via,
    })
}

/// runc's rules for a console socket, in its words: a process with a terminal whose caller
/// does not stay to relay it (create, `run -d`, `exec -d`) needs one, and only such a process
/// takes one.
pub fn check_console(terminal: bool, console_socket: bool) -> Result<()> {
    match (terminal, console_socket) {
        (true, false) => Err(Error::Console(
            "cannot allocate tty if runc will detach without setting console socket: give \
             --console-socket, or set process.terminal to false",
        )),
        (false, true) => Err(Error::Console(
            "cannot use console socket if runc will not detach or allocate tty: drop \
             --console-socket, or set process.terminal to true",
        )),
        _ => Ok(()),
    }
}

/// Makes `<dir>/exec.fifo`, which `start` opens to let the init exec, and opens it O_PATH for
/// the init.
fn make_exec_fifo(dir: &Path, plan: &InitPlan) -> Result<OwnedFd> {
    let fifo_path = dir.join(state::EXEC_FIFO);
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
        .at("create exec fifo", &fifo_path)?;
    // mkfifo's mode is masked by the umask (0600 under 022), but the init opens the fifo after
    // switching to the container's user: make it 0622 as runc does.
    let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o622);
    std::fs::set_permissions(&fifo_path, mode).at("chmod exec fifo", &fifo_path)?;
    let fifo = nix::fcntl::open(&fifo_path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .at("open exec fifo", &fifo_path)?;
    if plan.creates(LinuxNamespaceType::User) {
        // The init opens the fifo as the container's root, which is another user on the host.
        let uid = host_id(&plan.uid_mappings, plan.process.uid);
        let gid = host_id(&plan.gid_mappings, plan.process.gid);
        nix::unistd::chown(
            &fifo_path,
            uid.map(nix::unistd::Uid::from_raw),
            gid.map(nix::unistd::Gid::from_raw),
        )
        .at("chown exec fifo", &fifo_path)?;
    }
    Ok(fifo)
}

/// Creates the container's cgroup with its limits (and its device rules): its path, and the
/// manager, kept in `slot` so that a failure removes it.
fn make_cgroup<'a>(
    spec: &Spec,
    id: &str,
    slot: &'a mut Option<Manager>,
) -> Result<(cgroup::CgroupPath, &'a Manager)> {
    let linux = spec.linux().as_ref();
    let path = cgroup::path_for(linux.and_then(|l| l.cgroups_path().as_deref()), id)?;
    let cgroup = cgroup::open(&path)?;
    // Before the slot: a refused cgroup is the caller's, and stays as it was.
    cgroup.check_not_frozen()?;
    let cgroup = slot.insert(cgroup);
    // A cgroup that was there may have processes already (a shared cgroupsPath): runc's
    // warning, in runc's words. One made now has none, and is not read.
    if cgroup.create()? == cgroup::Created::Existing {
        if let Ok(pids) = cgroup.pids() {
            if !pids.is_empty() {
                let n = pids.len();
                crate::log::warn(&format!(
                    "container's cgroup is not empty: {n} process(es) found"
                ));
            }
        }
    }
    let mut resources = linux
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    resources.set_devices(Some(plan::device_rules(Some(&resources))));
    cgroup.apply(&resources)?;
    Ok((path, cgroup))
}

/// Forks the init into `cgroup` and serves it until it is ready: its pid. `cleanup_pid` is
/// kept up to date so that a failure kills what was forked.
fn start_init<'a>(
    plan: &InitPlan,
    cgroup: &'a Manager,
    init_end: Channel,
    parent_end: &Channel,
    mut extras: InitExtras<'a>,
    cleanup_pid: &mut Option<i32>,
) -> Result<i32> {
    // The init joins its cgroups at birth: cloned into the cgroup2 side, then moving itself
    // into the v1 hierarchies as its first step. Moving it from here (a pid written to
    // cgroup.procs) would wait for an RCU grace period, often the longest step of a create
    // (see bench/README.md). A middle process (new user and pid namespaces) is the exception:
    // it forks the real init, and both would count against a pids limit, so the init is
    // placed from here after the handshake.
    let at_birth = !has_middle(plan);
    let into = clone_target(cgroup, at_birth)?;
    extras.exec_via.prepare()?;
    extras.join_cgroups = at_birth.then_some(cgroup);
    let (child, cloned_into) =
        fork_init(plan, init_end, into.as_ref().map(|fd| fd.as_fd()), extras)?;
    drop(into);
    *cleanup_pid = Some(child);
    if at_birth && cgroup.unified_dir().is_some() && !cloned_into {
        // A kernel without clone3's CLONE_INTO_CGROUP: placed from here at once, so that the
        // grace period overlaps the init's namespace setup.
        cgroup.add_task(child)?;
    }
    let pid = handshake(plan, parent_end, child)?;
    *cleanup_pid = Some(pid);
    if !at_birth {
        cgroup.add_task(pid)?;
    }
    Ok(pid)
}

/// AppArmor and SELinux fields are accepted where the host lacks them, with a warning.
fn warn_unsupported_lsm(spec: &Spec, plan: &InitPlan) {
    if plan.process.apparmor_profile.is_some()
        && !std::path::Path::new("/sys/kernel/security/apparmor").exists()
    {
        crate::log::warn(
            "process.apparmorProfile is set but AppArmor is not enabled on this host: ignored",
        );
    }
    if spec
        .process()
        .as_ref()
        .and_then(|p| p.selinux_label().as_ref())
        .is_some()
    {
        crate::log::warn(
            "SELinux labels are set but SELinux is not supported by berth on this host: ignored",
        );
    }
}

/// Serves the init until it is `Ready`: id maps, and the real init's pid when a middle process
/// forked it. Returns the init's pid.
fn handshake(plan: &InitPlan, chan: &Channel, child: i32) -> Result<i32> {
    // With a middle process, its Pid and the init's Ready race on the socket: wait for both.
    let middle = has_middle(plan);
    let mut pid = child;
    let mut got_pid = !middle;
    let mut ready = false;
    while !(ready && got_pid) {
        match recv(chan, "set up namespaces")? {
            FromInit::IdMapsPlease => {
                write_id_maps(child, plan)?;
                chan.send(&FromParent::IdMapsDone)
                    .during("send id maps done")?;
            }
            FromInit::Pid(p) => {
                // The middle process exits once it has told us; reap it.
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
                pid = p;
                got_pid = true;
            }
            FromInit::Ready => ready = true,
            FromInit::Created | FromInit::SeccompListener => {
                return Err(Error::Init("init skipped a step of the protocol".into()))
            }
            FromInit::Failed { step, error, exec } => {
                return Err(Error::from_init(&step, &error, exec))
            }
        }
    }
    Ok(pid)
}

/// New user and pid namespaces: the forked child is a middle process that forks the init.
fn has_middle(plan: &InitPlan) -> bool {
    plan.pid_ns_in_init()
}

fn recv(chan: &Channel, step: &str) -> Result<FromInit> {
    chan.recv::<FromInit>()
        .map_err(|e| Error::Init(format!("{step}: the init exited without a word ({e})")))
}

/// Waits for the init's `Created`; the listener of its seccomp filter, if it sends one first,
/// goes to the seccomp agent at once (its next syscalls may wait on the agent).
fn wait_created(chan: &Channel, record: &Record) -> Result<()> {
    let step = "set up the container";
    loop {
        let (msg, mut fds) = chan
            .recv_with_fds::<FromInit>()
            .map_err(|e| Error::Init(format!("{step}: the init exited without a word ({e})")))?;
        match msg {
            FromInit::Created => return Ok(()),
            FromInit::SeccompListener => {
                let (Some(seccomp), Some(listener)) = (seccomp_of(&record.spec), fds.pop()) else {
                    return Err(Error::Init(format!(
                        "{step}: a seccomp listener out of place"
                    )));
                };
                let creating = oci_spec::runtime::ContainerState::Creating;
                crate::seccomp::agent::hand_over(seccomp, record, creating, record.pid, listener)?;
            }
            FromInit::Failed { step, error, exec } => {
                return Err(Error::from_init(&step, &error, exec))
            }
            m => return Err(Error::Init(format!("{step}: unexpected message {m:?}"))),
        }
    }
}

/// The spec's seccomp profile.
pub(crate) fn seccomp_of(spec: &Spec) -> Option<&oci_spec::runtime::LinuxSeccomp> {
    spec.linux().as_ref()?.seccomp().as_ref()
}

/// The child's uid and gid maps. A caller that is not root (berth-runc run by a user, as
/// runc's rootless mode) may map its own ids only: with that one id per map, setgroups is
/// denied first, as the kernel demands for gid_map; with more, Debian's newuidmap/newgidmap
/// write them, checked against /etc/subuid and /etc/subgid, as runc does.
fn write_id_maps(child: i32, plan: &InitPlan) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    if euid == 0 {
        write_id_map(child, "uid_map", &plan.uid_mappings)?;
        return write_id_map(child, "gid_map", &plan.gid_mappings);
    }
    let own = |maps: &[LinuxIdMapping], id: u32| matches!(maps, [m] if m.host_id() == id && m.size() == 1);
    if own(&plan.uid_mappings, euid) && own(&plan.gid_mappings, egid) {
        write_id_map(child, "uid_map", &plan.uid_mappings)?;
        let path = format!("/proc/{child}/setgroups");
        std::fs::write(&path, "deny").at("deny setgroups (a rootless gid map)", &path)?;
        return write_id_map(child, "gid_map", &plan.gid_mappings);
    }
    new_id_map(child, "newuidmap", &plan.uid_mappings)?;
    new_id_map(child, "newgidmap", &plan.gid_mappings)
}

fn new_id_map(pid: i32, tool: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    let mut command = std::process::Command::new(tool);
    command.arg(pid.to_string());
    for m in maps {
        command.args([m.container_id(), m.host_id(), m.size()].map(|n| n.to_string()));
    }
    let out = command.stdin(std::process::Stdio::null()).output().at(
        "run (Debian's uidmap package) for a rootless container's ranges",
        tool,
    )?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(std::io::Error::other(why)).at("map the ranges of /etc/subuid with", tool);
    }
    Ok(())
}

fn write_id_map(pid: i32, file: &str, maps: &[LinuxIdMapping]) -> Result<()> {
    let text: String = maps
        .iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect();
    let path = format!("/proc/{pid}/{file}");
    std::fs::write(&path, text).at("write id map", path)
}

/// The host id that `id` inside the container maps to.
fn host_id(maps: &[LinuxIdMapping], id: u32) -> Option<u32> {
    maps.iter()
        .find(|m| id >= m.container_id() && id - m.container_id() < m.size())
        .map(|m| m.host_id() + (id - m.container_id()))
}

/// Writes the pid file atomically, as runc does (containerd reads it as soon as create returns).
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_extension("berth-tmp");
    std::fs::write(&tmp, pid.to_string()).at("write pid file", &tmp)?;
    std::fs::rename(&tmp, path).at("write pid file", path)
}

/// systemd socket activation: LISTEN_FDS descriptors from 3 on are passed through, when
/// LISTEN_PID says they are meant for this process (as sd_listen_fds checks).
fn listen_fds() -> u32 {
    // The pid asked for only when there is one to compare.
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id());
    if !for_us {
        return 0;
    }
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
