//! `POST /containers/{id}/attach` and `/resize`: the container's streams over a hijacked
//! connection (now if it runs, from its next start otherwise: `docker run` attaches first),
//! with the past log first when `logs` is asked; its terminal's size.

use std::sync::Arc;
use std::time::Duration;

use berth_engine::attach::{self, AttachOptions, Attached, DetachKeys};
use berth_engine::logs::{self, LogOptions};

use super::hijack::{self, Source, Stream};
use super::State;
use crate::error::ApiError;
use crate::respond::{self, Reply};
use crate::router::Call;

pub async fn attach(state: &Arc<State>, call: &mut Call, id: &str) -> Reply {
    let q = &call.query;
    let options = AttachOptions {
        stdin: q.flag("stdin"),
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        wait: true,
        size: None,
    };
    let (live, past) = (q.flag("stream"), q.flag("logs"));
    let keys = q.get("detachKeys").unwrap_or("").to_string();
    let detach = DetachKeys::parse(&keys).map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid detach keys ({keys}) provided: use ctrl-<key> or single characters, comma-separated"
        ))
    })?;
    let key = id.to_string();
    let (tty, stdin, prelude, source) = state
        .blocking(move |s| {
            let record = s.engine.containers.find(&key)?;
            let tty = record.request.tty;
            let prelude = if past {
                past_log(s, &key, tty, &options)?
            } else {
                Vec::new()
            };
            if !live {
                return Ok((tty, false, prelude, Source::Nothing));
            }
            let (record, attached) = attach::attach_or_wait(&s.engine, &key, &options)?;
            let source = match attached {
                Attached::Now(session) => Source::Now(session),
                Attached::Pending(pending) => Source::Pending {
                    pending,
                    container: record.id.clone(),
                },
            };
            let stdin = options.stdin && record.request.interactive;
            Ok((tty, stdin, prelude, source))
        })
        .await?;
    let stream = Stream {
        source,
        tty,
        stdin,
        // As Docker: the keys are looked for on a terminal only.
        detach: (tty && stdin).then_some(detach),
        prelude,
    };
    hijack::hijack(state, call, stream)
}

/// What the container logged so far, of the streams asked for, encoded for the connection.
fn past_log(s: &State, key: &str, tty: bool, options: &AttachOptions) -> Result<Vec<u8>, ApiError> {
    let mut log = logs::read(&s.engine, key, LogOptions::default())?;
    let mut out = Vec::new();
    while let Some(entries) = log.next(&s.engine, Duration::ZERO)? {
        for e in &entries {
            let wanted = if e.stream == "stderr" {
                options.stderr
            } else {
                options.stdout
            };
            if wanted {
                super::logs::encode(e, tty, e.shown(false, false), &mut out);
            }
        }
    }
    Ok(out)
}

/// `POST /containers/{id}/resize?h=&w=`.
pub async fn resize(state: &Arc<State>, call: &Call, id: &str) -> Reply {
    let (rows, cols) = super::size(call)?;
    let key = id.to_string();
    state
        .blocking(move |s| Ok(attach::resize(&s.engine, &key, rows, cols)?))
        .await?;
    respond::status(200)
}
