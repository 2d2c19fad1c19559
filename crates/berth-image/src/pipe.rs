//! An in-process pipe of byte chunks, so one layer's download, inflating and untarring run
//! on three threads at once (as `curl | gzip -dc | tar -x` does with three processes).
//!
//! The producer fills whole chunks in place (`fill_from`: the inflater writes straight into
//! the chunk the untarring thread will read), and the consumer hands each chunk back once read,
//! so a layer's pipe allocates its few chunks once instead of one (and its page faults) per
//! chunk of the layer.

use std::io::{self, BufRead, Read, Write};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};

/// Small pieces, as a kernel pipe hands them over (64 KiB): on a machine busy with other
/// work, stages that give way often are scheduled soon after they wake, while stages that run
/// long between hand-offs wait behind the other work's time slices. Measured on 2 cores
/// (bench/README.md, image-pull.sh): 256 KiB chunks 16 deep left a pull behind `gzip | tar`
/// under load; 32 KiB kept pace there but cost ~9% on free cores; 64 KiB did both.
pub const CHUNK: usize = 64 << 10;

/// The writing end; dropping it is end of file for the reader.
pub struct PipeWriter {
    tx: SyncSender<Vec<u8>>,
    /// Chunks the reader is done with, to fill again.
    free: Receiver<Vec<u8>>,
    buf: Vec<u8>,
}

/// The reading end; dropping it makes the writer fail with BrokenPipe.
pub struct PipeReader {
    rx: Receiver<Vec<u8>>,
    free: Sender<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

/// A pipe holding at most `chunks` chunks of CHUNK bytes in flight.
pub fn pipe(chunks: usize) -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(chunks);
    let (free_tx, free_rx) = channel();
    (
        PipeWriter {
            tx,
            free: free_rx,
            buf: Vec::new(),
        },
        PipeReader {
            rx,
            free: free_tx,
            chunk: Vec::new(),
            pos: 0,
        },
    )
}

impl PipeWriter {
    /// A chunk with room for CHUNK bytes: one the reader gave back (still holding what it
    /// carried), else a new, empty one.
    fn spare_chunk(&self) -> Vec<u8> {
        self.free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK))
    }

    /// Reads from `source` straight into chunks until its end, passing each full chunk to
    /// `seen` (a hasher) before it goes down the pipe. Returns the bytes carried.
    pub fn fill_from(
        &mut self,
        source: &mut impl Read,
        mut seen: impl FnMut(&[u8]),
    ) -> io::Result<u64> {
        self.flush()?;
        let mut total = 0;
        loop {
            let mut chunk = self.spare_chunk();
            // Only what it did not carry last time is zeroed: a chunk is zeroed once in its life.
            chunk.resize(CHUNK, 0);
            let mut filled = 0;
            while filled < CHUNK {
                match source.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            chunk.truncate(filled);
            if filled == 0 {
                return Ok(total);
            }
            seen(&chunk);
            total += filled as u64;
            self.send(chunk)?;
            if filled < CHUNK {
                return Ok(total);
            }
        }
    }

    fn send(&self, chunk: Vec<u8>) -> io::Result<()> {
        self.tx
            .send(chunk)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }

    /// Sends what is buffered and closes the pipe.
    pub fn close(mut self) -> io::Result<()> {
        self.flush()
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.capacity() == 0 {
            self.buf = self.spare_chunk();
            self.buf.clear();
        }
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
        let full = std::mem::take(&mut self.buf);
        self.send(full)
    }
}

impl PipeReader {
    /// The current chunk, after waiting for the next one if this one is used up; empty at
    /// the end.
    fn current(&mut self) -> &[u8] {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    let done = std::mem::replace(&mut self.chunk, chunk);
                    if done.capacity() > 0 {
                        let _ = self.free.send(done);
                    }
                    self.pos = 0;
                }
                Err(_) => return &[],
            }
        }
        &self.chunk[self.pos..]
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.current();
        let n = out.len().min(available.len());
        out[..n].copy_from_slice(&available[..n]);
        self.pos += n;
        Ok(n)
    }
}

/// A reader that needs a buffered one (the inflater) reads the chunks in place.
impl BufRead for PipeReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        Ok(self.current())
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.chunk.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(mut r: PipeReader) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut got = Vec::new();
            // Small reads, as tar's headers are read.
            let mut buf = [0u8; 1000];
            loop {
                let n = r.read(&mut buf).unwrap();
                if n == 0 {
                    return got;
                }
                got.extend_from_slice(&buf[..n]);
            }
        })
    }

    #[test]
    fn carries_bytes_and_eof() {
        let (mut w, r) = pipe(2);
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let expect = data.clone();
        let reader = read_all(r);
        w.write_all(&data).unwrap();
        w.close().unwrap();
        assert_eq!(reader.join().unwrap(), expect);
        let (mut w, r) = pipe(1);
        drop(r);
        assert!(w.write_all(&[0u8; CHUNK * 3]).is_err());
    }

    #[test]
    fn a_buffered_reader_reads_chunks_in_place() {
        let data: Vec<u8> = (0..(CHUNK * 2 + 99) as u32).map(|i| i as u8).collect();
        let (mut w, mut r) = pipe(2);
        let expect = data.clone();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                let buf = r.fill_buf().unwrap();
                if buf.is_empty() {
                    return got;
                }
                // Consume a part at a time, and never more than was handed out.
                let n = buf.len().min(100_000);
                got.extend_from_slice(&buf[..n]);
                r.consume(n);
            }
        });
        w.write_all(&data).unwrap();
        w.close().unwrap();
        assert_eq!(reader.join().unwrap(), expect);
    }

    #[test]
    fn fills_chunks_from_a_reader_and_reuses_them() {
        // Not a multiple of CHUNK, and a source that returns short reads.
        let data: Vec<u8> = (0..(CHUNK * 5 + 12345) as u32)
            .map(|i| (i % 251) as u8)
            .collect();
        struct Dribble<'a>(&'a [u8]);
        impl Read for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(70_000);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let (mut w, r) = pipe(1);
        let reader = read_all(r);
        let mut seen = 0;
        let carried = w
            .fill_from(&mut Dribble(&data), |c| seen += c.len())
            .unwrap();
        w.close().unwrap();
        assert_eq!((carried, seen), (data.len() as u64, data.len()));
        assert_eq!(reader.join().unwrap(), data);
        // An empty source sends nothing.
        let (mut w, r) = pipe(1);
        let reader = read_all(r);
        assert_eq!(w.fill_from(&mut &b""[..], |_| {}).unwrap(), 0);
        drop(w);
        assert!(reader.join().unwrap().is_empty());
    }
}
