//! The engine's errors: one line for people, naming what failed and what to do. Each carries
//! the Docker exit code the CLI returns for it (125 unless the container's command is at fault).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{step} {path}: {source}")]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("No such volume: {0}")]
    NoSuchVolume(String),
    #[error("No such exec instance: {0}")]
    NoSuchExec(String),
    /// A path a copy names is not in the container (Docker's words).
    #[error("Could not find the file {path} in container {container}")]
    NoSuchPath { path: String, container: String },
    #[error("{0}")]
    Invalid(String),
    /// A copy into a container started `--read-only`, outside its volumes (Docker's words).
    #[error("container rootfs is marked read-only")]
    RootfsReadOnly,
    /// A volume's options could not be mounted at start (Docker's words).
    #[error("error while mounting volume '{}': failed to mount local volume: {detail}", .path.display())]
    VolumeMount { path: PathBuf, detail: String },
    /// The object is in use or named twice (Docker's 409): `conflict: unable to delete...`.
    #[error("{0}")]
    Conflict(String),
    /// Refused whatever the caller does (Docker's 403): removing a predefined network.
    #[error("{0}")]
    Forbidden(String),
    /// record.json cannot be read back: `rm -f` still removes what the system holds for the id.
    #[error("{path}: corrupt record: {reason}: remove the container with rm -f")]
    CorruptRecord {
        id: String,
        path: PathBuf,
        reason: String,
    },
    #[error("container {id}: {what}")]
    State { id: String, what: String },
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error(transparent)]
    Net(#[from] berth_net::NetError),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::Error),
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    /// The container's command cannot run: 127 not found, 126 not executable (Docker's codes).
    #[error("{message}")]
    Command { code: u8, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The status the monitor's protocol carries for this error: 125 for the engine's own.
    pub fn exit_code(&self) -> u8 {
        self.command_code().unwrap_or(125)
    }

    /// The exit status of a command run in a container that failed to start (126, 127...),
    /// which the front end returns as is; `None` for the engine's own errors.
    pub fn command_code(&self) -> Option<u8> {
        match self {
            Error::Command { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn io(
        step: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { step, path, source }
    }

    pub fn state(id: &str, what: impl Into<String>) -> Error {
        Error::State {
            id: short(id).to_string(),
            what: what.into(),
        }
    }
}

/// The 12-digit short id Docker prints.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
