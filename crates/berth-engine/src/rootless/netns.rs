//! User networks of rootless berth, as rootless podman has them: one network namespace per
//! user, owned by the rootless user namespace and held by a bind mount at `<run dir>/netns` in
//! the rootless mount namespace (as `ip netns add` holds one), with a slirp4netns of its own
//! for outbound traffic. The networks' bridges, the containers' veths, berth's nftables table
//! and the DNS servers all live there.
//!
//! A berth process never enters it: it could not come back to the host's network namespace
//! (the host's user namespace owns it), which the registry client, slirp4netns and the default
//! network need. The store's work runs in a forked child that joins it ([`run`]), from a
//! single-threaded process only (ARCHITECTURE principle 6); its answer comes back as JSON.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, Result};

/// Set in the forked child that joined the namespace: the work there runs in place.
static INSIDE: AtomicBool = AtomicBool::new(false);

/// nsfs' magic (linux/magic.h): a path holding a namespace is a mount of it.
const NSFS_MAGIC: u64 = 0x6e73_6673;

/// The bind mount holding the user networks' namespace.
pub fn path() -> PathBuf {
    berth_sys::rootless::run_dir().join("netns")
}

/// True where the store's plumbing must go through [`run`]: rootless berth outside the user
/// networks' namespace.
pub fn elsewhere() -> bool {
    berth_sys::rootless::is_rootless() && !INSIDE.load(Ordering::Relaxed)
}

/// Runs `work` in the user networks' namespace (made first if need be): in place for root's
/// berth or inside already, else in a forked child that joins it. The child's error comes
/// back as its message.
pub fn run<T: Serialize + DeserializeOwned>(work: impl FnOnce() -> Result<T>) -> Result<T> {
    if !elsewhere() {
        return work();
    }
    let netns = ensure()?;
    let (from_child, to_parent) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("pipe for", path())(e.into()))?;
    let forked = berth_sys::process::fork().map_err(Error::io("fork to join", path()))?;
    match forked {
        berth_sys::process::Forked::Child => {
            drop(from_child);
            INSIDE.store(true, Ordering::Relaxed);
            let answer: std::result::Result<T, String> =
                berth_sys::ns::setns(netns.as_fd(), berth_sys::ns::CLONE_NEWNET)
                    .map_err(|e| format!("rootless: setns into {}: {e}", path().display()))
                    .and_then(|()| work().map_err(|e| e.to_string()));
            let code = i32::from(serde_json::to_writer(File::from(to_parent), &answer).is_err());
            berth_sys::process::exit_now(code);
        }
        berth_sys::process::Forked::Parent(child) => {
            drop(to_parent);
            let mut text = String::new();
            let read = File::from(from_child).read_to_string(&mut text);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
            read.map_err(Error::io("read the answer from", path()))?;
            match serde_json::from_str::<std::result::Result<T, String>>(&text) {
                Ok(answer) => answer.map_err(Error::Invalid),
                Err(_) => Err(Error::Invalid(format!(
                    "rootless: the work in the user networks' namespace {} ended without an answer",
                    path().display()
                ))),
            }
        }
    }
}

/// The namespace, opened; made (under a lock) with its slirp4netns when no mount holds it: at
/// the first user network, or after the pause process (and its mount namespace) ended.
fn ensure() -> Result<File> {
    let path = path();
    let held = |p: &std::path::Path| {
        nix::sys::statfs::statfs(p).is_ok_and(|s| s.filesystem_type().0 as u64 == NSFS_MAGIC)
    };
    if !held(&path) {
        let dir = berth_sys::rootless::run_dir();
        let _lock = crate::records::lock(&dir.join("netns.lock"))?;
        if !held(&path) {
            make(&path)?;
            super::slirp::start_shared(&path)?;
        }
    }
    File::open(&path).map_err(Error::io("open", path))
}

/// A new network namespace, bind-mounted on `path` by a forked child that unshares it.
fn make(path: &std::path::Path) -> Result<()> {
    File::create(path).map_err(Error::io("create", path))?;
    let forked = berth_sys::process::fork().map_err(Error::io("fork to make", path))?;
    match forked {
        berth_sys::process::Forked::Child => {
            let made = berth_sys::ns::unshare(berth_sys::ns::CLONE_NEWNET).is_ok()
                && nix::mount::mount(
                    Some("/proc/self/ns/net"),
                    path,
                    None::<&str>,
                    nix::mount::MsFlags::MS_BIND,
                    None::<&str>,
                )
                .is_ok();
            berth_sys::process::exit_now(if made { 0 } else { 1 });
        }
        berth_sys::process::Forked::Parent(child) => {
            let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
            match status {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
                other => Err(Error::Invalid(format!(
                    "rootless: make the user networks' namespace: unshare(CLONE_NEWNET) and \
                     bind mount on {} failed ({other:?})",
                    path.display()
                ))),
            }
        }
    }
}
