//! The crate's error type: one variant per step, each naming the file or path and the OS error.

use std::fmt;
use std::io;
use std::path::PathBuf;

pub type Result<T, E = CgroupError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("detect cgroup setup: statfs {path}: {source}", path = path.display())]
    Statfs { path: PathBuf, source: io::Error },

    #[error("detect cgroup setup: {} is neither a cgroup2 mount nor a tmpfs of v1 hierarchies", path.display())]
    UnknownSetup { path: PathBuf },

    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },

    #[error("create cgroup {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },

    #[error("write {value:?} to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },

    #[error(
        "write {value:?} to {}: no such file (controller not enabled or not supported by this kernel)",
        path.display()
    )]
    MissingFile { path: PathBuf, value: String },

    #[error("read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("parse {}: unexpected content {content:?}", path.display())]
    Parse { path: PathBuf, content: String },

    #[error("{what} needs the {controller} controller, which is not mounted under {}", root.display())]
    MissingController {
        controller: &'static str,
        what: &'static str,
        root: PathBuf,
    },

    #[error("{what} is not supported on cgroup {version}")]
    Unsupported {
        what: &'static str,
        version: &'static str,
    },

    #[error("invalid {what}: {reason}")]
    InvalidResource { what: &'static str, reason: String },

    #[error("invalid device rule {rule:?}: {reason}")]
    InvalidDeviceRule { rule: String, reason: &'static str },

    #[error("open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },

    #[error("{step} device BPF program on {}: {source}", path.display())]
    Bpf {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },

    /// runc's words, which callers match.
    #[error(
        "container's cgroup unexpectedly frozen ({}): thaw it, or give another cgroup",
        path.display()
    )]
    Frozen { path: PathBuf },

    #[error("{step} {}: still not {want} after {waited_ms} ms", path.display())]
    FreezeTimeout {
        step: &'static str,
        path: PathBuf,
        want: &'static str,
        waited_ms: u128,
    },

    #[error("send {signal} to pid {pid} of {}: {source}", path.display())]
    Signal {
        signal: berth_sys::signal::SignalNumber,
        pid: i32,
        path: PathBuf,
        source: nix::Error,
    },

    #[error("remove cgroup {}: {source}", path.display())]
    Remove { path: PathBuf, source: io::Error },

    #[error("{}", Teardown(.0))]
    Teardown(Vec<CgroupError>),
}

/// Displays every collected teardown error on one line, so none is lost.
struct Teardown<'a>(&'a [CgroupError]);

impl fmt::Display for Teardown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "destroy cgroup: {} error(s): ", self.0.len())?;
        for (i, err) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{err}")?;
        }
        Ok(())
    }
}

/// Turns collected best-effort errors into one result.
pub(crate) fn collect(errors: Vec<CgroupError>) -> Result<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CgroupError::Teardown(errors))
    }
}
