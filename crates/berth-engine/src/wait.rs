//! `wait`: until a container reaches one of Docker's wait conditions (it is not running, its
//! next exit, its removal), for `berth wait` and for the API's wait, which gives up when its
//! client has gone away rather than hold a thread and a monitor connection for good.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use crate::attach::{self, AttachOptions, Output, Pending, Session};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::lifecycle::refresh;
use crate::monitor::proto::Kind;
use crate::records::Record;

/// Docker's `condition`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Condition {
    /// Not running: at once for a container that is not (Docker's default).
    #[default]
    NotRunning,
    /// Its next exit, even if it has not started yet.
    NextExit,
    /// Its removal (`rm`, or `--rm` after its exit).
    Removed,
}

impl std::str::FromStr for Condition {
    type Err = Error;

    fn from_str(s: &str) -> Result<Condition> {
        match s {
            "" | "not-running" => Ok(Condition::NotRunning),
            "next-exit" => Ok(Condition::NextExit),
            "removed" => Ok(Condition::Removed),
            _ => Err(Error::Invalid(format!(
                "invalid condition: {s:?}: use not-running, next-exit or removed"
            ))),
        }
    }
}

/// How often a waiter asks `gone` while the container runs (each time the monitor says
/// nothing for this long).
const TICK: Duration = Duration::from_secs(1);
/// How often a container that is not running is looked at again (a `next-exit` waiting for
/// its start, a `removed` for its removal).
const IDLE: Duration = Duration::from_millis(100);

/// Waits until the container `key` reaches `condition` and returns its exit code; `None` if
/// `gone()` said to stop first (asked about once a `TICK`). As Docker's waiters for a stop
/// do, `not-running` and `next-exit` fire at every exit, a restart policy's included.
pub fn until(
    engine: &Engine,
    key: &str,
    condition: Condition,
    gone: &dyn Fn() -> bool,
) -> Result<Option<i32>> {
    Waiter::new(engine, key, condition)?.until(engine, gone)
}

/// A wait, in place before it is waited on: the API answers a wait's head only once it is
/// (`docker run` starts the container when it has the head), so that a container that starts,
/// exits and is removed (`--rm`) in no time is seen all the same, its exit code with it.
#[derive(Debug)]
pub struct Waiter {
    first: Record,
    condition: Condition,
    /// For a container not running yet (`next-exit`, `removed`): its next start connects here
    /// (attach::Pending), before it runs.
    pending: Option<Pending>,
}

impl Waiter {
    /// The container `key` looked up (NoSuchContainer if it is not there) and, unless it runs
    /// or only `not-running` is asked, its next start listened for.
    pub fn new(engine: &Engine, key: &str, condition: Condition) -> Result<Waiter> {
        let first = refresh(engine, engine.containers.find(key)?)?;
        let pending = (condition != Condition::NotRunning && !first.state.status.is_live())
            .then(|| Pending::new(engine, &first.id, exit_only()).ok())
            .flatten();
        Ok(Waiter {
            first,
            condition,
            pending,
        })
    }

    /// The container's full id.
    pub fn id(&self) -> &str {
        &self.first.id
    }

    /// Waits as [`until`] does.
    pub fn until(self, engine: &Engine, gone: &dyn Fn() -> bool) -> Result<Option<i32>> {
        let (id, condition) = (self.first.id.as_str(), self.condition);
        let mut code = self.first.state.exit_code;
        let mut session: Option<Session> = None;
        loop {
            let removed = match engine.containers.load(id) {
                Ok(record) => {
                    let record = refresh(engine, record)?;
                    let st = &record.state;
                    let live = st.status.is_live();
                    code = st.exit_code;
                    let exited_since = st.finished_at != self.first.state.finished_at;
                    match condition {
                        Condition::NotRunning if !live => return Ok(Some(code)),
                        Condition::NextExit if !live && exited_since => return Ok(Some(code)),
                        _ => {}
                    }
                    if session.is_none() {
                        session = if live {
                            wait_session(engine, id).ok()
                        } else {
                            self.next_start()
                        };
                    }
                    if session.is_none() && live {
                        // The monitor is finishing (or still starting): the record says so soon.
                        std::thread::sleep(IDLE / 10);
                    }
                    false
                }
                // Removed (rm, --rm), and no monitor to hear from: the last exit code seen.
                Err(Error::NoSuchContainer(_)) if session.is_none() => return Ok(Some(code)),
                // A monitor removes a `--rm` container's record, then reports its exit: the
                // code is on its way on the session (the record read last may be from while
                // the container ran).
                Err(Error::NoSuchContainer(_)) => true,
                Err(e) => return Err(e),
            };
            if gone() {
                return Ok(None);
            }
            let Some(s) = session.as_mut() else {
                continue;
            };
            match exit_within(s, TICK) {
                Ok(Some(c)) if condition != Condition::Removed || removed => return Ok(Some(c)),
                Ok(Some(c)) => {
                    code = c;
                    session = None;
                }
                Ok(None) => {}
                Err(_) => session = None,
            }
        }
    }

    /// The session of the container's next start if it comes within `IDLE` (at once when it
    /// comes), for a container that is not running.
    fn next_start(&self) -> Option<Session> {
        match &self.pending {
            Some(pending) => pending.accept(IDLE).ok().flatten(),
            None => {
                std::thread::sleep(IDLE);
                None
            }
        }
    }
}

/// What a waiter asks of the monitor: no stream, the exit code.
fn exit_only() -> AttachOptions {
    AttachOptions {
        wait: true,
        ..AttachOptions::default()
    }
}

/// A session with the container's monitor that hears only its exit code.
fn wait_session(engine: &Engine, id: &str) -> Result<Session> {
    let mut session = attach::connect(engine, id)?;
    session
        .send(Kind::Attach, &exit_only())
        .map_err(Error::io("talk to the monitor of", crate::error::short(id)))?;
    Ok(session)
}

/// The exit code if the monitor sends it within `timeout`; an error once it hung up.
fn exit_within(session: &mut Session, timeout: Duration) -> io::Result<Option<i32>> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let ms = PollTimeout::from(u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX));
    let mut fds = [PollFd::new(session.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, ms) {
        Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(None),
        Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(outputs) = session.read()? else {
        return Err(io::ErrorKind::UnexpectedEof.into());
    };
    Ok(outputs.into_iter().find_map(|o| match o {
        Output::Exit(c) => Some(c),
        _ => None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_as_docker_names_them() {
        assert_eq!("".parse::<Condition>().unwrap(), Condition::NotRunning);
        assert_eq!(
            "next-exit".parse::<Condition>().unwrap(),
            Condition::NextExit
        );
        assert_eq!("removed".parse::<Condition>().unwrap(), Condition::Removed);
        let e = "stopped".parse::<Condition>().unwrap_err().to_string();
        assert!(e.starts_with("invalid condition: \"stopped\""), "{e}");
    }
}
