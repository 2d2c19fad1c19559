//! An in-process pipe of byte chunks, so one layer's inflating and its untarring run on two
//! cores at once (as `gzip -dc | tar -x` does with two processes).

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

const CHUNK: usize = 256 << 10;

/// The writing end; dropping it is end of file for the reader.
pub struct PipeWriter {
    tx: SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

/// The reading end; dropping it makes the writer fail with BrokenPipe.
pub struct PipeReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

/// A pipe holding at most `chunks` chunks of 256 KiB in flight.
pub fn pipe(chunks: usize) -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(chunks);
    (
        PipeWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        PipeReader {
            rx,
            chunk: Vec::new(),
            pos: 0,
        },
    )
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .send(full)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl PipeWriter {
    /// Sends what is buffered and closes the pipe.
    pub fn close(mut self) -> io::Result<()> {
        self.flush()
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.chunk.len() - self.pos);
        out[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_bytes_and_eof() {
        let (mut w, mut r) = pipe(2);
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let expect = data.clone();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            got
        });
        w.write_all(&data).unwrap();
        w.close().unwrap();
        assert_eq!(reader.join().unwrap(), expect);
        let (mut w, r) = pipe(1);
        drop(r);
        assert!(w.write_all(&[0u8; CHUNK * 3]).is_err());
    }
}
