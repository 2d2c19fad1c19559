//! `GET /containers/{id}/logs`: the engine's reading of the container's log, each entry framed
//! by its stream (raw for a container with a terminal), `follow` streaming until the container
//! stops or the client goes away.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_engine::logs::{self, Entry, LogOptions};

use super::{frame, stream_type, State};
use crate::error::ApiError;
use crate::respond::{self, Reply};
use crate::router::Call;

pub async fn logs(state: &Arc<State>, call: &Call, id: &str) -> Reply {
    let (stdout, stderr) = (call.query.flag("stdout"), call.query.flag("stderr"));
    if !(stdout || stderr) {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let options = options(call)?;
    let timestamps = call.query.flag("timestamps");
    let details = call.query.flag("details");
    let key = id.to_string();
    let (tty, mut log) = state
        .blocking(move |s| {
            let record = s.engine.containers.find(&key)?;
            Ok((record.request.tty, logs::read(&s.engine, &key, options)?))
        })
        .await?;
    let (tx, body) = respond::channel();
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        // Ends with the log (a follow: once the container stopped), at an unreadable log, or
        // when the client is gone (a send fails, or the body was dropped while nothing came).
        while let Ok(Some(entries)) = log.next(&state.engine, Duration::from_secs(1)) {
            if entries.is_empty() && tx.is_closed() {
                return;
            }
            let mut chunk = Vec::new();
            for e in &entries {
                let wanted = if e.stream == "stderr" { stderr } else { stdout };
                if wanted {
                    encode(e, tty, e.shown(timestamps, details), &mut chunk);
                }
            }
            if !chunk.is_empty() && tx.blocking_send(chunk.into()).is_err() {
                return;
            }
        }
    });
    Ok(respond::builder(200)
        .header("Content-Type", stream_type(call, tty))
        .body(body)
        .expect("static headers are valid"))
}

/// `tail`, `since`, `until` and `follow` as Docker reads them: a tail that is not a number
/// (`all`) is the whole log; times are seconds since the epoch (`1700000000.000000000`, as the
/// CLI sends them), RFC 3339, or a duration before now.
fn options(call: &Call) -> Result<LogOptions, ApiError> {
    let now = SystemTime::now();
    let time = |key: &str| {
        call.query
            .get(key)
            .filter(|v| !v.is_empty())
            .map(|v| berth_engine::events::parse_time(v, now))
            .transpose()
            .map_err(|e| ApiError::bad_request(format!("invalid value for {key}: {e}")))
    };
    Ok(LogOptions {
        tail: call.query.get("tail").and_then(|t| t.parse().ok()),
        since: time("since")?,
        until: time("until")?,
        follow: call.query.flag("follow"),
    })
}

/// One entry's `text` (`Entry::shown`) as Docker sends it: framed without a terminal.
pub(super) fn encode(e: &Entry, tty: bool, text: String, out: &mut Vec<u8>) {
    if tty {
        out.extend_from_slice(text.as_bytes());
    } else {
        frame(
            if e.stream == "stderr" { 2 } else { 1 },
            text.as_bytes(),
            out,
        );
    }
}
