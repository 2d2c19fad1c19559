//! Re-execute the running binary from a sealed memfd (CVE-2019-5736): a process in a container
//! that opens `/proc/<pid>/exe` of the runtime then reaches a read-only anonymous copy, never the
//! binary on the host.

use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

const MEMFD_NAME: &str = "berth-sealed";

/// True when the running binary is already the sealed copy.
pub fn is_sealed() -> bool {
    std::fs::read_link("/proc/self/exe")
        .map(|p| {
            p.to_string_lossy()
                .starts_with(&format!("/memfd:{MEMFD_NAME}"))
        })
        .unwrap_or(false)
}

/// Copies `/proc/self/exe` into a sealed memfd and `fexecve`s it with the same arguments and
/// environment. Returns only on error.
pub fn reexec_sealed() -> io::Error {
    match try_reexec() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn try_reexec() -> io::Result<std::convert::Infallible> {
    let mut exe = std::fs::File::open("/proc/self/exe")?;
    let memfd = memfd_create(
        MEMFD_NAME,
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )?;
    let mut out = std::fs::File::from(memfd);
    // std::io::copy uses copy_file_range/sendfile between two files: an in-kernel copy.
    io::copy(&mut exe, &mut out)?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(out.as_fd(), FcntlArg::F_ADD_SEALS(seals))?;
    let args = to_cstrings(std::env::args_os())?;
    let env = to_cstrings(std::env::vars_os().map(|(k, v)| {
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        kv
    }))?;
    match nix::unistd::fexecve(out.as_fd(), &args, &env) {
        Ok(never) => match never {},
        Err(e) => Err(e.into()),
    }
}

fn to_cstrings(items: impl Iterator<Item = std::ffi::OsString>) -> io::Result<Vec<CString>> {
    use std::os::unix::ffi::OsStringExt;
    items
        .map(|s| CString::new(s.into_vec()).map_err(io::Error::other))
        .collect()
}

/// True when `exe`, the target of a `/proc/<pid>/exe` link, is a read-only view made by
/// [`protected_exe`] or a sealed copy made by [`reexec_sealed`].
pub fn is_protected_exe(exe: &std::path::Path) -> bool {
    exe.starts_with(protected_dir())
        || exe
            .to_string_lossy()
            .starts_with(&format!("/memfd:{MEMFD_NAME}"))
}

/// Where read-only views of the binary live (one per binary version in use): `exe` under
/// berth's runtime directory (`/run/berth/exe` for root, the user's own for rootless berth).
pub fn protected_dir() -> std::path::PathBuf {
    crate::rootless::run_dir().join("exe")
}

/// True when the running binary is a read-only view made by [`protected_exe`].
pub fn is_protected() -> bool {
    std::fs::read_link("/proc/self/exe")
        .map(|p| p.starts_with(protected_dir()))
        .unwrap_or(false)
}

/// A path to this binary that no one can write through: a read-only bind mount of it under
/// [`protected_dir`], made once per binary version and reused by every later process.
///
/// This closes CVE-2019-5736 like the sealed memfd does (a process in a container that opens
/// `/proc/<pid>/exe` of a process run from this path reaches a read-only mount: EROFS), without
/// copying the binary on every start, and lets all such processes share its page cache.
/// Falls back to `Err` when the binary was replaced since it started (callers then seal).
///
/// The view stays while this process lives (it holds it open, see [`pin_view`]), so the path
/// may be executed later; making a new view removes the views nothing uses any more.
pub fn protected_exe() -> io::Result<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let real = std::fs::read_link("/proc/self/exe")?;
    let dir = protected_dir();
    if real.starts_with(&dir) {
        return Ok(real);
    }
    if real.to_string_lossy().ends_with(" (deleted)") {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the binary was replaced",
        ));
    }
    let meta = std::fs::metadata(&real)?;
    let name = format!(
        "berth-{:x}-{:x}-{:x}-{:x}",
        meta.dev(),
        meta.ino(),
        meta.mtime(),
        meta.size()
    );
    let path = dir.join(name);
    if pin_view(&path, &meta) {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir)?;
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))?;
    lock.lock()?;
    if pin_view(&path, &meta) {
        return Ok(path);
    }
    forget_unused_views();
    make_private_mount(&dir)?;
    std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?;
    use nix::mount::{mount, MsFlags};
    // The running inode itself, whatever the path holds by now; in a private mount, so the
    // bind is not copied, still writable, into other mount namespaces before the remount.
    let undo = |e: io::Error| {
        let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(&path);
        e
    };
    mount(
        Some("/proc/self/exe"),
        &path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| undo(e.into()))?;
    let ro = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
    mount(None::<&str>, &path, None::<&str>, ro, None::<&str>).map_err(|e| undo(e.into()))?;
    if !pin_view(&path, &meta) {
        return Err(undo(io::Error::other(
            "the read-only view of the binary did not take",
        )));
    }
    Ok(path)
}

