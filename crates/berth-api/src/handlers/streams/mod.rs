//! The streaming endpoints: a container's logs, attach and resize, exec (create, start,
//! resize, inspect) and its files (archive). Logs are a streamed body; attach and exec start
//! hijack the connection (hijack.rs); archives are tar streams both ways.

mod archive;
mod attach;
mod exec;
mod hijack;
mod logs;

use std::ops::ControlFlow::{Break, Continue};
use std::sync::Arc;

use super::{Routed, State};
use crate::router::Call;

pub async fn route(state: &Arc<State>, mut call: Call) -> Routed {
    let segments = call.segments.clone();
    let path: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = call.method.clone();
    Break(match (method.as_str(), path.as_slice()) {
        ("GET", ["containers", id, "logs"]) => logs::logs(state, &call, id).await,
        ("POST", ["containers", id, "attach"]) => attach::attach(state, &mut call, id).await,
        ("GET", ["containers", _, "attach", "ws"]) => Err(crate::ApiError::not_implemented(
            "attaching over a websocket is not supported: use POST /containers/{id}/attach",
        )),
        ("POST", ["containers", id, "resize"]) => attach::resize(state, &call, id).await,
        ("POST", ["containers", id, "exec"]) => exec::create(state, &mut call, id).await,
        ("POST", ["exec", id, "start"]) => exec::start(state, &mut call, id).await,
        ("POST", ["exec", id, "resize"]) => exec::resize(state, &call, id).await,
        ("GET", ["exec", id, "json"]) => exec::inspect(state, id).await,
        ("HEAD", ["containers", id, "archive"]) => archive::head(state, &call, id).await,
        ("GET", ["containers", id, "archive"]) => archive::get(state, &call, id).await,
        ("PUT", ["containers", id, "archive"]) => archive::put(state, &mut call, id).await,
        _ => return Continue(call),
    })
}

/// A terminal size from the `h` and `w` parameters of a resize (Docker's 400 when they are
/// missing or not numbers).
fn size(call: &Call) -> Result<(u16, u16), crate::ApiError> {
    let dim = |key: &str| {
        call.query.int::<u16>(key)?.ok_or_else(|| {
            crate::ApiError::bad_request(format!(
                "invalid value for {key}: give the terminal's size as h=ROWS&w=COLUMNS"
            ))
        })
    };
    Ok((dim("h")?, dim("w")?))
}

/// Docker's stream framing (pkg/stdcopy) for a chunk of `stream` (1 stdout, 2 stderr) on a
/// connection without a terminal: 8 bytes (the stream, three zeros, the length big-endian),
/// then the bytes. The largest chunk the engine hands over is far below u32::MAX.
fn frame(stream: u8, data: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes();
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&len);
    out.extend_from_slice(data);
}

/// The media types of a stream body, as the API names them from 1.42 on (older clients are
/// told "raw" whatever the framing, as Docker tells them).
fn stream_type(call: &Call, tty: bool) -> &'static str {
    if !tty && call.version >= crate::version::ApiVersion::new(1, 42) {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    }
}
