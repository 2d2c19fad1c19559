//! A client's connection to a container's monitor: the frames of `monitor/proto.rs` behind
//! plain calls, so that no front end (the CLI's terminal relay, the API server's hijacked
//! connection) speaks the wire protocol. `attach` joins a running container's streams;
//! `lifecycle::start` and `exec::start` hand out the same [`Session`].

use std::fs::File;
use std::io;
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
        // Straight into the frames' buffer: a container's output comes 32 KiB a read at most,
        // and most reads (an exit code) are a few bytes.
        if berth_sys::fd::read_appending(self.stream.as_fd(), &mut self.buf, 32 * 1024)? == 0 {
            return Ok(None);
        }
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

    /// Ends the connection both ways: a read or write blocked on it in another handle
    /// returns at once (the client it relayed for went away).
    pub fn shutdown(&self) -> io::Result<()> {
        self.stream.shutdown(std::net::Shutdown::Both)
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
    /// With what the start warned about (none for an exec).
    Started(Vec<String>),
    /// Its reason, with Docker's code when the command is at fault (126, 127).
    Refused(Error),
    /// It went away without a word (its log says why).
    Silent,
}

/// Reads the answer, the first frame of the session.
pub(crate) fn answer(session: &mut Session) -> Answer {
    match proto::read_frame(&mut session.stream) {
        // An empty payload (an exec's) or one that is not a list: no warnings.
        Ok(Some((Kind::Started, payload))) => {
            Answer::Started(serde_json::from_slice(&payload).unwrap_or_default())
        }
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
    let record = attachable(engine, key)?;
    if record.state.status != Status::Running {
        return Err(Error::Invalid(format!(
            "cannot attach to container {key}: it is not running (start it first)"
        )));
    }
    let session = attach_running(engine, &record, options)?;
    Ok((record, session))
}

/// What attaching gave: the streams now, or from the container's next start.
#[derive(Debug)]
pub enum Attached {
    Now(Session),
    Pending(Pending),
}

/// `attach` as Docker's daemon serves it: a running container's streams at once; a created or
/// stopped one's from its next start, whoever starts it (`docker run` attaches, then starts),
/// with nothing of its output missed.
pub fn attach_or_wait(
    engine: &Engine,
    key: &str,
    options: &AttachOptions,
) -> Result<(Record, Attached)> {
    let record = attachable(engine, key)?;
    let attached = if record.state.status == Status::Running {
        Attached::Now(attach_running(engine, &record, options)?)
    } else {
        let options = granted(&record, options);
        let pending = Pending::new(engine, &record.id, options)?;
        crate::events::record(engine, crate::events::Event::container(&record, "attach"));
        Attached::Pending(pending)
    };
    Ok((record, attached))
}

/// The container `key`, refused while paused or restarting (Docker's words and conflicts).
fn attachable(engine: &Engine, key: &str) -> Result<Record> {
    let record = crate::lifecycle::refresh(engine, engine.containers.find(key)?)?;
    match record.state.status {
        Status::Paused => Err(Error::state(
            &record.id,
            "is paused: unpause the container before attach",
        )),
        Status::Restarting => Err(Error::state(
            &record.id,
            "is restarting: wait until the container is running",
        )),
        _ => Ok(record),
    }
}

/// As Docker: stdin only to a container created with `-i` to keep it open.
fn granted(record: &Record, options: &AttachOptions) -> AttachOptions {
    AttachOptions {
        stdin: options.stdin && record.request.interactive,
        ..options.clone()
    }
}

fn attach_running(engine: &Engine, record: &Record, options: &AttachOptions) -> Result<Session> {
    let mut session = connect(engine, &record.id)?;
    session
        .send(Kind::Attach, &granted(record, options))
        .map_err(Error::io("talk to the monitor of", short(&record.id)))?;
    crate::events::record(engine, crate::events::Event::container(record, "attach"));
    Ok(session)
}

/// `resize`: the size of a running container's terminal (nothing without one).
pub fn resize(engine: &Engine, key: &str, rows: u16, cols: u16) -> Result<()> {
    let record = crate::lifecycle::refresh(engine, engine.containers.find(key)?)?;
    if record.state.status != Status::Running {
        return Err(Error::state(&record.id, "is not running"));
    }
    connect(engine, &record.id)?
        .resize(rows, cols)
        .map_err(Error::io("talk to the monitor of", short(&record.id)))
}

/// Where attaches wait for their container's start, in its directory.
pub(crate) const PENDING_DIR: &str = "attach";

/// An attach waiting for its container to start: a socket in `<dir>/attach/` that the
/// container's monitor connects to when it starts, before the container runs (monitor/
/// client.rs); the session begins then. The socket goes when this is dropped.
#[derive(Debug)]
pub struct Pending {
    listener: std::os::unix::net::UnixListener,
    path: std::path::PathBuf,
    options: AttachOptions,
}

impl Pending {
    pub(crate) fn new(engine: &Engine, id: &str, options: AttachOptions) -> Result<Pending> {
        let dir = engine.containers.dir(id).join(PENDING_DIR);
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let name = format!("{}.sock", crate::names::new_id()?.0);
        let dirfd = File::open(&dir).map_err(Error::io("open", &dir))?;
        let path = dir.join(&name);
        let listener =
            std::os::unix::net::UnixListener::bind(crate::monitor::stdio_short_path(&dirfd, &name))
                .map_err(Error::io("listen on", &path))?;
        Ok(Pending {
            listener,
            path,
            options,
        })
    }

    /// Waits at most `wait` for the container's start: its session then, `None` before.
    pub fn accept(&self, wait: std::time::Duration) -> Result<Option<Session>> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => return Ok(None),
            Ok(_) => {}
            Err(e) => return Err(Error::io("poll", &self.path)(e.into())),
        }
        let (stream, _) = self
            .listener
            .accept()
            .map_err(Error::io("accept on", &self.path))?;
        let mut session = Session::new(stream);
        // The monitor reads this before it starts the container.
        session
            .send(Kind::Attach, &self.options)
            .map_err(Error::io("talk to the monitor at", &self.path))?;
        Ok(Some(session))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Docker's detach keys (`--detach-keys`, the API's `detachKeys`): a sequence of keys that,
