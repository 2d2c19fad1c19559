//! berth-sys: the one crate of berth allowed to use `unsafe`.
//!
//! Each module wraps one family of syscalls that neither std nor nix wraps safely, returns
//! `OwnedFd`s and `io::Result`s, and carries no policy: what to mount, which namespaces to
//! create or which fds to keep is decided by callers. Safe wrappers that nix already provides
//! (mount, pivot_root, sethostname, sendmsg, prctl, ...) are used from nix directly.
//! Every `unsafe` block has a `// SAFETY:` comment saying why it is sound. One module is safe
//! code that std lacks: `file`, whole small files read without std's size probe.

pub mod bpf;
pub mod fd;
pub mod file;
pub mod keyring;
pub mod mount;
pub mod net;
pub mod ns;
pub mod process;
pub mod pty;
pub mod resolve;
pub mod rootless;
pub mod sched;
pub mod seal;
pub mod seccomp;
pub mod signal;
pub mod start;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
pub mod trampoline;
