//! Small whole files (procfs, cgroupfs, a bundle's config, the runtime's state) read without the
//! size probe std makes first.
//!
//! `std::fs::read` and `read_to_string` stat the file (statx) for a size hint, which procfs and
//! cgroupfs answer with 0 anyway; and without a hint they read in growing steps from 32 bytes,
//! so /proc/PID/stat costs six reads. Here: one open, reads into a buffer the usual file fits
//! until a read returns 0 (two reads for such a file; a procfs file of more than about a page
//! comes a page a read whatever the buffer), one close.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The first buffer: every file the runtime reads on its way fits, mountinfo too but on a host
/// with many mounts, for which the buffer grows.
const FIRST_READ: usize = 16 * 1024;

/// The whole file at `path`.
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let mut data = Vec::with_capacity(FIRST_READ);
    // Through a reader without a size: File's own read_to_end stats the file first.
    Unsized(&mut file).read_to_end(&mut data)?;
    Ok(data)
}

/// The whole file at `path`, which must be UTF-8.
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    String::from_utf8(read(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

struct Unsized<'a>(&'a mut File);

impl Read for Unsized<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_and_large_files_whole() {
        let dir = std::env::temp_dir().join(format!("berth-sys-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for len in [
            0,
            1,
            FIRST_READ - 1,
            FIRST_READ,
            FIRST_READ + 1,
            5 * FIRST_READ + 7,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let path = dir.join(len.to_string());
            std::fs::write(&path, &data).unwrap();
            assert_eq!(read(&path).unwrap(), data, "{len} bytes");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn reads_procfs_files_whose_size_reads_zero() {
        let stat = read_to_string("/proc/self/stat").unwrap();
        assert!(
            stat.starts_with(&format!("{} (", std::process::id())),
            "{stat}"
        );
        assert_eq!(
            read("/nonexistent/berth").unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
