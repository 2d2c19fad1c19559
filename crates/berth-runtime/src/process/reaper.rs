//! The `--init` reaper (annotation `io.berth.init=true`): the container's init forks right
//! before execve; the child runs the user's program in a process group of its own, and the
//! init stays PID 1 to forward signals to that group, reap every zombie, and exit with the
//! program's status, as tini does.

use std::convert::Infallible;
use std::ffi::CString;

use berth_sys::signal::WaitFor;
use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::{getpgrp, setpgid, tcsetpgrp, Pid};

use crate::plan::ProcessPlan;
use crate::step::{Step, StepResult};

/// The annotation that asks for the reaper.
pub const ANNOTATION: &str = "io.berth.init";

/// Forks the user's program under a reaper. Returns only on error, before the fork or in the
/// child; the reaper itself ends in `_exit` with the program's status.
pub fn exec_under_reaper(
    p: &ProcessPlan,
    exe: &CString,
    via: &crate::protect::ExecVia,
) -> StepResult<Infallible> {
    // Every catchable signal (SIGCHLD included); the faults are about the reaper itself.
    let set = berth_sys::signal::catchable();
    // Blocked before the fork so that no signal sent in between is lost: a blocked signal stays
    // pending, even for a pid namespace's init, until sigwait takes it.
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
        .step(|| "block signals in the init reaper".into())?;
    // Outside a new pid namespace the reaper is not PID 1: orphans still come to it.
    nix::sys::prctl::set_child_subreaper(true).step(|| "become a child subreaper".into())?;
    match berth_sys::process::fork().step(|| "fork the container's program".into())? {
        berth_sys::process::Forked::Child => {
            let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
            if p.terminal {
                // SIGTTOU is blocked here, so a background group may take the terminal.
                let _ = tcsetpgrp(std::io::stdin(), getpgrp());
            }
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None)
                .step(|| "restore the signal mask".into())?;
            super::init::exec(p, exe, via)
        }
        berth_sys::process::Forked::Parent(child) => {
            let child = Pid::from_raw(child);
            // Both sides set the group, so that a signal forwarded at once finds it.
            let _ = setpgid(child, child);
            // Nothing of the runtime's stays reachable from the container: no descriptor past
            // stdio, and no ptrace or /proc/1/mem by the container's own user.
            let _ = berth_sys::fd::close_from_for_good(3);
            let _ = nix::sys::prctl::set_dumpable(false);
            berth_sys::process::exit_now(reap(child, &set))
        }
    }
}

/// Forwards signals to the program's group and reaps, until the program exits: its status.
/// Real-time signals too (a systemd program's stop signal is SIGRTMIN+3), as tini forwards them.
fn reap(child: Pid, set: &SigSet) -> i32 {
    let child = child.as_raw();
    loop {
        let signal = match berth_sys::signal::wait(set) {
            Ok(s) => s,
            Err(_) => return 1,
        };
        if signal.get() != libc::SIGCHLD {
            // The group may not exist yet, or the program may have left it.
            if berth_sys::signal::kill(-child, signal).is_err() {
                let _ = berth_sys::signal::kill(child, signal);
            }
            continue;
        }
        if let Some(code) = reap_all(child) {
            return code;
        }
    }
}

/// Reaps every exited process; the program's status when it is one of them (128 + n for a
/// signal, real-time ones included).
fn reap_all(child: i32) -> Option<i32> {
    let mut result = None;
    loop {
        match berth_sys::signal::wait_exit(WaitFor::Any, libc::WNOHANG) {
            Ok(Some((pid, code))) => {
                if pid == child {
                    result = Some(code);
                }
            }
            Ok(None) => return result,
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return result,
            Err(_) => return result.or(Some(1)),
        }
    }
}
