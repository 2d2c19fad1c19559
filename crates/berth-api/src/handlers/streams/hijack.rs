//! Hijacked connections, as attach and exec start use them: the answer is `101 UPGRADED`
//! (`Upgrade: tcp`), then the connection carries the process's output one way (framed as
//! Docker's stdcopy without a terminal, raw with one) and its input the other, relayed to and
//! from an engine session.
//!
//! The session is blocking: one thread reads it, one writes to it, and the connection's task
//! joins them. Whichever side ends first ends the relay and releases everything: the process's
//! exit (its last output written first), the detach keys, or the client gone. A client that
//! half-closes (the docker CLI at the end of its stdin) is still reading: its end of input is
//! the process's. One that went away entirely is noticed at once when it was sending input,
//! or within a second from its socket's hang-up otherwise.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use berth_engine::attach::{DetachKeys, Output, Pending, Session};
use berth_engine::exec;
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{frame, stream_type, State};
use crate::error::ApiError;
use crate::listen::Conn;
use crate::respond::{self, Reply};
use crate::router::Call;

/// What a hijacked connection relays.
pub struct Stream {
    pub source: Source,
    /// Raw output (a terminal), else framed.
    pub tty: bool,
    /// The client's input goes to the process.
    pub stdin: bool,
    /// With a terminal and input: the keys that end the relay, leaving the process running.
    pub detach: Option<DetachKeys>,
    /// Bytes to send before the session's output (attach's `logs`), already encoded.
    pub prelude: Vec<u8>,
}

/// Where the session comes from.
pub enum Source {
    /// None: the prelude is all there is (attach's logs without its stream).
    Nothing,
    Now(Session),
    /// From the container's next start (attach before start, as `docker run` does it).
    Pending {
        pending: Pending,
        container: String,
    },
    /// The exec `id`, started once the connection is switched, as Docker starts it: the
    /// client reads before the process writes, and why it could not start is the stream's.
    Exec {
        id: String,
        size: Option<(u16, u16)>,
    },
}

/// Answers `call` with the switch to the raw stream and relays `stream` over the connection
/// once switched. Every client of this API asks for the switch (`Upgrade: tcp`); hyper cannot
/// hand over a connection without it, so one that does not is told to.
pub fn hijack(state: &Arc<State>, call: &mut Call, stream: Stream) -> Reply {
    if !call.headers.contains_key(hyper::header::UPGRADE) {
        return Err(ApiError::bad_request(
            "this endpoint hijacks the connection: send the request with the headers 'Connection: Upgrade' and 'Upgrade: tcp'",
        ));
    }
    let content_type = stream_type(call, stream.tty);
    let state = Arc::clone(state);
    let on_upgrade = hyper::upgrade::on(&mut call.request);
    tokio::spawn(async move {
        // A client gone before the switch: the stream (its session, its pending socket) goes.
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        match upgraded.downcast::<TokioIo<Box<dyn Conn>>>() {
            Ok(parts) => {
                let io = parts.io.into_inner();
                let socket = io.socket().try_clone_to_owned().ok();
                relay(state, Box::new(io), socket, parts.read_buf, stream).await;
            }
            Err(upgraded) => {
                let io = TokioIo::new(upgraded);
                relay(state, Box::new(io), None, Bytes::new(), stream).await;
            }
        }
    });
    Ok(respond::builder(101)
        .header("Content-Type", content_type)
        .header("Connection", "Upgrade")
        .header("Upgrade", "tcp")
        .body(respond::empty())
        .expect("static headers are valid"))
}

/// The relay's end of a connection.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Input for the session's writer thread.
enum Input {
    Data(Vec<u8>),
    End,
}

async fn relay(
    state: Arc<State>,
    io: Box<dyn Io>,
    socket: Option<OwnedFd>,
    early: Bytes,
    stream: Stream,
) {
    let (rd, mut wr) = tokio::io::split(io);
    if wr.write_all(&stream.prelude).await.is_err() {
        return;
    }
    let session = match open(&state, stream.source, stream.tty, socket.as_ref()).await {
        Ok(session) => session,
        Err(last_words) => {
            let _ = wr.write_all(&last_words).await;
            let _ = wr.shutdown().await;
            return;
        }
    };
    let Ok((output, input, closer)) = threads(session) else {
        return;
    };
    let relayed = Relayed {
        tty: stream.tty,
        detach: stream.detach,
        socket,
        input,
    };
    // Input sent along with the request, before the switch.
    let early = (stream.stdin && !early.is_empty()).then(|| early.to_vec());
    relayed.run(rd, &mut wr, output, stream.stdin, early).await;
    let _ = wr.shutdown().await;
    // Wakes the reader thread; the writer ends with its channel.
    let _ = closer.shutdown();
}

