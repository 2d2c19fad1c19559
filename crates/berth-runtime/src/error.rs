//! Runtime errors: each names the step, the object and the OS error, in one line for people.
//! That line is the whole story: no variant also hands its cause out as `source()`, or a caller
//! printing the chain (anyhow's `{:#}`) would show the OS error twice.

use std::io;
use std::path::PathBuf;

/// Everything `berth-runtime` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file operation on the host side.
    #[error("{step} {}: {cause}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        cause: io::Error,
    },
    /// A syscall on the host side that has no path.
    #[error("{step}: {cause}")]
    Sys {
        step: &'static str,
        cause: io::Error,
    },
    /// The bundle's config.json is not one berth can run; the text says what and how to fix it.
    #[error("invalid config: {0}")]
    Config(String),
    /// A console socket missing where the process has a terminal, or given where it has
    /// none: runc's words, and what to do.
    #[error("{0}")]
    Console(&'static str),
    #[error("container id {0:?} is not valid: use letters, digits, '_', '-', '.' (at most 1024)")]
    BadId(String),
    // runc's words first where callers match the text: containerd's shim takes "does not
    // exist" and "container not running" from kill as "already gone", podman "does not exist"
    // from state; "container with given ID already exists" is runc's create error.
    #[error("container with given ID already exists: {0:?}")]
    Exists(String),
    #[error("container {0:?} does not exist")]
    NotFound(String),
    /// A signal for the init of a container that has stopped (kill without --all).
    #[error("container not running: {0:?} has stopped, there is no process to signal")]
    NotRunning(String),
    /// An operation that the container's status does not allow: `what` in runc's words
    /// ("container not running", "cannot start a container that has stopped"...).
    #[error("{what}: container {id:?} is {status}")]
    Status {
        id: String,
        status: crate::state::Status,
        what: &'static str,
    },
    /// The container's init process failed at a named step, reported over the init protocol.
    #[error("{0}")]
    Init(String),
    /// The container's executable could not be run: `kind` tells missing (Docker's exit code
    /// 127) from not executable (126).
    #[error("{message}")]
    Exec {
        kind: ExecErrorKind,
        message: String,
    },
    /// The process that enters the container must run from a protected binary (protect.rs):
    /// the caller re-executes itself from one; nothing was created yet.
    #[error("re-execute from a protected copy of the binary first: {0}")]
    NeedsProtectedBinary(String),
    #[error("hook {path}: {reason}")]
    Hook { path: String, reason: String },
    /// checkpoint or restore: CRIU, or runc's checks before it, in runc's words.
    #[error("{0}")]
    Criu(String),
    #[error("{0}")]
    Cgroup(berth_cgroups::CgroupError),
    /// Processes that a SIGKILL to the whole cgroup did not end in time (in uninterruptible
    /// sleep on a hung mount, say): the cgroup is left to remove once they are gone.
    #[error("cgroup {path} still has processes {pids:?} after SIGKILL: they did not exit")]
    CgroupNotEmpty { path: String, pids: Vec<i32> },
    #[error("{0}")]
    Seccomp(crate::seccomp::SeccompError),
    #[error("{0}")]
    Capability(crate::capabilities::CapabilityError),
    /// Best-effort teardown that met several errors: all of them, in order.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Many(Vec<Error>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

// By hand rather than `#[from]`, which would make the wrapped error `source()` too: these
// errors already print their own causes.
impl From<berth_cgroups::CgroupError> for Error {
    fn from(e: berth_cgroups::CgroupError) -> Self {
        Self::Cgroup(e)
    }
}

impl From<crate::seccomp::SeccompError> for Error {
    fn from(e: crate::seccomp::SeccompError) -> Self {
        Self::Seccomp(e)
    }
}

impl From<crate::capabilities::CapabilityError> for Error {
    fn from(e: crate::capabilities::CapabilityError) -> Self {
        Self::Capability(e)
    }
}

/// Why the container's executable could not be run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExecErrorKind {
    /// No such file, or not in `$PATH`.
    NotFound,
    /// Found, but not an executable regular file (or execve said EACCES/ENOEXEC).
    NotExecutable,
    Other,
}

impl ExecErrorKind {
    /// The exit status Docker and shells give this failure.
    pub fn exit_code(self) -> i32 {
        match self {
            Self::NotFound => 127,
            Self::NotExecutable | Self::Other => 126,
        }
    }

    /// The kind of an execve(2) errno.
    pub fn of_errno(errno: nix::errno::Errno) -> Self {
        use nix::errno::Errno;
        match errno {
            Errno::ENOENT | Errno::ENOTDIR => Self::NotFound,
            Errno::EACCES | Errno::ENOEXEC | Errno::EISDIR | Errno::EPERM => Self::NotExecutable,
            _ => Self::Other,
        }
    }
}

impl Error {
    /// The error a `Failed` message of the init protocol stands for.
    pub fn from_init(step: &str, error: &str, exec: Option<ExecErrorKind>) -> Self {
        let message = format!("{step}: {error}");
        match exec {
            Some(kind) => Self::Exec { kind, message },
            None => Self::Init(message),
        }
    }
}

/// Adds a step and a path to an `io::Result`.
pub trait IoContext<T> {
    fn at(self, step: &'static str, path: impl Into<PathBuf>) -> Result<T>;
    fn during(self, step: &'static str) -> Result<T>;
}

impl<T, E: Into<io::Error>> IoContext<T> for std::result::Result<T, E> {
    fn at(self, step: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::Io {
            step,
            path: path.into(),
            cause: e.into(),
        })
    }
    fn during(self, step: &'static str) -> Result<T> {
        self.map_err(|e| Error::Sys {
            step,
            cause: e.into(),
        })
    }
}
