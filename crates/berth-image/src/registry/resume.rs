//! A blob body that survives a broken connection: it asks for the rest with an HTTP Range
//! request and carries on, so the decoder and unpacker reading it never notice.

use std::io::{self, Read};

use oci_spec::image::Digest;

use super::{Body, Client};

/// Reads a blob of known `size`, never more; on an early end or a transient error, resumes
/// from the byte it had reached (`Range: bytes=N-`), at most `resumes` times.
pub struct ResumingBody<'a> {
    client: &'a Client,
    url: String,
    digest: &'a Digest,
    size: u64,
    reader: Box<dyn Read + Send + Sync + 'static>,
    done: u64,
    resumes: u32,
}

impl<'a> ResumingBody<'a> {
    pub fn new(
        client: &'a Client,
        repo: &str,
        digest: &'a Digest,
        size: u64,
        first: ureq::Response,
        resumes: u32,
    ) -> Self {
        ResumingBody {
            client,
            url: client.url(&format!("/v2/{repo}/blobs/{digest}")),
            digest,
            size,
            reader: first.into_reader(),
            done: 0,
            resumes,
        }
    }

    /// Asks for the bytes from `done` on. A 206 continues the stream; a 200 (a registry that
    /// ignores Range) starts over, so the bytes already read are skipped.
    fn resume(&mut self, cause: io::Error) -> io::Result<()> {
        if self.resumes == 0 {
            return Err(cause);
        }
        self.resumes -= 1;
        let range = format!("bytes={}-", self.done);
        let response = self
            .client
            .send("GET", &self.url, &[("Range", &range)], &Body::Empty)
            .map_err(|e| io::Error::other(format!("resume {}: {e}", self.digest)))?;
        match response.status() {
            206 => {
                let from = response
                    .header("content-range")
                    .and_then(|r| r.strip_prefix("bytes "))
                    .and_then(|r| r.split('-').next())
                    .and_then(|n| n.parse::<u64>().ok());
                if from != Some(self.done) {
                    return Err(cause);
                }
                self.reader = response.into_reader();
            }
            200 => {
                let mut reader = response.into_reader();
                io::copy(&mut (&mut reader).take(self.done), &mut io::sink())?;
                self.reader = reader;
            }
            _ => return Err(cause),
        }
        Ok(())
    }
}

impl ResumingBody<'_> {
    /// At the declared size: the body must end here. One byte more is refused rather than
    /// read on, so a registry that streams forever cannot fill the disk. An error now is
    /// no reason to resume: every byte is in, and the digest check judges them.
    fn end(&mut self) -> io::Result<usize> {
        match self.reader.read(&mut [0u8; 1]) {
            Ok(0) | Err(_) => Ok(0),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                super::longer_than_declared(self.size),
            )),
        }
    }
}

impl Read for ResumingBody<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.size - self.done;
        if left == 0 {
            return self.end();
        }
        let len = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let buf = &mut buf[..len];
        loop {
            match self.reader.read(buf) {
                Ok(0) if !buf.is_empty() => {
                    let cause = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "connection closed after {} of {} bytes",
                            self.done, self.size
                        ),
                    );
                    self.resume(cause)?;
                }
                Ok(n) => {
                    self.done += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_transient(&e) => self.resume(e)?,
                Err(e) => return Err(e),
            }
        }
    }
}

fn is_transient(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | TimedOut | BrokenPipe
    )
}
