//! The monitor's children and their exits: the container's init, the exec'd processes (the
//! runtime forks both as the monitor's children) and the orphans a subreaper inherits. Exits
//! are read from pidfds and reaped without ever blocking the loop.

use std::os::fd::{AsFd, OwnedFd};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// Waits, with no timeout, until the pidfd is readable: its process exited.
pub(super) fn wait_readable(pidfd: &OwnedFd) -> nix::Result<()> {
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r.map(drop),
        }
    }
}

/// A child's exit code (the init's, an exec's), shell style (128 + n for signal n), once its
/// pidfd is readable (the kernel's word that it exited: never a stop, whoever traces it).
/// Never blocks: a process of the container that ptrace-attached to it is told of the exit
/// first, and until it collects it the child is not ours to reap; the kernel's record of the
/// exit in /proc is read instead (the pid cannot be reused while we have not reaped it).
/// Real-time signals count as the others do (berth_sys::signal::wait_exit).
pub(super) fn exit_code(pidfd: &OwnedFd, pid: i32, start: u64) -> i32 {
    use berth_sys::signal::{wait_exit, WaitFor};
    match wait_exit(WaitFor::PidFd(pidfd.as_fd()), libc::WNOHANG | libc::__WALL) {
        Ok(Some((_, code))) => code,
        _ => zombie_exit_code(pid, start).unwrap_or(255),
    }
}

/// The wait status /proc/<pid>/stat keeps for a zombie (field 52), as an exit code.
fn zombie_exit_code(pid: i32, start: u64) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: field 3 (state) is first, 22 (starttime) and
    // 52 (exit_code) follow.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let same = fields.first() == Some(&"Z") && fields.get(19)?.parse::<u64>().ok()? == start;
    let status: i32 = fields.get(49)?.parse().ok()?;
    same.then(|| match status & 0x7f {
        0 => (status >> 8) & 0xff,
        sig => 128 + sig,
    })
}

/// Reaps the children that exited, orphans and exec'd processes, all but `init` while its
/// exit is still to be read; returns each one's pid and exit code (an exec's is recorded).
/// A child a real-time signal ended is reaped too (nix's waitid made it an error, which left it
/// a zombie and every later orphan with it).
pub(super) fn reap_children(init: Option<i32>) -> Vec<(i32, i32)> {
    use berth_sys::signal::{wait_exit, WaitFor};
    let mut reaped = Vec::new();
    loop {
        // Peek first so the init's status is left for `exit_code`.
        let peek = libc::WNOHANG | libc::WNOWAIT | libc::__WALL;
        match wait_exit(WaitFor::Any, peek) {
            Ok(Some((pid, _))) if Some(pid) != init => {
                let code = match wait_exit(WaitFor::Pid(pid), libc::__WALL) {
                    Ok(Some((_, code))) => code,
                    _ => 255,
                };
                reaped.push((pid, code));
            }
            _ => return reaped,
        }
    }
}
