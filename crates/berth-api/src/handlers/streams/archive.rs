//! `/containers/{id}/archive`: HEAD (the stat of a path, in `X-Docker-Container-Path-Stat`),
//! GET (the path as a tar stream, with that header) and PUT (a tar body extracted into a
//! directory), over the engine's copy, which keeps every path inside the container's root.

use std::io::{self, Write};
use std::sync::Arc;

use base64::Engine as _;
use berth_engine::copy::{self, ExtractOptions, PathStat};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::State;
use crate::error::ApiError;
use crate::handlers::images::stream::BodyReader;
use crate::respond::{self, Reply};
use crate::router::Call;

/// The header's name, as Docker's clients read it.
const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

fn path(call: &Call) -> Result<String, ApiError> {
    match call.query.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::bad_request(
            "Path cannot be empty: give the path in the container as ?path=",
        )),
    }
}

fn stat_header(stat: &PathStat) -> Result<String, ApiError> {
    let json = serde_json::to_vec(stat).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(json))
}

/// `HEAD`: the stat alone.
pub async fn head(state: &Arc<State>, call: &Call, id: &str) -> Reply {
    let (key, path) = (id.to_string(), path(call)?);
    let stat = state
        .blocking(move |s| Ok(copy::open_root(&s.engine, &key)?.stat(&path)?))
        .await?;
    Ok(respond::builder(200)
        .header(STAT_HEADER, stat_header(&stat)?)
        .body(respond::empty())
        .expect("static headers are valid"))
}

/// `GET`: the stat, then the tar stream, produced on a blocking thread as the client reads it
/// (a stopped container's root stays mounted until the stream ends or the client is gone).
pub async fn get(state: &Arc<State>, call: &Call, id: &str) -> Reply {
    let (key, path) = (id.to_string(), path(call)?);
    let (root, stat, path) = state
        .blocking(move |s| {
            let root = copy::open_root(&s.engine, &key)?;
            let stat = root.stat(&path)?;
            Ok((root, stat, path))
        })
        .await?;
    let header = stat_header(&stat)?;
    let (tx, body) = respond::channel();
    tokio::task::spawn_blocking(move || {
        // A failure half-way can only cut the stream short: the client sees a truncated tar.
        let mut out = io::BufWriter::with_capacity(64 << 10, ChannelWriter(tx));
        if root.archive(&path, &mut out).is_ok() {
            let _ = out.flush();
        }
    });
    Ok(respond::builder(200)
        .header("Content-Type", "application/x-tar")
        .header(STAT_HEADER, header)
        .body(body)
        .expect("static headers are valid"))
}

/// `PUT`: the body, a tar stream, extracted into the directory `path` as it arrives.
pub async fn put(state: &Arc<State>, call: &mut Call, id: &str) -> Reply {
    let (key, path) = (id.to_string(), path(call)?);
    let options = ExtractOptions {
        no_overwrite_dir_non_dir: call.query.flag("noOverwriteDirNonDir"),
        copy_uid_gid: call.query.flag("copyUIDGID"),
        userns: None,
    };
    let Some(body) = call.take_body() else {
        return Err(ApiError::bad_request("no archive in the request's body"));
    };
    let input = BodyReader::new(Some(body));
    state
        .blocking(move |s| Ok(copy::copy_to(&s.engine, &key, &path, input, &options)?))
        .await?;
    respond::status(200)
}

/// Writes into a streamed body; a gone client is a broken pipe.
struct ChannelWriter(mpsc::Sender<Bytes>);

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
