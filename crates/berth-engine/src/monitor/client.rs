//! The monitor's clients: attach streams, waiters for the exit, stop requests. Every socket is
//! non-blocking both ways and what a client has not read yet waits in its own buffer, so no
//! client, silent or slow, ever holds up the monitor's loop, the container's output or the
//! other clients; one that falls too far behind is dropped.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::proto::{self, AttachOptions, ErrorReply, Kind};

/// Past this much output a client has not read, it is dropped (a terminal attached over a
/// slow link keeps up with far less; a client that stopped reading never will).
const CLIENT_BACKLOG: usize = 4 << 20;

/// How long the monitor's last words (the exit code, an error) may take to reach all of its
/// clients together, once the container is gone.
pub(super) const LAST_WORDS: Duration = Duration::from_secs(5);

/// A connected client.
pub(super) struct Client {
    pub(super) stream: UnixStream,
    /// Input read and not yet a whole frame.
    buf: Vec<u8>,
    /// Output the client has not read yet.
    out: Vec<u8>,
    pub(super) hello: Option<AttachOptions>,
    /// Wants the Exit frame (waiters, stoppers).
    pub(super) waits: bool,
    pub(super) gone: bool,
}

impl Client {
    pub(super) fn new(stream: UnixStream) -> Client {
        let gone = stream.set_nonblocking(true).is_err();
        Client {
            stream,
            buf: Vec::new(),
            out: Vec::new(),
            hello: None,
            waits: false,
            gone,
        }
    }

    /// Queues a frame and writes what the socket takes now.
    pub(super) fn send(&mut self, kind: Kind, payload: &[u8]) {
        if self.gone {
            return;
        }
        if self.out.len() + payload.len() > CLIENT_BACKLOG {
            self.gone = true;
            return;
        }
        self.out
            .extend_from_slice(&proto::header(kind, payload.len()));
        self.out.extend_from_slice(payload);
        self.flush();
    }

    /// Writes what the socket takes of the queued output.
    pub(super) fn flush(&mut self) {
        while !self.gone && !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => self.gone = true,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => self.gone = true,
            }
        }
    }

    pub(super) fn has_output(&self) -> bool {
        !self.gone && !self.out.is_empty()
    }

    /// What the poll should wait for on this client.
    pub(super) fn events(&self) -> PollFlags {
        if self.has_output() {
            PollFlags::POLLIN | PollFlags::POLLOUT
        } else {
            PollFlags::POLLIN
        }
    }

    /// The whole frames that arrived; marks the client gone at its end or at a protocol error.
    pub(super) fn read_frames(&mut self) -> Vec<(Kind, Vec<u8>)> {
        // Straight into the frames' buffer (berth_sys::fd::read_appending): no 32 KiB array
        // zeroed on the stack for a frame of a few bytes.
        match berth_sys::fd::read_appending(self.stream.as_fd(), &mut self.buf, 32 * 1024) {
            Ok(0) => self.gone = true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => self.gone = true,
        }
        proto::take_frames(&mut self.buf).unwrap_or_else(|_| {
            self.gone = true;
            Vec::new()
        })
    }

    /// Takes a hello (Attach): a malformed one is refused with an Error frame and the client
    /// dropped, never taken for an empty one. Returns the hello taken.
    pub(super) fn take_hello(&mut self, payload: &[u8]) -> Option<&AttachOptions> {
        match parse_hello(payload) {
            Ok(hello) => {
                self.waits = hello.wait;
                self.hello = Some(hello);
                self.hello.as_ref()
            }
            Err(reply) => {
                self.send_json(Kind::Error, &reply);
                self.gone = true;
                None
            }
        }
    }

    /// Tells the client why its request was refused.
    pub(super) fn refuse(&mut self, e: &crate::error::Error) {
        let reply = ErrorReply {
            code: e.exit_code(),
            message: e.to_string(),
        };
        self.send_json(Kind::Error, &reply);
    }

    /// Output queued for the client and not written yet.
    pub(super) fn backlog(&self) -> usize {
        self.out.len()
    }

    pub(super) fn send_json(&mut self, kind: Kind, value: &impl serde::Serialize) {
        let payload = serde_json::to_vec(value).unwrap_or_default();
        self.send(kind, &payload);
    }

    pub(super) fn wants(&self, kind: Kind) -> bool {
        let Some(h) = &self.hello else { return false };
        match kind {
            Kind::Stdout => h.stdout,
            Kind::Stderr => h.stderr,
            _ => false,
        }
    }
}

/// A hello's payload, or the Error reply refusing it.
pub(super) fn parse_hello(payload: &[u8]) -> Result<AttachOptions, ErrorReply> {
    serde_json::from_slice(payload).map_err(|e| ErrorReply {
        code: 125,
        message: format!("the monitor refused a malformed hello: {e}"),
    })
}

/// The attaches waiting for this start (`attach::Pending`), each connected to and its hello
/// read before the container runs, so that none of its output is missed. The sockets are
/// removed: the next start is not theirs. One whose owner went away is only removed; one that
/// says nothing for a second is dropped (the monitor waits on nobody).
pub(super) fn pending(dir: &std::path::Path) -> Vec<Client> {
    let dir = dir.join(crate::attach::PENDING_DIR);
    let (Ok(entries), Ok(dirfd)) = (std::fs::read_dir(&dir), std::fs::File::open(&dir)) else {
        return Vec::new();
    };
    let mut clients = Vec::new();
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let connected = UnixStream::connect(super::stdio::short_path(&dirfd, &name));
        let _ = std::fs::remove_file(entry.path());
        let Ok(mut stream) = connected else {
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        if let Ok(Some((Kind::Attach, payload))) = proto::read_frame(&mut stream) {
            let mut client = Client::new(stream);
            client.take_hello(&payload);
            clients.push(client);
        }
    }
    clients
}

/// Sends the exit code to every client waiting for it.
pub(super) fn notify_exit(clients: &mut [Client], code: i32) {
    for c in clients.iter_mut().filter(|c| c.waits) {
        c.send(Kind::Exit, &code.to_be_bytes());
    }
}

/// Gives the clients' queued output at most `within`, all of them together, to be read.
pub(super) fn drain(clients: &mut [Client], within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let mut pending: Vec<&mut Client> = clients.iter_mut().filter(|c| c.has_output()).collect();
        let left = deadline.saturating_duration_since(Instant::now());
        if pending.is_empty() || left.is_zero() {
            return;
        }
        let mut fds: Vec<PollFd> = pending
            .iter()
            .map(|c| PollFd::new(c.stream.as_fd(), PollFlags::POLLOUT))
            .collect();
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
        drop(fds);
        pending.iter_mut().for_each(|c| c.flush());
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("hello", &self.hello)
            .finish()
    }
}
