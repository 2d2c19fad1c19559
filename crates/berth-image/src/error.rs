//! The one error type of berth-image: every variant names the step and the object it failed on.

use std::io;
use std::path::PathBuf;

/// What went wrong, with the step and the object (path, blob, URL, reference) it happened to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid reference format {input:?}: {reason}")]
    Reference { input: String, reason: &'static str },
    #[error("invalid digest {input:?}: {reason}")]
    Digest { input: String, reason: &'static str },
    #[error("invalid platform {input:?}: {reason}")]
    Platform { input: String, reason: &'static str },
    #[error("{step} {}: {source}", path.display())]
    Io {
        step: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{object}: digest mismatch (got {got})")]
    DigestMismatch { object: String, got: String },
    #[error("{object}: size mismatch (expected {expected} bytes, got {got})")]
    SizeMismatch {
        object: String,
        expected: u64,
        got: u64,
    },
    #[error("{object}: invalid JSON: {source}")]
    Json {
        object: String,
        source: serde_json::Error,
    },
    #[error("{object}: unsupported media type {media_type:?}")]
    UnsupportedMediaType { object: String, media_type: String },
    #[error("{object}: {reason}")]
    Invalid { object: String, reason: String },
    #[error("No such image: {0}")]
    NoSuchImage(String),
    #[error("{input}: ambiguous image ID prefix, matches {count} images; give more characters")]
    AmbiguousImage { input: String, count: usize },
    #[error(
        "no image for platform {wanted} (the image has: {available}); choose one with --platform"
    )]
    NoMatchingPlatform { wanted: String, available: String },
    #[error("unpack layer {layer}: entry {entry:?}: {reason}")]
    UnsafeEntry {
        layer: String,
        entry: String,
        reason: &'static str,
    },
    #[error("unpack layer {layer}: entry {entry:?}: {source}")]
    Unpack {
        layer: String,
        entry: String,
        source: io::Error,
    },
    #[error("Get \"{url}\": {}", transport_reason(url, source))]
    Transport {
        url: String,
        source: Box<ureq::Transport>,
    },
    #[error("{object}: read: {source}")]
    Read { object: String, source: io::Error },
    #[error("{url}: registry answered {status}{}", fmt_message(message))]
    Http {
        url: String,
        status: u16,
        message: String,
    },
    #[error(
        "{registry}: unauthorized{}; log in with `berth login {registry}`",
        fmt_message(message)
    )]
    Unauthorized { registry: String, message: String },
    #[error("{object}: not found in the registry")]
    NotFound { object: String },
    #[error("{registry}: cannot authenticate: {reason}")]
    Auth { registry: String, reason: String },
    #[error("{context}: {source}")]
    Context { context: String, source: Box<Error> },
    /// Whoever asked went away (see `Progress::cancelled`).
    #[error("cancelled")]
    Cancelled,
    #[error("no space left on device under {}; free space or use --root ({detail})", root.display())]
    NoSpace { root: PathBuf, detail: String },
}

/// Why a request never got an answer, in the words of Go's net package that Docker prints
/// (`dial tcp: lookup HOST: no such host`), without the URL ureq repeats in its own text.
fn transport_reason(url: &str, t: &ureq::Transport) -> String {
    use ureq::ErrorKind as K;
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(String::from))
        .unwrap_or_default();
    let port = url::Url::parse(url)
        .ok()
        .and_then(|u| u.port_or_known_default())
        .unwrap_or(443);
    let detail = std::error::Error::source(t)
        .map(ToString::to_string)
        .or_else(|| t.message().map(String::from))
        .unwrap_or_else(|| t.kind().to_string());
    match t.kind() {
        K::Dns => format!("dial tcp: lookup {host}: no such host"),
        K::ConnectionFailed => format!("dial tcp {host}:{port}: {detail}"),
        _ => detail,
    }
}

fn fmt_message(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(" ({message})")
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error of `step` on `path`.
    pub fn io(step: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { step, path, source }
    }

    /// Whether retrying the same request may succeed (network trouble, a 5xx, a truncated body).
    pub fn is_transient(&self) -> bool {
        if self.is_no_space() {
            return false;
        }
        match self {
            Error::Transport { .. } => true,
            // InvalidData: the registry sent more than the manifest declares; no retry helps.
            Error::Read { source, .. } => source.kind() != io::ErrorKind::InvalidData,
            Error::Http { status, .. } => *status >= 500 || *status == 429,
            Error::Context { source, .. } => source.is_transient(),
            Error::Unpack { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::TimedOut
            ),
            _ => false,
        }
    }

    /// Whether a write failed because the file system is full (ENOSPC), at any depth.
    pub fn is_no_space(&self) -> bool {
        match self {
            Error::NoSpace { .. } => true,
            Error::Context { source, .. } => source.is_no_space(),
            Error::Io { source, .. }
            | Error::Read { source, .. }
            | Error::Unpack { source, .. } => io_no_space(source),
            _ => false,
        }
    }

    /// The innermost error, past every `Context` layer.
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root(),
            other => other,
        }
    }
}

/// ENOSPC, also when wrapped (tar and the pipes wrap the writer's error, keeping its kind).
fn io_no_space(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::StorageFull
        || e.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error())
    {
        return true;
    }
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<io::Error>());
    inner.is_some_and(io_no_space)
}

/// Prefixes an error with what was being done (`pull docker.io/library/busybox:latest`).
pub trait ResultExt<T> {
    fn context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn context<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T> {
        self.map_err(|source| Error::Context {
            context: context().into(),
            source: Box::new(source),
        })
    }
}
