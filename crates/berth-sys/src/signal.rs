//! Signals by number, the real-time ones included: nix's `Signal` has only the 31 standard
//! ones, and a systemd image stops on `SIGRTMIN+3` (its STOPSIGNAL), which containerd hands
//! the runtime as the number 37. Names as Docker's (moby's signal table for Linux) and runc's
//! take them.

use std::fmt;
use std::str::FromStr;

/// The kernel's highest signal number on Linux (SIGRTMAX).
const MAX: i32 = 64;

/// The first real-time signal as Docker names them: `RTMIN` is 34 (glibc keeps 32 and 33 for
/// itself, and moby's table starts there too).
const RTMIN: i32 = 34;

/// A signal the kernel knows: 1 to 64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignalNumber(i32);

impl SignalNumber {
    pub const KILL: SignalNumber = SignalNumber(libc::SIGKILL);
    pub const TERM: SignalNumber = SignalNumber(libc::SIGTERM);

    /// `n` if it is a signal's number (0, the liveness check, is not).
    pub fn new(n: i32) -> Option<SignalNumber> {
        (1..=MAX).contains(&n).then_some(SignalNumber(n))
    }

    pub fn get(self) -> i32 {
        self.0
    }

    /// `KILL`, `SIGKILL`, `kill`, `9`, `RTMIN`, `SIGRTMIN+3`, `RTMAX-1`, `37`: a number from 1
    /// to 64, a standard name, or a real-time one as moby's table has them (RTMIN+1 to +15,
    /// RTMAX-14 to -1), with or without `SIG`, in any case.
    pub fn parse(s: &str) -> Option<SignalNumber> {
        if let Ok(n) = s.parse::<i32>() {
            return SignalNumber::new(n);
        }
        let upper = s.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        if let Some(n) = realtime(name) {
            return Some(SignalNumber(n));
        }
        // The aliases moby's table has and nix's names lack.
        match name {
            "IOT" => return Some(SignalNumber(libc::SIGIOT)),
            "CLD" => return Some(SignalNumber(libc::SIGCHLD)),
            "POLL" => return Some(SignalNumber(libc::SIGPOLL)),
            _ => {}
        }
        nix::sys::signal::Signal::from_str(&format!("SIG{name}"))
            .ok()
            .map(|s| SignalNumber(s as i32))
    }
}

/// `RTMIN`, `RTMIN+n` (1 to 15), `RTMAX-n` (1 to 14), `RTMAX`.
fn realtime(name: &str) -> Option<i32> {
    let offset = |rest: &str, sign: u8, most: i32| -> Option<i32> {
        let digits = rest.strip_prefix(char::from(sign))?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits
            .parse::<i32>()
            .ok()
            .filter(|n| (1..=most).contains(n))
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return if rest.is_empty() {
            Some(RTMIN)
        } else {
            offset(rest, b'+', 15).map(|n| RTMIN + n)
        };
    }
    let rest = name.strip_prefix("RTMAX")?;
    if rest.is_empty() {
        Some(MAX)
    } else {
        offset(rest, b'-', 14).map(|n| MAX - n)
    }
}

/// `SIGKILL`, `SIGRTMIN+3`, or `signal 32` for glibc's two.
impl fmt::Display for SignalNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (nix::sys::signal::Signal::try_from(self.0), self.0) {
            (Ok(s), _) => f.write_str(s.as_str()),
            (_, RTMIN) => f.write_str("SIGRTMIN"),
            (_, MAX) => f.write_str("SIGRTMAX"),
            (_, n) if n > RTMIN && n <= RTMIN + 15 => write!(f, "SIGRTMIN+{}", n - RTMIN),
            (_, n) if n > RTMIN + 15 && n < MAX => write!(f, "SIGRTMAX-{}", MAX - n),
            (_, n) => write!(f, "signal {n}"),
        }
    }
}

/// kill(2): `signal` to process `pid` (nix's `kill` takes the standard signals only).
pub fn kill(pid: i32, signal: SignalNumber) -> nix::Result<()> {
    // SAFETY: kill(2) takes two integers and reads or writes no memory of ours.
    let rc = unsafe { libc::kill(pid, signal.0) };
    nix::errno::Errno::result(rc).map(drop)
}

