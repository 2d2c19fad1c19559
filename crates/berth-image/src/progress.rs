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

/// Receives progress events; must be cheap, it is called from the download threads.
pub trait Progress: Send + Sync {
    /// A message about the whole operation (`Digest: sha256:…`, `Status: …`).
    fn message(&self, _text: &str) {}
    fn layer(&self, _digest: &Digest, _state: LayerState) {}
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
