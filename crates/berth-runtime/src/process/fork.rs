//! Forking the container's init, born in its cgroup2 directory (clone3's CLONE_INTO_CGROUP)
//! and, where it gets one of its own, in its pid namespace; and the plain fork where the kernel
//! cannot do that.

use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType;

use super::init::{self, InitContext};
use super::protocol::Channel;
use crate::cgroup::Manager;
use crate::error::{IoContext, Result};
use crate::namespaces::NsRequest;
use crate::plan::InitPlan;
use crate::protect::ExecVia;

/// An O_RDONLY descriptor of the cgroup2 directory to clone the init into, if it joins at
/// birth and there is a cgroup2 side.
pub(crate) fn clone_target(cgroup: &Manager, at_birth: bool) -> Result<Option<OwnedFd>> {
    let Some(dir) = cgroup.unified_dir().filter(|_| at_birth) else {
        return Ok(None);
    };
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .at("open cgroup", dir)?;
    Ok(Some(fd))
}

/// What the init takes along besides the plan and its end of the socket (see InitContext).
pub(super) struct InitExtras<'a> {
    /// The cgroups the init moves itself into first (v1; see `Manager::join_self_v1`).
    pub(super) join_cgroups: Option<&'a Manager>,
    pub(super) fifo: Option<OwnedFd>,
    pub(super) console: Option<OwnedFd>,
    pub(super) console_size: Option<(u16, u16)>,
    pub(super) no_pivot: bool,
    pub(super) session_keyring: Option<String>,
    pub(super) preserve_fds: u32,
    pub(super) create_container_hooks: Vec<oci_spec::runtime::Hook>,
    pub(super) start_container_hooks: Vec<oci_spec::runtime::Hook>,
    pub(super) exec_via: ExecVia,
}

/// Forks the init, into the cgroup2 directory `into` when given: the init's pid, and whether
/// it was cloned into `into` (false when the kernel cannot). A new or joined pid namespace is
/// chosen here, for the child only: by clone3's flag, or this process's pid namespace for
/// children set before the fork and restored after it.
pub(super) fn fork_init(
    plan: &InitPlan,
    init_end: Channel,
    into: Option<std::os::fd::BorrowedFd<'_>>,
    extras: InitExtras<'_>,
) -> Result<(i32, bool)> {
    // In a user namespace (new or joined) the init makes a new pid namespace itself.
    let userns = plan.in_user_ns();
    let pid_req = plan.request(LinuxNamespaceType::Pid).clone();
    // A new pid namespace by clone3's own flag where the init is cloned into its cgroup: this
    // process's namespace for children is then not changed, nor put back (four calls).
    // Without a cgroup (rootless), by clone3's flag all the same.
    if let (NsRequest::New, false) = (&pid_req, userns) {
        let forked = match into {
            Some(cgroup) => berth_sys::process::fork_into_cgroup(cgroup, true),
            None => berth_sys::process::fork_new_pid_namespace(),
        };
        match forked {
            // Before 5.7, or a directory clone3 does not take: the unshare below.
            Err(e) if clone3_refused(&e) => {}
            forked => {
                return match forked.during("fork the container init")? {
                    berth_sys::process::Forked::Parent(pid) => Ok((pid, into.is_some())),
                    berth_sys::process::Forked::Child => become_init(plan, init_end, extras),
                }
            }
        }
    }
    let own_pidns = match (&pid_req, userns) {
        (NsRequest::Host, _) | (NsRequest::New, true) => None,
        _ => Some(
            nix::fcntl::open(
                "/proc/self/ns/pid",
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .at("open", "/proc/self/ns/pid")?,
        ),
    };
    match (&pid_req, userns) {
        (NsRequest::New, false) => berth_sys::ns::unshare(berth_sys::ns::CLONE_NEWPID)
            .during("unshare the pid namespace")?,
        (NsRequest::Join(path), _) => {
            let fd = nix::fcntl::open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
                .at("open pid namespace", path)?;
            berth_sys::ns::setns(fd.as_fd(), berth_sys::ns::CLONE_NEWPID)
                .at("join pid namespace", path)?;
        }
        _ => {}
    }
    let (forked, cloned_into) = fork_into(into);
    if let Some(fd) = &own_pidns {
        if let Ok(berth_sys::process::Forked::Parent(_)) | Err(_) = forked {
            berth_sys::ns::setns(fd.as_fd(), berth_sys::ns::CLONE_NEWPID)
                .during("return to the runtime's pid namespace")?;
        }
    }
    match forked.during("fork the container init")? {
        berth_sys::process::Forked::Parent(pid) => Ok((pid, cloned_into)),
        berth_sys::process::Forked::Child => {
            drop(own_pidns);
            become_init(plan, init_end, extras)
        }
    }
}

/// The forked child's way on: the container's init.
fn become_init(plan: &InitPlan, init_end: Channel, extras: InitExtras<'_>) -> ! {
    init::run(InitContext {
        plan,
        join_cgroups: extras.join_cgroups,
        chan: init_end,
        exec_fifo: extras.fifo,
        console: extras.console,
        console_size: extras.console_size,
        no_pivot: extras.no_pivot,
        session_keyring: extras.session_keyring,
        preserve_fds: extras.preserve_fds,
        create_container_hooks: extras.create_container_hooks,
        start_container_hooks: extras.start_container_hooks,
        exec_via: extras.exec_via,
    })
}

/// clone3 refused what a plain fork does: before 5.7, or a directory it does not take.
fn clone3_refused(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL | libc::EOPNOTSUPP)
    )
}

/// Forks, into the cgroup2 directory `into` when given: the result, and whether the child was
/// cloned into it (false when the kernel cannot: the caller places it then).
pub(crate) fn fork_into(
    into: Option<std::os::fd::BorrowedFd<'_>>,
) -> (std::io::Result<berth_sys::process::Forked>, bool) {
    match into {
        Some(cgroup) => match berth_sys::process::fork_into_cgroup(cgroup, false) {
            // Before 5.7, or a directory that clone3 does not take: a plain fork.
            Err(e) if clone3_refused(&e) => (berth_sys::process::fork(), false),
            r => (r, true),
        },
        None => (berth_sys::process::fork(), false),
    }
}
