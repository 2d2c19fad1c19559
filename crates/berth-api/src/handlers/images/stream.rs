//! Answers streamed from a blocking thread (a pull's, push's or load's JSON messages, a save's
//! tar), and request bodies read by one (a load's or an import's tar). As Docker's daemon
//! answers, the status goes with the first bytes: an operation that fails before it sent any
//! is an HTTP error, one that fails after is an error message in the stream.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::handlers::State;
use crate::respond::{self, Reply};

/// Where a job writes its answer.
pub struct Out {
    tx: mpsc::Sender<Bytes>,
    /// Fired (and emptied) by the first send: the answer's status is 200 from then on.
    started: Mutex<Option<oneshot::Sender<()>>>,
    gone: AtomicBool,
}

impl Out {
    /// Sends a chunk (waiting while the client is slow); false once the client is gone.
    pub fn send(&self, bytes: impl Into<Bytes>) -> bool {
        if let Some(started) = self.lock_started().take() {
            let _ = started.send(());
        }
        let sent = self.tx.blocking_send(bytes.into()).is_ok();
        if !sent {
            self.gone.store(true, Ordering::SeqCst);
        }
        sent
    }

    /// One JSON message, ended as Docker ends them.
    pub fn json(&self, message: &Value) -> bool {
        self.send(format!("{message}\r\n"))
    }

    /// Whether the client went away (a send failed, or the connection is closed).
    pub fn gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst) || self.tx.is_closed()
    }

    fn started(&self) -> bool {
        self.lock_started().is_none()
    }

    fn lock_started(&self) -> std::sync::MutexGuard<'_, Option<oneshot::Sender<()>>> {
        self.started.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Docker's error message inside a stream.
pub fn error_message(message: &str) -> Value {
    json!({"errorDetail": {"message": message}, "error": message})
}

/// Runs `job` on a blocking thread and answers with what it writes, as `content_type`: 200 once
/// it wrote something (a later failure is written as Docker's error message), its error if it
/// failed before. A client gone makes every send fail, which the job sees (and
/// [`Out::gone`] for the work between sends).
pub async fn stream<F>(state: &Arc<State>, content_type: &'static str, job: F) -> Reply
where
    F: FnOnce(&State, &Out) -> Result<(), ApiError> + Send + 'static,
{
    let (tx, body) = respond::channel();
    let (started_tx, started_rx) = oneshot::channel();
    let out = Out {
        tx,
        started: Mutex::new(Some(started_tx)),
        gone: AtomicBool::new(false),
    };
    let state = Arc::clone(state);
    let mut task = tokio::task::spawn_blocking(move || match job(&state, &out) {
        Err(e) if out.started() => {
            out.json(&error_message(&e.message));
            Ok(())
        }
        done => done,
    });
    let answer = |body| {
        Ok(respond::builder(200)
            .header("Content-Type", content_type)
            .body(body)
            .expect("static headers are valid"))
    };
    tokio::select! {
        Ok(()) = started_rx => answer(body),
        joined = &mut task => match joined {
            Ok(Ok(())) => answer(body),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(ApiError::internal(format!("the request's thread failed: {e}"))),
        },
    }
}

/// A job's writer for a raw stream (a tarball): buffered into chunks; a write fails once the
/// client is gone.
pub struct Writer<'a>(pub &'a Out);

impl Write for Writer<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0.send(Bytes::copy_from_slice(buf)) {
            Ok(buf.len())
        } else {
            Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the client went away",
            ))
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What is read and dropped of a body whose reader stopped early (a refusal, a failed job)
/// before the connection is let go: a client still sending it would otherwise write into a
/// closed connection and report a broken pipe instead of the answer (the docker CLI's `cp`
/// into a read-only place did). Go's server, Docker's, drains as much after its handler.
const DRAIN: usize = 256 * 1024;

/// The request's body as a blocking `Read`, fed by a task that pulls its frames. A client
/// that goes away mid-body is a read error (UnexpectedEof: an extraction must not take what
/// came as the whole).
pub struct BodyReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    chunk: Bytes,
}

impl BodyReader {
    pub fn new(body: Option<Incoming>) -> BodyReader {
        let (tx, rx) = mpsc::channel(16);
        if let Some(mut body) = body {
            tokio::spawn(async move {
                while let Some(frame) = body.frame().await {
                    let chunk = match frame {
                        Ok(frame) => match frame.into_data() {
                            Ok(data) => Ok(data),
                            Err(_) => continue,
                        },
                        Err(e) => Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("read the request body: {e}"),
                        )),
                    };
                    let failed = chunk.is_err();
                    let reader_gone = tx.send(chunk).await.is_err();
                    if failed {
                        return;
                    }
                    if reader_gone {
                        drain(&mut body).await;
                        return;
                    }
                }
            });
        }
        BodyReader {
            rx,
            chunk: Bytes::new(),
        }
    }
}

/// What follows in a body whose reader stopped (its job failed), read and dropped up to
/// [`DRAIN`] bytes, so that the client reads the answer.
async fn drain(body: &mut Incoming) {
    let mut drained = 0;
    while let Some(Ok(frame)) = body.frame().await {
        drained += frame.data_ref().map_or(0, Bytes::len);
        if drained > DRAIN {
            return;
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(chunk) => self.chunk = chunk?,
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
