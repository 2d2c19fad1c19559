//! OCI hooks: each runs with the state JSON on stdin, its own args and env, and its timeout;
//! a hook that fails or times out fails the lifecycle step that ran it.

use std::io::Write;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Runs `hooks` in order with `state` (JSON) on their stdin.
pub fn run_all(hooks: &[Hook], state: &[u8]) -> Result<()> {
    for hook in hooks {
        run(hook, state)?;
    }
    Ok(())
}

fn run(hook: &Hook, state: &[u8]) -> Result<()> {
    let path = hook.path().display().to_string();
    let fail = |reason: String| Error::Hook {
        path: path.clone(),
        reason,
    };
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some((argv0, rest)) = args.split_first() {
        use std::os::unix::process::CommandExt;
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| fail(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state);
    }
    if let Some(secs) = hook.timeout() {
        if secs <= 0 {
            return Err(fail(format!("timeout must be positive, got {secs}")));
        }
        let pidfd = berth_sys::process::pidfd_open(child.id() as i32)
            .map_err(|e| fail(format!("pidfd_open: {e}")))?;
        if !wait_readable(pidfd.as_fd(), secs.saturating_mul(1000)) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail(format!("timed out after {secs}s")));
        }
    }
    let status = child.wait().map_err(|e| fail(format!("wait: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(fail(format!("failed with {status}")))
    }
}

/// Waits until `fd` is readable (a pidfd: the process exited), at most `ms` milliseconds
/// (negative: forever). Returns false on timeout.
pub fn wait_readable(fd: std::os::fd::BorrowedFd<'_>, ms: i64) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline =
        (ms >= 0).then(|| std::time::Instant::now() + std::time::Duration::from_millis(ms as u64));
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d
                    .saturating_duration_since(std::time::Instant::now())
                    .as_millis();
                PollTimeout::try_from(left.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return true,
        }
    }
}
