//! The monitor's socket protocol: frames of `[kind u8, 0, 0, 0, length u32 BE, payload]`, the
//! shape of Docker's attach stream (kinds 1 and 2 are stdout and stderr there too).
//!
//! A client's first frame is its hello: `Start` on the socketpair the monitor was spawned with
//! (only there), `Attach` on `<dir>/monitor.sock`, or `Attach` on a socket a client listens on in
//! `<dir>/attach/` to be attached from the start: the monitor connects to each of those and
//! reads its hello before it starts the container (`attach::Pending`; `docker run` attaches
//! before it starts).
//!
//! ```text
//! client                                   monitor
//!   Start {stdin, stdout, stderr, wait, ->   create and start the container, this client
//!          size}                             attached as asked (the spawn socketpair only)
//!                                       <-   Started [warnings] | Error {code, message}
//!                                            (a JSON list: what the start warned about, its
//!                                            primary network's warnings, for `run` to print)
//!   Attach {stdin, stdout, stderr,      ->   this client on the running container's streams
//!           wait, size}                      (wait alone: just the exit code)
//!   Stdin bytes, StdinClose, Resize     ->   to the container's stdin or pty
//!                                       <-   Stdout / Stderr bytes
//!   Stop {timeout, signal}              ->   stop signal, then SIGKILL after timeout
//!   Signal n                            ->   signal n to the container's init
//!                                       <-   Exit {code}, after the record is written and, with
//!                                            --rm, everything is removed; then the monitor closes
//!
//!   Exec {id, detach, size}             ->   start the process of exec record <id> (exec.rs)
//!                                            (the monitor forks it through the runtime, holds
//!                                            its pipes or pty, reaps it); this connection, not
//!                                            detached, is its streams from then on
//!                                       <-   Started | Error {code, message}
//!   Stdin bytes, StdinClose, Resize     ->   to the exec's stdin or pty
//!                                       <-   Stdout / Stderr bytes (as the record's attach_*
//!                                            ask; the rest is dropped)
//!                                       <-   Exit {code}, once the exec record holds it
//!   ExecResize {id, rows, cols}         ->   (any connection) the exec's pty
//! ```

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

pub const HEADER: usize = 8;
/// Frames above this are a protocol error (stdin chunks and output are read in 32 KiB pieces).
pub const MAX_FRAME: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Attach = 0,
    Stdout = 1,
    Stderr = 2,
    Stdin = 3,
    StdinClose = 4,
    Resize = 5,
    Stop = 6,
    Started = 7,
    Error = 8,
    Exit = 9,
    /// A signal for the container's init (`run`'s signal proxy): i32 BE.
    Signal = 10,
    Start = 11,
    Exec = 12,
    ExecResize = 13,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        use Kind::*;
        Some(match b {
            0 => Attach,
            1 => Stdout,
            2 => Stderr,
            3 => Stdin,
            4 => StdinClose,
            5 => Resize,
            6 => Stop,
            7 => Started,
            8 => Error,
            9 => Exit,
            10 => Signal,
            11 => Start,
            12 => Exec,
            13 => ExecResize,
            _ => return None,
        })
    }
}

/// What a client wants from the container's streams (the payload of Start and Attach).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    /// Stay until the container exits and get its exit code (run, attach, wait, stop).
    pub wait: bool,
    /// The client's terminal size, applied to the pty before the process starts.
    pub size: Option<(u16, u16)>,
}

/// Starts the process of an exec record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecRequest {
    pub id: String,
    /// Nothing attached: the process's output is dropped, its stdin is empty.
    #[serde(default)]
    pub detach: bool,
    /// The client's terminal size, for the exec's pty.
    #[serde(default)]
    pub size: Option<(u16, u16)>,
}

