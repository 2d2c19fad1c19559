//! The builder's errors: one line each, naming the Dockerfile line or the path at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Dockerfile that does not parse, or an instruction whose arguments are wrong.
    #[error("{file}:{line}: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{step} {}: {source}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A build that cannot go on: a missing stage, a bad flag value, a missing COPY source...
    #[error("{0}")]
    Invalid(String),
    /// A RUN step's command failed; its output was shown as it ran.
    #[error("process \"{command}\" did not complete successfully: exit code: {code}")]
    RunFailed { command: String, code: i32 },
    /// A signal (SIGINT, SIGTERM, SIGHUP) stopped the build; what it had made is removed.
    #[error("the build was cancelled")]
    Cancelled,
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error(transparent)]
    Engine(#[from] berth_engine::Error),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::Error),
    #[error(transparent)]
    Net(#[from] berth_net::NetError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(
        step: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { step, path, source }
    }
}
