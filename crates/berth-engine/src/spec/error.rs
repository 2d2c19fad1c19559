//! Why a container's config.json could not be built: one line for people, naming the flag and
//! what to do about it.

use std::io;
use std::path::PathBuf;

/// An error of [`super::build`] and its helpers. Every message names the option that caused it.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(
        "no command specified: give one after the image name, or use --entrypoint, or an image \
         with a Cmd or Entrypoint"
    )]
    NoCommand,
    #[error("unable to find user {name}: no matching entries in passwd file")]
    UnknownUser { name: String },
    #[error("unable to find group {name}: no matching entries in group file")]
    UnknownGroup { name: String },
    #[error("reading {path} inside the container's root (openat2 RESOLVE_IN_ROOT): {source}")]
    ReadInRoot {
        path: &'static str,
        source: io::Error,
    },
    #[error("opening the container's root {path} (open): {source}; is it mounted?")]
    OpenRoot { path: PathBuf, source: io::Error },
    #[error("{flag}: {path}: {source}; give an existing device node")]
    Device {
        flag: String,
        path: String,
        source: io::Error,
    },
    #[error(
        "--ulimit {name}={soft}:{hard}: above the host's hard limit {host}; lower it (berth \
         cannot raise limits without CAP_SYS_RESOURCE)"
    )]
    UlimitAboveHost {
        name: String,
        soft: u64,
        hard: u64,
        host: u64,
    },
    #[error("--sysctl {key}: {reason}")]
    Sysctl { key: String, reason: String },
    #[error(
        "{kind} namespace of container {container}: the engine gave no path to join (joins has \
         no {kind:?}); this is a bug in berth"
    )]
    MissingJoin { kind: String, container: String },
    #[error("building the spec's {what}: {source}; this is a bug in berth")]
    Oci {
        what: &'static str,
        source: oci_spec::OciSpecError,
    },
    /// Any other option whose value cannot be used: the flag as typed and what to do.
    #[error("{flag}: {reason}")]
    Invalid { flag: String, reason: String },
}

impl SpecError {
    pub(crate) fn invalid(flag: impl Into<String>, reason: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            flag: flag.into(),
            reason: reason.into(),
        }
    }
}
