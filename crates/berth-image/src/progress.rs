//! Progress reporting: the library says what happens to each blob; the CLI draws it.

use std::io::{self, Read};

use oci_spec::image::Digest;

/// What is happening to one layer (or config) blob.
#[derive(Clone, Debug)]
pub enum LayerState {
    /// Queued; the size is what the manifest promises.
    Waiting { size: u64 },
    /// Already in the store (or, when pushing, in the registry).
    Exists,
    /// Mounted from another repository of the same registry.
    Mounted { from: String },
    /// Bytes moved so far.
    Transferring { done: u64, total: u64 },
    /// A transient failure; trying again.
    Retrying { attempt: u32, error: String },
    /// Downloaded, verified and unpacked (or uploaded).
    Complete,
}

/// Which way blobs go: the two word their states differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Pull,
    Push,
}

impl LayerState {
    /// Docker's words for the state (`Pulling fs layer`, `Downloading`, `Pull complete`,
    /// `Layer already exists`, `Pushed`...).
    pub fn status(&self, direction: Direction) -> String {
        let push = direction == Direction::Push;
        let words = match self {
            LayerState::Waiting { .. } if push => "Preparing",
            LayerState::Waiting { .. } => "Pulling fs layer",
            LayerState::Exists if push => "Layer already exists",
            LayerState::Exists => "Already exists",
            LayerState::Mounted { from } => return format!("Mounted from {from}"),
            LayerState::Transferring { .. } if push => "Pushing",
            LayerState::Transferring { .. } => "Downloading",
            LayerState::Retrying { attempt, error } => {
                return format!("Retrying (attempt {attempt}): {error}")
            }
            LayerState::Complete if push => "Pushed",
            LayerState::Complete => "Pull complete",
        };
        words.to_string()
    }
}

/// Receives progress events; must be cheap, it is called from the download threads.
pub trait Progress: Send + Sync {
    /// A message about the whole operation (`Digest: sha256:…`, `Status: …`).
    fn message(&self, _text: &str) {}
    fn layer(&self, _digest: &Digest, _state: LayerState) {}
    /// Whether whoever asked has gone (an API client that hung up): a pull or push stops at
    /// its next read or blob, with [`crate::Error::Cancelled`], and records nothing.
    fn cancelled(&self) -> bool {
        false
    }
}

/// Reports nothing.
pub struct Silent;
impl Progress for Silent {}

/// Counts bytes through a reader and reports them every 512 KiB.
pub(crate) struct ProgressReader<'a, R> {
    pub inner: R,
    pub progress: &'a dyn Progress,
    pub digest: &'a Digest,
    pub total: u64,
    pub done: u64,
    pub reported: u64,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.progress.cancelled() {
            return Err(io::Error::other("cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.reported >= 512 << 10 || (n == 0 && self.done != self.reported) {
            self.reported = self.done;
            self.progress.layer(
                self.digest,
                LayerState::Transferring {
                    done: self.done,
                    total: self.total,
                },
            );
        }
        Ok(n)
    }
}