/// Makes `dir` a mount point of its own with private propagation (once), so the mounts made
/// under it stay in this mount namespace: /run is usually shared with other namespaces.
fn make_private_mount(dir: &std::path::Path) -> io::Result<()> {
    use nix::mount::{mount, MsFlags};
    let info = std::fs::read_to_string("/proc/self/mountinfo")?;
    let target = dir.to_string_lossy();
    let mounted = info
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(target.as_ref()));
    if !mounted {
        mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
    }
    mount(
        None::<&str>,
        dir,
        None::<&str>,
        MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    Ok(())
}

/// Removes the views nothing uses, under the lock that making a view takes: every other
/// version of the binary (a new build, another checkout) left its own. A view is in use while
/// a process runs from it or holds it open ([`pin_view`]), which is exactly when the kernel
/// refuses a plain (not lazy) unmount with EBUSY; the kernel decides, so no process can slip
/// in between a check and the unmount. Also takes the files of views whose mount this mount
/// namespace does not have: made in another namespace that has gone since, they were left
/// behind for good (unlinking one that another live namespace still mounts detaches it there,
/// as the kernel does for any unlinked mount point; views are meant for the host's namespace).
fn forget_unused_views() {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let dir = &protected_dir();
    let mounted: Vec<&std::path::Path> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(std::path::Path::new)
        .filter(|p| p.parent() == Some(dir))
        .collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with("berth-") {
            continue;
        }
        let unused = !mounted.contains(&path.as_path())
            || nix::mount::umount2(&path, nix::mount::MntFlags::empty()).is_ok();
        if unused {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Opens `path` if it is a read-only mount showing the file `meta` describes, and keeps it open
/// (close-on-exec) for the rest of this process: the view cannot be removed while this process
/// may still execute it (an exec replaces the process, and from then on the view is its
/// binary). Checked on the open file, so the view seen is the view held.
fn pin_view(path: &std::path::Path, meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    static PINNED: std::sync::OnceLock<std::fs::File> = std::sync::OnceLock::new();
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(here) = file.metadata() else {
        return false;
    };
    let ro = nix::sys::statvfs::fstatvfs(&file)
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false);
    if !(ro && here.ino() == meta.ino() && here.dev() == meta.dev()) {
        return false;
    }
    // A second call finds the view the first one pinned: one open file is enough.
    let _ = PINNED.set(file);
    true
}

/// Re-executes this process from [`protected_exe`] with the same arguments and environment,
/// or, if that view cannot be made, from a sealed memfd copy. Returns only on error.
pub fn reexec_protected() -> io::Error {
    use std::os::unix::process::CommandExt;
    match protected_exe() {
        Ok(path) => {
            let mut args = std::env::args_os();
            let arg0 = args.next().unwrap_or_default();
            // exec returns only on failure (e.g. the view was just removed): seal instead.
            let _ = std::process::Command::new(path)
                .arg0(arg0)
                .args(args)
                .exec();
            reexec_sealed()
        }
        Err(_) => reexec_sealed(),
    }
}