/// typed on an attached terminal, ends the attach and leaves the container running. Keys that
/// begin the sequence are held back, and passed on once the next one shows they were input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys {
    keys: Vec<u8>,
    matched: usize,
}

impl Default for DetachKeys {
    /// Ctrl-P Ctrl-Q.
    fn default() -> Self {
        DetachKeys {
            keys: vec![0x10, 0x11],
            matched: 0,
        }
    }
}

impl DetachKeys {
    /// Docker's spelling: comma-separated keys, each one character or `ctrl-<c>` for `c` in
    /// `a`-`z`, `@`, `[`, `\`, `]`, `^`, `_`. Empty is the default.
    pub fn parse(spec: &str) -> Result<DetachKeys> {
        if spec.is_empty() {
            return Ok(DetachKeys::default());
        }
        let mut keys = Vec::new();
        for key in spec.split(',') {
            let code = match key.as_bytes() {
                [c] => Some(*c),
                [b'c', b't', b'r', b'l', b'-', c] => match c.to_ascii_lowercase() {
                    c @ b'a'..=b'z' => Some(c - b'a' + 1),
                    c @ (b'@' | b'[' | b'\\' | b']' | b'^' | b'_') => Some(c - b'@'),
                    _ => None,
                },
                _ => None,
            };
            keys.push(code.ok_or_else(|| {
                Error::Invalid(format!(
                    "invalid detach keys {spec:?}: unknown key {key:?} (use a character or ctrl-<a-z, @, [, \\, ], ^, _>, comma-separated)"
                ))
            })?);
        }
        Ok(DetachKeys { keys, matched: 0 })
    }

    /// What of `input` goes on to the process, and whether the sequence was typed (what
    /// follows it in `input` is dropped: the attach ends there).
    pub fn scan(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if self.keys.get(self.matched) != Some(&b) {
                // Not the sequence after all: what was held back was input.
                out.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
            }
            if self.keys.get(self.matched) == Some(&b) {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_as_dockers() {
        assert_eq!(DetachKeys::parse("").unwrap(), DetachKeys::default());
        assert_eq!(
            DetachKeys::parse("ctrl-p,ctrl-q").unwrap().keys,
            [0x10, 0x11]
        );
        assert_eq!(
            DetachKeys::parse("a,ctrl-@,ctrl-_").unwrap().keys,
            [b'a', 0, 0x1f]
        );
        for bad in ["ctrl-", "ctrl-1", "ab", ",", "ctrl-p,"] {
            assert!(DetachKeys::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn detach_keys_are_held_back_until_known() {
        let mut k = DetachKeys::default();
        assert_eq!(k.scan(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(k.scan(b"\x11rest"), (Vec::new(), true));
        // Ctrl-P then something else: both were input.
        assert_eq!(k.scan(b"\x10x"), (b"\x10x".to_vec(), false));
        assert_eq!(k.scan(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
        let mut k = DetachKeys::parse("a,b,c").unwrap();
        assert_eq!(k.scan(b"aab"), (b"a".to_vec(), false));
        assert_eq!(k.scan(b"x"), (b"abx".to_vec(), false));
    }

    /// The warnings a container's Started carries; an exec's empty payload, or one that is no
    /// list of strings, is a start without any.
    #[test]
    fn started_carries_the_start_s_warnings() {
        let answer_to = |payload: &[u8]| {
            let (mut monitor, ours) = UnixStream::pair().expect("socketpair");
            proto::write_frame(&mut monitor, Kind::Started, payload).expect("write");
            match answer(&mut Session::new(ours)) {
                Answer::Started(warnings) => warnings,
                _ => panic!("not a Started"),
            }
        };
        assert_eq!(
            answer_to(br#"["the host's firewall"]"#),
            ["the host's firewall"]
        );
        for none in [&b""[..], b"[]", b"{", b"[1]", b"\"not a list\""] {
            assert!(answer_to(none).is_empty(), "{none:?}");
        }
    }
}