/// Every signal a process can catch and should take as another's: all but SIGKILL and SIGSTOP
/// (no one can catch them) and the synchronous faults (about the process itself, as tini
/// leaves them). Real-time signals included; glibc's 32 and 33 are never in a filled set.
pub fn catchable() -> nix::sys::signal::SigSet {
    use nix::sys::signal::Signal::*;
    let mut set = nix::sys::signal::SigSet::all();
    for s in [
        SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT,
    ] {
        set.remove(s);
    }
    set
}

/// What a process standing for another passes on to it (Docker's sig-proxy, runc's foreground
/// relay): the [`catchable`] signals but SIGCHLD and SIGPIPE (about its own children and
/// pipes), SIGURG (skipped by Docker's and runc's Go runtimes too), and the terminal's job
/// control, SIGTSTP, SIGTTIN and SIGTTOU, which stay the proxy's own: blocked, a background
/// read of the terminal would get EIO (its stdin closed for good) and a background tcsetattr
/// would succeed (a raw terminal under the shell) instead of stopping the job.
pub fn forwarded() -> nix::sys::signal::SigSet {
    use nix::sys::signal::Signal::*;
    let mut set = catchable();
    for s in [SIGCHLD, SIGPIPE, SIGURG, SIGTSTP, SIGTTIN, SIGTTOU] {
        set.remove(s);
    }
    set
}

/// sigwait(3): the next of the signals in `set` (blocked by the caller), real-time ones
/// included (nix's `SigSet::wait` panics on those).
pub fn wait(set: &nix::sys::signal::SigSet) -> std::io::Result<SignalNumber> {
    let mut signal: libc::c_int = 0;
    // SAFETY: `set` is a valid sigset_t for the call's duration and `signal` a valid int to
    // write; sigwait writes nothing else.
    let rc = unsafe { libc::sigwait(set.as_ref(), &mut signal) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    SignalNumber::new(signal).ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))
}

/// Whose exit [`wait_exit`] waits for.
pub enum WaitFor<'a> {
    Any,
    Pid(i32),
    PidFd(std::os::fd::BorrowedFd<'a>),
}

