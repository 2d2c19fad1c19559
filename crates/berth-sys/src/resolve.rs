//! `openat2(2)` lookups confined to a directory (RESOLVE_IN_ROOT, RESOLVE_BENEATH), the one
//! place every crate opens a path inside a container's root, an image or an archive.
//!
//! With RESOLVE_IN_ROOT or RESOLVE_BENEATH, a lookup that walks `..` fails with EAGAIN whenever
//! a rename or a mount happened anywhere on the machine while it ran: the kernel can then no
//! longer prove the walk stayed inside, and its manual page asks the caller to try again. Any
//! process can cause that at will (a container renaming a file in a loop), so a caller that
//! gave up at once would fail by chance under ordinary load, and on purpose under a hostile
//! neighbour's.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow};
use nix::sys::stat::{FileStat, Mode, SFlag};
use nix::NixPath;

/// How many times a lookup is asked again after EAGAIN before the error is returned: each
/// try takes microseconds, and a try fails only if a rename lands inside its own window.
const TRIES: u32 = 1024;

/// `openat2(dir, path, how)`, asked again while the kernel answers EAGAIN (see the module).
pub fn openat2<Fd: AsFd, P: ?Sized + NixPath>(
    dir: Fd,
    path: &P,
    how: OpenHow,
) -> nix::Result<OwnedFd> {
    let dir = dir.as_fd();
    let mut tries = 1;
    loop {
        match nix::fcntl::openat2(dir, path, how) {
            Err(Errno::EAGAIN) if tries < TRIES => {
                tries += 1;
                // Give the renaming side its turn now and then, should it share our CPU.
                if tries % 16 == 0 {
                    std::thread::yield_now();
                }
            }
            other => return other,
        }
    }
}

/// The regular file `path` (an `O_PATH` descriptor, whose opening runs no driver) opened
/// again for reading with `flags`, through /proc/self/fd, with its stat; `None` when it is
/// not a regular file. Opening a device node runs its driver's open whatever is read after
/// (a watchdog's arms it; a tty's may become ours), so a name a container controls is opened
/// so, never by name with O_RDONLY: what is stat'ed is what is opened.
pub fn open_regular(
    path: BorrowedFd<'_>,
    flags: OFlag,
) -> nix::Result<Option<(OwnedFd, FileStat)>> {
    let st = nix::sys::stat::fstat(path)?;
    if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
        return Ok(None);
    }
    let again = format!("/proc/self/fd/{}", path.as_raw_fd());
    let fd = nix::fcntl::open(
        again.as_str(),
        flags | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::empty(),
    )?;
    Ok(Some((fd, st)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::ResolveFlag;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// A lookup through `..` while another thread renames a file over and over: every one
    /// opens. (`nix::fcntl::openat2` alone failed hundreds of them with EAGAIN here.)
    #[test]
    fn a_lookup_through_dot_dot_survives_renames_elsewhere() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::create_dir(dir.path().join("b")).unwrap();
        std::fs::write(dir.path().join("x"), b"").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let renamer = {
            let (stop, x, y) = (stop.clone(), dir.path().join("x"), dir.path().join("y"));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::fs::rename(&x, &y).unwrap();
                    std::fs::rename(&y, &x).unwrap();
                }
            })
        };
        let root = std::fs::File::open(dir.path()).unwrap();
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT);
        let failed = (0..20_000)
            .filter(|_| openat2(&root, "a/../b", how).is_err())
            .count();
        stop.store(true, Ordering::Relaxed);
        renamer.join().unwrap();
        assert_eq!(failed, 0);
    }

    #[test]
    fn only_a_regular_file_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"content").unwrap();
        let path = |name: &str| {
            nix::fcntl::open(
                &dir.path().join(name),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .unwrap()
        };
        let (fd, st) = open_regular(path("f").as_fd(), OFlag::O_RDONLY)
            .unwrap()
            .unwrap();
        assert_eq!(st.st_size, 7);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text).unwrap();
        assert_eq!(text, "content");
        std::os::unix::fs::symlink("f", dir.path().join("l")).unwrap();
        assert!(open_regular(path("l").as_fd(), OFlag::O_RDONLY)
            .unwrap()
            .is_none());
        let null =
            nix::fcntl::open("/dev/null", OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
        assert!(open_regular(null.as_fd(), OFlag::O_RDONLY)
            .unwrap()
            .is_none());
    }
}
