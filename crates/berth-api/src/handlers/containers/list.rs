//! `GET /containers/json` (Docker's container summaries), `GET /containers/{id}/json` (the
//! engine's inspect) and `export`.

use std::io::Write;
use std::sync::Arc;

use berth_engine::records::Record;
use berth_engine::{inspect, lifecycle, ps, Engine};
use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::mpsc::Sender;

use super::State;
use crate::filters::Filters;
use crate::respond::{self, Reply};
use crate::router::Call;
use crate::version::ApiVersion;

/// `GET /containers/json?all=&limit=&size=&filters=`: newest first, as the engine's `ps` lists
/// them (with the pre-1.22 `since` and `before` parameters as filters).
pub async fn list(state: &Arc<State>, call: &Call) -> Reply {
    let mut filters = Filters::of(&call.query)?.pairs();
    for key in ["since", "before"] {
        if let Some(v) = call.query.get(key).filter(|v| !v.is_empty()) {
            filters.push(format!("{key}={v}"));
        }
    }
    let options = ps::Options {
        all: call.query.flag("all"),
        limit: call
            .query
            .int::<i64>("limit")?
            .filter(|n| *n > 0)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        filters,
    };
    let size = call.query.flag("size");
    let summaries = state
        .blocking(move |s| {
            let listing = ps::list(&s.engine, &options)?;
            Ok(listing
                .records
                .iter()
                .map(|r| summary(&s.engine, r, size))
                .collect::<Vec<_>>())
        })
        .await?;
    respond::json(200, &summaries)
}

/// Docker's `ContainerSummary`, from the same inspect the engine gives for the container.
fn summary(engine: &Engine, r: &Record, size: bool) -> Value {
    let full = inspect::container(engine, r);
    let command = ps::command(engine, r);
    let created = humantime::parse_rfc3339_weak(&r.created)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let ports = berth_engine::ports::summaries(r);
    let mut v = json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": r.image,
        "ImageID": r.image_id,
        "Command": command,
        "Created": created,
        "Ports": ports,
        "Labels": full["Config"]["Labels"],
        "State": r.state.status.as_str(),
        "Status": ps::status_text(r),
        "HostConfig": {"NetworkMode": full["HostConfig"]["NetworkMode"]},
        "NetworkSettings": {"Networks": full["NetworkSettings"]["Networks"]},
        "Mounts": full["Mounts"],
    });
    if size {
        let (rw, root) = inspect::sizes(engine, r);
        v["SizeRw"] = rw.into();
        v["SizeRootFs"] = root.into();
    }
    v
}

/// `GET /containers/{id}/json?size=`: the engine's inspect, as `berth inspect` prints it
/// (with the older versions' aliases).
pub async fn inspect(state: &Arc<State>, key: String, call: &Call) -> Reply {
    let size = call.query.flag("size");
    let version = call.version;
    let value = state
        .blocking(move |s| {
            let engine = &s.engine;
            let record = lifecycle::refresh(engine, engine.containers.find(&key)?)?;
            let mut v = inspect::container(engine, &record);
            if size {
                let (rw, root) = inspect::sizes(engine, &record);
                v["SizeRw"] = rw.into();
                v["SizeRootFs"] = root.into();
            }
            if version < ApiVersion::new(1, 45) {
                legacy_aliases(&mut v);
            }
            Ok(v)
        })
        .await?;
    respond::json(200, &value)
}

/// Before API 1.45, Docker listed a container's short id and hostname among its aliases on
/// every user network: compose 1.29 looks for the short id there, and without it disconnects
/// and reconnects the container to each network before every start.
fn legacy_aliases(v: &mut Value) {
    let id = v["Id"].as_str().unwrap_or_default();
    let short = id.get(..12).unwrap_or(id).to_string();
    let hostname = v["Config"]["Hostname"].clone();
    let Some(networks) = v["NetworkSettings"]["Networks"].as_object_mut() else {
        return;
    };
    for (name, endpoint) in networks {
        if matches!(name.as_str(), "bridge" | "host" | "none" | "default") {
            continue;
        }
        let mut aliases = endpoint["Aliases"].as_array().cloned().unwrap_or_default();
        for extra in [Value::from(short.as_str()), hostname.clone()] {
            if extra.as_str().is_some_and(|s| !s.is_empty()) && !aliases.contains(&extra) {
                aliases.push(extra);
            }
        }
        endpoint["Aliases"] = Value::Array(aliases);
    }
}
/// `GET /containers/{id}/export`: the container's filesystem as a tar stream. A client that
/// goes away stops the archive (and unmounts a stopped container's root).
pub async fn export(state: &Arc<State>, key: String) -> Reply {
    // Found before the head is sent: an unknown container is a 404.
    let id = state
        .blocking(move |s| Ok(s.engine.containers.find(&key)?.id))
        .await?;
    let (tx, body) = respond::channel();
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let mut out = Chunks::new(tx);
        // Once the head is sent, an error can only cut the archive short.
        if berth_engine::export::export(&state.engine, &id, &mut out).is_ok() {
            let _ = out.flush();
        }
    });
    Ok(respond::builder(200)
        .header("Content-Type", "application/x-tar")
        .body(body)
        .expect("static headers are valid"))
}

/// A writer into a streamed body, in chunks of 64 KiB; a write fails once the client is gone.
struct Chunks {
    tx: Sender<Bytes>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 << 10;

impl Chunks {
    fn new(tx: Sender<Bytes>) -> Chunks {
        Chunks {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }
}

impl Write for Chunks {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::ErrorKind::BrokenPipe.into())
    }
}
