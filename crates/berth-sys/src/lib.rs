//! berth-sys: the one crate of berth allowed to use `unsafe`.
//!
//! Each module wraps one family of syscalls, returns `OwnedFd`s and `io::Result`s, and carries no
//! policy: what to mount, which namespaces to create or which fds to keep is decided by callers.
//! Every `unsafe` block has a `// SAFETY:` comment saying why it is sound.

pub mod bpf;