/// A new size for an exec's pty, from any connection (the API's `exec resize`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExecResize {
    pub id: String,
    pub rows: u16,
    pub cols: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StopRequest {
    /// Seconds before SIGKILL; 0 kills at once.
    pub timeout: i64,
    /// The signal to send first (the container's stop signal when empty).
    #[serde(default)]
    pub signal: String,
    /// `rm -f`: once stopped, the container is removed as `--rm` removes it, and the Exit
    /// frame comes once it is gone from every listing (the rest of its teardown follows).
    #[serde(default)]
    pub remove: bool,
    /// With `remove`, its anonymous volumes too (`rm -v`).
    #[serde(default)]
    pub volumes: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorReply {
    pub code: u8,
    pub message: String,
}

pub fn header(kind: Kind, len: usize) -> [u8; HEADER] {
    let n = (len as u32).to_be_bytes();
    [kind as u8, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

pub fn write_frame(w: &mut impl Write, kind: Kind, payload: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(HEADER + payload.len());
    buf.extend_from_slice(&header(kind, payload.len()));
    buf.extend_from_slice(payload);
    w.write_all(&buf)
}

pub fn write_json(w: &mut impl Write, kind: Kind, value: &impl Serialize) -> io::Result<()> {
    let data = serde_json::to_vec(value).map_err(io::Error::other)?;
    write_frame(w, kind, &data)
}

/// Reads one frame, blocking; `None` at a clean end of stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<Option<(Kind, Vec<u8>)>> {
    let mut head = [0u8; HEADER];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let (kind, len) = parse_header(&head)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Ok(Some((kind, payload)))
}

fn parse_header(head: &[u8; HEADER]) -> io::Result<(Kind, usize)> {
    let kind = Kind::from_u8(head[0])
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unknown frame kind"))?;
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    Ok((kind, len))
}

/// Splits complete frames off the front of `buf` (for the monitor's non-blocking reads).
pub fn take_frames(buf: &mut Vec<u8>) -> io::Result<Vec<(Kind, Vec<u8>)>> {
    let mut frames = Vec::new();
    let mut at = 0;
    while buf.len() - at >= HEADER {
        let head: [u8; HEADER] = buf[at..at + HEADER].try_into().unwrap_or([0; HEADER]);
        let (kind, len) = parse_header(&head)?;
        if buf.len() - at - HEADER < len {
            break;
        }
        frames.push((kind, buf[at + HEADER..at + HEADER + len].to_vec()));
        at += HEADER + len;
    }
    buf.drain(..at);
    Ok(frames)
}

pub fn resize_payload(rows: u16, cols: u16) -> [u8; 4] {
    let r = rows.to_be_bytes();
    let c = cols.to_be_bytes();
    [r[0], r[1], c[0], c[1]]
}

pub fn parse_resize(p: &[u8]) -> Option<(u16, u16)> {
    (p.len() == 4).then(|| {
        (
            u16::from_be_bytes([p[0], p[1]]),
            u16::from_be_bytes([p[2], p[3]]),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_split() {
        let mut buf = Vec::new();
        write_frame(&mut buf, Kind::Stdout, b"hello").unwrap();
        write_frame(&mut buf, Kind::Resize, &resize_payload(24, 80)).unwrap();
        buf.extend_from_slice(&header(Kind::Stdin, 10)[..5]);
        let frames = take_frames(&mut buf).unwrap();
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0], (Kind::Stdout, b"hello".to_vec()));
        assert_eq!(parse_resize(&frames[1].1), Some((24, 80)));
        assert_eq!(buf.len(), 5, "a partial frame stays for the next read");
        let mut r = io::Cursor::new({
            let mut v = Vec::new();
            write_frame(&mut v, Kind::Exit, &3i32.to_be_bytes()).unwrap();
            v
        });
        assert_eq!(read_frame(&mut r).unwrap().unwrap().0, Kind::Exit);
        assert!(read_frame(&mut r).unwrap().is_none());
    }

    #[test]
    fn bad_frames_are_errors() {
        let mut buf = vec![42, 0, 0, 0, 0, 0, 0, 0];
        assert!(take_frames(&mut buf).is_err());
        let mut big = header(Kind::Stdin, MAX_FRAME + 1).to_vec();
        assert!(take_frames(&mut big).is_err());
    }
}
