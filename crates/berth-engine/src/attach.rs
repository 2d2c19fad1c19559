//! A client's connection to a container's monitor: the frames of `monitor/proto.rs` behind
//! plain calls, so that no front end (the CLI's terminal relay, the API server's hijacked
//! connection) speaks the wire protocol. `attach` joins a running container's streams;
//! `lifecycle::start` and `exec::start` hand out the same [`Session`].

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use crate::engine::Engine;
use crate::error::{short, Error, Result};
use crate::monitor::proto::{self, ErrorReply, Kind};
use crate::records::{Record, Status};

pub use crate::monitor::proto::AttachOptions;

/// What a session brings from the monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The process's exit code; nothing follows.
    Exit(i32),
}

/// A connection to a container's monitor, attached to a process's streams (the container's
/// or an exec's) as its hello asked.
#[derive(Debug)]
pub struct Session {
    stream: UnixStream,
    /// Bytes read that are not a whole frame yet.
    buf: Vec<u8>,
}

impl Session {
    pub(crate) fn new(stream: UnixStream) -> Session {
        Session {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends one frame (a hello, a stop...) to the monitor.
    pub(crate) fn send(&mut self, kind: Kind, value: &impl serde::Serialize) -> io::Result<()> {
        proto::write_json(&mut self.stream, kind, value)
    }

    /// Input for the process's stdin. `Ok(false)` once the monitor takes no more (it is
    /// finishing: the exit code may still be on its way).
    pub fn send_stdin(&mut self, data: &[u8]) -> io::Result<bool> {
        still_open(proto::write_frame(&mut self.stream, Kind::Stdin, data))
    }

    /// The end of the input (a pipe's end; a terminal has none to give).
    pub fn close_stdin(&mut self) -> io::Result<bool> {
        still_open(proto::write_frame(&mut self.stream, Kind::StdinClose, b""))
    }

    /// The size of the process's terminal.
    pub fn resize(&mut self, rows: u16, cols: u16) -> io::Result<()> {
        let payload = proto::resize_payload(rows, cols);
        proto::write_frame(&mut self.stream, Kind::Resize, &payload)
    }

    /// A signal for the container's init (a `run`'s signal proxy).
    pub fn signal(&mut self, signo: i32) -> io::Result<()> {
        proto::write_frame(&mut self.stream, Kind::Signal, &signo.to_be_bytes())
    }

    /// One read of the stream: the whole frames that came, `None` at its end. Blocks until
    /// something comes, unless the caller polled the session readable first (or made it
    /// non-blocking: then `WouldBlock`).
    pub fn read(&mut self) -> io::Result<Option<Vec<Output>>> {
        let mut chunk = [0u8; 32 * 1024];
        let n = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        if n == 0 {
            return Ok(None);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        let frames = proto::take_frames(&mut self.buf)?;
        Ok(Some(frames.into_iter().filter_map(output).collect()))
    }

    /// Reads until the exit code, dropping any output; `None` if the monitor went away first.
    pub fn wait_exit(&mut self) -> Result<Option<i32>> {
        loop {
            let outputs = self
                .read()
                .map_err(Error::io("read from the monitor", "monitor.sock"))?;
            let Some(outputs) = outputs else {
                return Ok(None);
            };
            for o in outputs {
                if let Output::Exit(code) = o {
                    return Ok(Some(code));
                }
            }
        }
    }

    /// A second handle on the same connection (one to read while the other writes); each
    /// keeps its own partial frame, so only one of them may read.
    pub fn try_clone(&self) -> io::Result<Session> {
        Ok(Session::new(self.stream.try_clone()?))
    }
}

impl AsFd for Session {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.stream.as_fd()
    }
}

fn output((kind, payload): (Kind, Vec<u8>)) -> Option<Output> {
    match kind {
        Kind::Stdout => Some(Output::Stdout(payload)),
        Kind::Stderr => Some(Output::Stderr(payload)),
        Kind::Exit => {
            let code: [u8; 4] = payload.try_into().ok()?;
            Some(Output::Exit(i32::from_be_bytes(code)))
        }
        _ => None,
    }
}

/// The monitor's answer to a Start or an Exec.
pub(crate) enum Answer {
    Started,
    /// Its reason, with Docker's code when the command is at fault (126, 127).
    Refused(Error),
    /// It went away without a word (its log says why).
    Silent,
}

/// Reads the answer, the first frame of the session.
pub(crate) fn answer(session: &mut Session) -> Answer {
    match proto::read_frame(&mut session.stream) {
        Ok(Some((Kind::Started, _))) => Answer::Started,
        Ok(Some((Kind::Error, payload))) => {
            let reply: ErrorReply = serde_json::from_slice(&payload).unwrap_or(ErrorReply {
                code: 125,
                message: String::from_utf8_lossy(&payload).into_owned(),
            });
            Answer::Refused(if reply.code == 125 {
                Error::Invalid(reply.message)
            } else {
                Error::Command {
                    code: reply.code,
                    message: reply.message,
                }
            })
        }
        _ => Answer::Silent,
    }
}

/// A write's result: Ok(false) when the monitor no longer reads (it is finishing).
fn still_open(sent: io::Result<()>) -> io::Result<bool> {
    match sent {
        Ok(()) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Connects to the monitor of container `id` (through /proc/self/fd: a socket path has room
/// for 108 bytes, the data root may be deeper).
pub(crate) fn connect(engine: &Engine, id: &str) -> Result<Session> {
    let dir = engine.containers.dir(id);
    let dirfd = File::open(&dir).map_err(Error::io("open", &dir))?;
    let path = crate::monitor::stdio_short_path(&dirfd, "monitor.sock");
    let stream = UnixStream::connect(&path).map_err(Error::io(
        "connect to the monitor at",
        dir.join("monitor.sock"),
    ))?;
    Ok(Session::new(stream))
}

/// `attach`: a session on a running container's streams. As Docker: stdin only if the
/// container was created with `-i` to keep it open; `wait` gets the exit code at its end.
pub fn attach(engine: &Engine, key: &str, options: &AttachOptions) -> Result<(Record, Session)> {
    let record = crate::lifecycle::refresh(engine, engine.containers.find(key)?)?;
    match record.state.status {
        Status::Running => {}
        Status::Paused => {
            return Err(Error::Invalid(format!(
                "container {key} is paused: unpause it before attaching"
            )))
        }
        _ => {
            return Err(Error::Invalid(format!(
                "cannot attach to container {key}: it is not running (start it first)"
            )))
        }
    }
    let options = AttachOptions {
        stdin: options.stdin && record.request.interactive,
        ..options.clone()
    };
    let mut session = connect(engine, &record.id)?;
    session
        .send(Kind::Attach, &options)
        .map_err(Error::io("talk to the monitor of", short(&record.id)))?;
    crate::events::record(engine, crate::events::Event::container(&record, "attach"));
    Ok((record, session))
}
