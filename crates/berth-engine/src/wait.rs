//! `wait`: until a container reaches one of Docker's wait conditions (it is not running, its
//! next exit, its removal), for `berth wait` and for the API's wait, which gives up when its
//! client has gone away rather than hold a thread and a monitor connection for good.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use crate::attach::{self, AttachOptions, Output, Session};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::lifecycle::refresh;
use crate::monitor::proto::Kind;

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
    let first = refresh(engine, engine.containers.find(key)?)?;
    let id = first.id;
    let mut code = first.state.exit_code;
    // A short-lived `--rm` container can start, exit and be removed between two looks at its
    // record: its exit code is then the one its `die` event carries. Read from now on.
    let mut deaths = crate::events::follow(engine, crate::events::Filter::default()).ok();
    let mut session: Option<Session> = None;
    loop {
        let record = match engine.containers.load(&id) {
            Ok(r) => refresh(engine, r)?,
            // Removed (rm, --rm): its last exit, as its die event or its record said.
            Err(Error::NoSuchContainer(_)) => {
                return Ok(Some(
                    deaths
                        .as_mut()
                        .and_then(|d| last_exit(d, &id))
                        .unwrap_or(code),
                ))
            }
            Err(e) => return Err(e),
        };
        let st = &record.state;
        let live = st.status.is_live();
        code = st.exit_code;
        let exited_since = st.finished_at != first.state.finished_at;
        match condition {
            Condition::NotRunning if !live => return Ok(Some(code)),
            Condition::NextExit if !live && exited_since => return Ok(Some(code)),
            _ => {}
        }
        if gone() {
            return Ok(None);
        }
        if !live {
            session = None;
            std::thread::sleep(IDLE);
            continue;
        }
        if session.is_none() {
            session = wait_session(engine, &id).ok();
        }
        let Some(s) = session.as_mut() else {
            // The monitor is finishing (or still starting): the record says so soon.
            std::thread::sleep(IDLE / 10);
            continue;
        };
        match exit_within(s, TICK) {
            Ok(Some(c)) if condition != Condition::Removed => return Ok(Some(c)),
            Ok(Some(c)) => {
                code = c;
                session = None;
            }
            Ok(None) => {}
            Err(_) => session = None,
        }
    }
}

/// The exit code of the last `die` event of container `id` logged since `deaths` opened.
fn last_exit(deaths: &mut crate::events::Events, id: &str) -> Option<i32> {
    let events = deaths.next(Duration::ZERO).ok()??;
    events
        .iter()
        .rev()
        .find(|e| e.action == "die" && e.actor.id == id)
        .and_then(|e| e.actor.attributes.get("exitCode")?.parse().ok())
}

/// A session with the container's monitor that hears only its exit code.
fn wait_session(engine: &Engine, id: &str) -> Result<Session> {
    let mut session = attach::connect(engine, id)?;
    let options = AttachOptions {
        wait: true,
        ..AttachOptions::default()
    };
    session
        .send(Kind::Attach, &options)
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
