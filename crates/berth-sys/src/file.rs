//! Small whole files (procfs, cgroupfs, a bundle's config, the runtime's state) read without the
//! size probe std makes first.
//!
//! `std::fs::read` and `read_to_string` stat the file (statx) for a size hint, which procfs and
//! cgroupfs answer with 0 anyway; and without a hint they read in growing steps from 32 bytes,
//! so /proc/PID/stat costs six reads. Here: one open, reads into a buffer the usual file fits
//! until a read returns 0 (two reads for such a file; a procfs file of more than about a page
//! comes a page a read whatever the buffer), one close. A kernel file (under /proc or /sys)
//! whose first read is short of half a page is whole after that read: see [`whole_after`].

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The first buffer: every file the runtime reads on its way fits, mountinfo too but on a host
/// with many mounts, for which the buffer grows.
const FIRST_READ: usize = 16 * 1024;

/// The whole file at `path`.
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref();
    let mut file = File::open(path)?;
    let mut data = Vec::with_capacity(FIRST_READ);
    if is_kernel_file(path) {
        // A page zeroed, not the whole buffer: what is not read is not touched.
        data.resize(4096, 0);
        let n = loop {
            match file.read(&mut data) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        data.truncate(n);
        if whole_after(n) {
            return Ok(data);
        }
    }
    // Through a reader without a size: File's own read_to_end stats the file first.
    Unsized(&mut file).read_to_end(&mut data)?;
    Ok(data)
}

/// Kernel files made of short records, which the runtime reads on its way: a process's stat,
/// status and cgroup (one record each), its id maps and sysctls, and cgroupfs control files
/// (lines of a pid, a rule, a counter). Not mountinfo nor maps, whose lines can be longer
/// than the half page [`whole_after`] counts on (an overlay mount's options).
fn is_kernel_file(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    path.starts_with("/sys/fs/cgroup")
        || path.starts_with("/proc/sys")
        || (path.starts_with("/proc")
            && matches!(name, "stat" | "status" | "cgroup" | "uid_map" | "gid_map"))
}

/// Whether a kernel file whose first read gave `n` bytes (into a buffer of a page) was
/// read whole, which saves the read that would return 0. The kernel makes such a file with
/// seq_file (or a sysfs show of at most a page): one record shown whole, or records added to a
/// page-sized buffer until the next one does not fit, so a read is short before the end only
/// by less than one record, past half a page for the records of these files (lines: a task's
/// status, a cgroup). Shorter than that, nothing is left.
fn whole_after(n: usize) -> bool {
    n < 2048
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
    fn reads_long_kernel_files_whole() {
        // /proc/stat (named like a process's stat, so read the short way) is longer than half
        // a page on a host with a few CPUs more than this one: its every line must still come.
        let stat = read_to_string("/proc/stat").unwrap();
        let again = std::fs::read_to_string("/proc/stat").unwrap();
        assert!(stat.ends_with('\n'), "{stat}");
        assert_eq!(stat.lines().count(), again.lines().count(), "{stat}");
        let status = read_to_string("/proc/self/status").unwrap();
        assert!(status.contains("\nCapBnd:"), "{status}");
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