/// The session the stream relays, or the last words for the client when there is none.
async fn open(
    state: &Arc<State>,
    source: Source,
    tty: bool,
    socket: Option<&OwnedFd>,
) -> Result<Session, Vec<u8>> {
    match source {
        Source::Nothing => Err(Vec::new()),
        Source::Now(session) => Ok(session),
        Source::Pending { pending, container } => started(state, pending, container, socket)
            .await
            .ok_or_else(Vec::new),
        Source::Exec { id, size } => {
            let start = state.blocking(move |s| Ok(exec::start(&s.engine, &id, false, size)));
            match start.await {
                Ok(Ok(session)) => Ok(session),
                Ok(Err(e)) => {
                    let text = format!("{e}\r\n");
                    let mut words = Vec::new();
                    if tty {
                        words.extend_from_slice(text.as_bytes());
                    } else {
                        frame(1, text.as_bytes(), &mut words);
                    }
                    Err(words)
                }
                Err(_) => Err(Vec::new()),
            }
        }
    }
}

/// One relay's state between the client and the session's threads.
struct Relayed {
    tty: bool,
    detach: Option<DetachKeys>,
    socket: Option<OwnedFd>,
    input: mpsc::Sender<Input>,
}

impl Relayed {
    /// Relays until the process's exit, the detach keys, or the client gone.
    async fn run(
        mut self,
        mut rd: impl AsyncRead + Unpin,
        wr: &mut (impl AsyncWrite + Unpin),
        mut output: mpsc::Receiver<Output>,
        mut reading: bool,
        early: Option<Vec<u8>>,
    ) {
        if let Some(data) = early {
            if self.send_input(&data).await {
                return;
            }
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut buf = vec![0u8; 32 << 10];
        loop {
            tokio::select! {
                out = output.recv() => {
                    let (n, data) = match out {
                        Some(Output::Stdout(data)) => (1, data),
                        Some(Output::Stderr(data)) => (2, data),
                        Some(Output::Exit(_)) | None => return,
                    };
                    if write_output(wr, self.tty, n, &data).await.is_err() {
                        return;
                    }
                }
                read = rd.read(&mut buf), if reading => match read {
                    Ok(0) | Err(_) => {
                        reading = false;
                        if hung_up(self.socket.as_ref()) {
                            return;
                        }
                        let _ = self.input.send(Input::End).await;
                    }
                    Ok(n) => {
                        if self.send_input(&buf[..n]).await {
                            return;
                        }
                    }
                },
                _ = tick.tick(), if !reading => {
                    if hung_up(self.socket.as_ref()) {
                        return;
                    }
                }
            }
        }
    }

    /// Passes input on (through the detach keys, if any); true once they were typed.
    async fn send_input(&mut self, data: &[u8]) -> bool {
        let (data, detached) = match &mut self.detach {
            Some(keys) => keys.scan(data),
            None => (data.to_vec(), false),
        };
        if !data.is_empty() {
            let _ = self.input.send(Input::Data(data)).await;
        }
        detached
    }
}

async fn write_output(
    wr: &mut (impl AsyncWrite + Unpin),
    tty: bool,
    stream: u8,
    data: &[u8],
) -> std::io::Result<()> {
    if tty {
        return wr.write_all(data).await;
    }
    let mut framed = Vec::with_capacity(data.len() + 8);
    frame(stream, data, &mut framed);
    wr.write_all(&framed).await
}

/// The session's reader and writer threads: the output they read, the input they write, and a
/// handle that shuts the session down.
fn threads(
    session: Session,
) -> std::io::Result<(mpsc::Receiver<Output>, mpsc::Sender<Input>, Session)> {
    let mut reader = session.try_clone()?;
    let closer = session.try_clone()?;
    let (out_tx, out_rx) = mpsc::channel(16);
    let (in_tx, mut in_rx) = mpsc::channel::<Input>(16);
    std::thread::Builder::new()
        .name("attach-out".into())
        .spawn(move || {
            while let Ok(Some(outputs)) = reader.read() {
                for o in outputs {
                    if out_tx.blocking_send(o).is_err() {
                        return;
                    }
                }
            }
        })?;
    let mut writer = session;
    let spawned = std::thread::Builder::new()
        .name("attach-in".into())
        .spawn(move || {
            while let Some(input) = in_rx.blocking_recv() {
                let open = match input {
                    Input::Data(data) => writer.send_stdin(&data),
                    Input::End => writer.close_stdin(),
                };
                if !matches!(open, Ok(true)) {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        let _ = closer.shutdown();
        return Err(e);
    }
    Ok((out_rx, in_tx, closer))
}

/// Waits for the container's start, and gives up when the client hangs up or the container
/// is removed.
async fn started(
    state: &Arc<State>,
    pending: Pending,
    container: String,
    socket: Option<&OwnedFd>,
) -> Option<Session> {
    let gone = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&gone);
    let state = Arc::clone(state);
    let mut wait = tokio::task::spawn_blocking(move || loop {
        if flag.load(Ordering::SeqCst) || state.engine.containers.load(&container).is_err() {
            return None;
        }
        match pending.accept(Duration::from_secs(1)) {
            Ok(Some(session)) => return Some(session),
            Ok(None) => {}
            Err(_) => return None,
        }
    });
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            session = &mut wait => return session.ok().flatten(),
            _ = tick.tick() => {
                if hung_up(socket) {
                    gone.store(true, Ordering::SeqCst);
                }
            }
        }
    }
}

/// True when the client's socket says it hung up entirely (not merely finished its input).
fn hung_up(socket: Option<&OwnedFd>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let Some(fd) = socket else {
        return false;
    };
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::empty())];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(1..))
        && fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLHUP | PollFlags::POLLERR))
}