/// waitid(2) for an exit (WEXITED, with the `WNOHANG`, `WNOWAIT` or `__WALL` of `flags`):
/// `None` when WNOHANG found none, else the pid and its exit code as a shell reports it, 128 +
/// the signal for a process a signal ended, real-time ones included (nix's `WaitStatus` cannot
/// hold those and makes their exit an EINVAL error). A signal handled while it waits does not
/// end the wait (EINTR is retried: no caller stops there).
pub fn wait_exit(on: WaitFor<'_>, flags: libc::c_int) -> std::io::Result<Option<(i32, i32)>> {
    use std::os::fd::AsRawFd;
    let (idtype, id) = match on {
        WaitFor::Any => (libc::P_ALL, 0),
        WaitFor::Pid(pid) => (libc::P_PID, libc::id_t::try_from(pid).unwrap_or(0)),
        WaitFor::PidFd(fd) => (
            libc::P_PIDFD,
            libc::id_t::try_from(fd.as_raw_fd()).unwrap_or(0),
        ),
    };
    // SAFETY: an all-zero siginfo_t is a valid value (plain integers and unions of them).
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid siginfo_t for the kernel to fill; idtype/id/flags are plain.
    crate::fd::retrying(|| unsafe { libc::waitid(idtype, id, &mut info, flags | libc::WEXITED) })?;
    // SAFETY: waitid filled `info` for a child's exit (or left it zeroed under WNOHANG), so
    // the SIGCHLD fields are the ones to read.
    let pid = unsafe { info.si_pid() };
    // SAFETY: as above.
    let status = unsafe { info.si_status() };
    if pid == 0 {
        return Ok(None);
    }
    Ok(Some(match info.si_code {
        libc::CLD_EXITED => (pid, status),
        _ => (pid, 128 + status),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_as_docker_and_runc_take_them() {
        let n = |s: &str| SignalNumber::parse(s).map(SignalNumber::get);
        for (s, want) in [
            ("KILL", 9),
            ("sigkill", 9),
            ("Term", 15),
            ("9", 9),
            ("37", 37),
            ("64", 64),
            ("32", 32),
            ("RTMIN", 34),
            ("SIGRTMIN+3", 37),
            ("rtmin+15", 49),
            ("RTMAX-14", 50),
            ("SIGRTMAX-1", 63),
            ("RTMAX", 64),
            ("SIGIOT", 6),
            ("cld", 17),
            ("POLL", 29),
        ] {
            assert_eq!(n(s), Some(want), "{s}");
        }
        for s in [
            "",
            "0",
            "-9",
            "65",
            "RTMIN+16",
            "RTMIN+0",
            "RTMIN+",
            "RTMIN++1",
            "RTMIN+-1",
            "RTMAX-15",
            "RTMAX+1",
            "RTMIN-1",
            "RTMAX-",
            "RTMINX",
            "SIG",
            "NOPE",
            "SIGRTMIN+ 1",
        ] {
            assert_eq!(n(s), None, "{s:?}");
        }
    }

    #[test]
    fn every_number_reads_back_as_itself() {
        for i in 1..=MAX {
            let s = SignalNumber::new(i).unwrap();
            let shown = s.to_string();
            if let Some(number) = shown.strip_prefix("signal ") {
                assert_eq!(number, i.to_string());
            } else {
                assert_eq!(SignalNumber::parse(&shown), Some(s), "{shown}");
            }
        }
    }

    #[test]
    fn a_child_a_real_time_signal_ended_is_128_plus_it() {
        use std::os::unix::process::CommandExt;
        for (script, want) in [("exit 3", 3), ("kill -37 $$", 165), ("kill -9 $$", 137)] {
            let mut child = std::process::Command::new("sh")
                .args(["-c", script])
                .process_group(0)
                .spawn()
                .unwrap();
            let pid = i32::try_from(child.id()).unwrap();
            let got = wait_exit(WaitFor::Pid(pid), 0).unwrap();
            // Reaped above: std's wait finds no child, which is all it can say now.
            assert!(child.try_wait().is_err());
            assert_eq!(got, Some((pid, want)), "{script}");
        }
    }

    #[test]
    fn a_proxy_forwards_real_time_signals_and_keeps_job_control() {
        use nix::sys::signal::Signal::*;
        let set = forwarded();
        for kept in [
            SIGTSTP, SIGTTIN, SIGTTOU, SIGCHLD, SIGPIPE, SIGKILL, SIGSEGV,
        ] {
            assert!(!set.contains(kept), "{kept}");
        }
        for passed in [SIGTERM, SIGINT, SIGHUP, SIGALRM, SIGWINCH, SIGCONT, SIGUSR1] {
            assert!(set.contains(passed), "{passed}");
        }
        let raw: &libc::sigset_t = set.as_ref();
        for n in [34, 37, 64] {
            // SAFETY: `raw` is the set's own sigset_t; sigismember only reads it.
            assert_eq!(unsafe { libc::sigismember(raw, n) }, 1, "{n}");
        }
    }

    #[test]
    fn a_handled_signal_does_not_end_the_wait() {
        use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
        extern "C" fn ignore(_: libc::c_int) {}
        // A handler without SA_RESTART: waitid(2) is then interrupted with EINTR.
        let action = SigAction::new(
            SigHandler::Handler(ignore),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler does nothing, so it is async-signal-safe; no other test of this
        // crate uses SIGUSR2.
        unsafe { sigaction(Signal::SIGUSR2, &action) }.expect("sigaction");
        #[expect(
            clippy::zombie_processes,
            reason = "reaped by wait_exit, under test here"
        )]
        let child = std::process::Command::new("sh")
            .args(["-c", "sleep 0.3; exit 7"])
            .spawn()
            .expect("sh");
        let pid = i32::try_from(child.id()).expect("pid");
        // SAFETY: pthread_self has no preconditions.
        let waiter = unsafe { libc::pthread_self() };
        let signaller = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            // SAFETY: `waiter` is this test's thread, alive until the join below.
            let rc = unsafe { libc::pthread_kill(waiter, libc::SIGUSR2) };
            assert_eq!(rc, 0, "pthread_kill");
        });
        assert_eq!(
            wait_exit(WaitFor::Pid(pid), 0).expect("waitid"),
            Some((pid, 7))
        );
        signaller.join().expect("signaller");
    }
}
