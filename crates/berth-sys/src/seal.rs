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
