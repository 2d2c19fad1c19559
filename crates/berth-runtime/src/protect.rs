//! CVE-2019-5736: a process of the runtime that enters a container (the init, or an `exec`)
//! must never execute a file of the container while `/proc/self/exe` names the runtime's binary
//! on the host: a program whose interpreter is `/proc/self/exe` (a `#!` line, an ELF
//! `PT_INTERP`) would then run inside the container with that binary as its own executable,
//! and could open it and write to it. There are two ways to keep that from happening:
//!
//! - **Run from a protected binary**: the read-only view or the sealed copy of
//!   [`berth_sys::seal`]. Whatever the process executes, `/proc/self/exe` is unwritable. It
//!   costs a re-execution of the whole runtime (about 1 ms here), which the caller does when
//!   this module returns [`Error::NeedsProtectedBinary`], before anything was created.
//! - **Execute through the trampoline** ([`berth_sys::trampoline`]): the process executes a tiny
//!   program from a sealed memfd, which executes the container's program. The container's
//!   program is only ever loaded by a process whose `/proc/self/exe` is the sealed memfd.
//!
//! The trampoline path holds only where nothing else reaches the runtime's binary while the
//! process prepares the container, so it is taken when all of these are true:
//! - the process is non-dumpable from before its fork to its execve ([`ExecVia::prepare`]; the
//!   change to the container's user keeps it so), so opening its `/proc/<pid>/exe` is refused
//!   to any process without `CAP_SYS_PTRACE` (ptrace access mode read), as runc makes its
//!   `runc init`; not where `fs.suid_dumpable` is 1, since the change of user would briefly
//!   make it dumpable;
//! - no process of the container has `CAP_SYS_PTRACE`: not this one, not the container's own,
//!   and no `exec` given it before (exec.rs leaves a mark for the ones that follow; one given it
//!   into a container still created is refused until start);
//! - it executes nothing of the container but its program: no createContainer or
//!   startContainer hook (they are forked and executed by the init), and no `--init` reaper,
//!   which stays PID 1 of the container for its whole life running the runtime's code;
//! - no user namespace: there, the handshake and the init's writes to its own `/proc` files
//!   rely on the process staying dumpable;
//! - no AppArmor profile to apply, since its exec transition would apply to the trampoline;
//! - the seccomp filter, installed before the execve, allows `execveat` unconditionally (the
//!   trampoline is executed with it, then executes the program with `execve`).
//!
//! Elsewhere, the caller re-executes from the protected binary, as before.

use std::os::fd::OwnedFd;

use crate::error::{Error, IoContext, Result};
use crate::plan::ProcessPlan;

/// How the container's program is executed.
#[derive(Debug)]
pub enum ExecVia {
    /// `execve` itself: this process already runs from a protected binary.
    Direct,
    /// Through the trampoline in this sealed memfd.
    Trampoline(OwnedFd),
}

/// What besides the process plan decides the way (see the module's list).
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions {
    pub user_namespace: bool,
    /// Some other process of the container has (or had) CAP_SYS_PTRACE: it could open this
    /// one's /proc/<pid>/exe, dumpable or not.
    pub ptrace_in_container: bool,
    pub hooks_inside: bool,
    pub reaper: bool,
}

impl ExecVia {
    /// Chooses the way for `process`; [`Error::NeedsProtectedBinary`] when the process must
    /// run from a protected binary and does not.
    pub fn choose(process: &ProcessPlan, conditions: Conditions) -> Result<Self> {
        // /proc/self: this process, without asking its pid.
        if exe_is_protected("/proc/self/exe") {
            return Ok(Self::Direct);
        }
        if let Some(why) = trampoline_refused(process, conditions) {
            return Err(Error::NeedsProtectedBinary(why));
        }
        match berth_sys::trampoline::load() {
            Ok(fd) => Ok(Self::Trampoline(fd)),
            Err(e) => Err(Error::NeedsProtectedBinary(format!(
                "the exec trampoline cannot be loaded: {e}"
            ))),
        }
    }

    /// The trampoline's descriptor, which must stay open until the exec.
    pub fn raw_fd(&self) -> Option<i32> {
        match self {
            Self::Direct => None,
            Self::Trampoline(fd) => Some(std::os::fd::AsRawFd::as_raw_fd(fd)),
        }
    }

    /// Called in the parent right before the fork: the process that will enter the container
    /// is non-dumpable from its first instruction (the flag is inherited at fork, and execve
    /// resets it for the container's program).
    pub fn prepare(&self) -> Result<()> {
        if let Self::Trampoline(_) = self {
            nix::sys::prctl::set_dumpable(false)
                .during("make the runtime non-dumpable (prctl PR_SET_DUMPABLE)")?;
        }
        Ok(())
    }
}

/// True when process `pid` runs from a protected binary (a read-only view or a sealed copy).
pub fn runs_protected(pid: i32) -> bool {
    exe_is_protected(&format!("/proc/{pid}/exe"))
}

fn exe_is_protected(exe_link: &str) -> bool {
    std::fs::read_link(exe_link).is_ok_and(|exe| berth_sys::seal::is_protected_exe(&exe))
}

/// fs.suid_dumpable: what a change of credentials sets the dumpable flag to.
fn suid_dumpable() -> Option<u8> {
    berth_sys::file::read_to_string("/proc/sys/fs/suid_dumpable")
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Why the trampoline may not be used, if it may not.
fn trampoline_refused(process: &ProcessPlan, c: Conditions) -> Option<String> {
    let why = if !berth_sys::trampoline::available() {
        "no exec trampoline for this architecture"
    } else if c.user_namespace {
        "the container has a user namespace"
    } else if c.hooks_inside {
        "createContainer or startContainer hooks run inside the container"
    } else if c.reaper {
        "the init stays in the container as a reaper"
    } else if process.apparmor_profile.is_some() && process.apparmor_enabled {
        "an AppArmor profile applies at the exec"
    } else if !process.seccomp_allows_execveat {
        "the seccomp filter does not allow execveat unconditionally"
    } else if process.capabilities.has(caps::Capability::CAP_SYS_PTRACE) {
        "the process has CAP_SYS_PTRACE, which opens /proc/<pid>/exe of non-dumpable processes"
    } else if c.ptrace_in_container {
        "a process of the container has CAP_SYS_PTRACE, which opens /proc/<pid>/exe of non-dumpable processes"
    } else if suid_dumpable() == Some(1) {
        "fs.suid_dumpable is 1: a change of user would make the process dumpable"
    } else {
        return None;
    };
    Some(why.to_string())
}
