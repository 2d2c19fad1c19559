//! Exec: `POST /containers/{id}/exec` (create), `POST /exec/{id}/start` (detached, or its
//! streams over a hijacked connection; the exit code is then read by inspect), `POST
//! /exec/{id}/resize` and `GET /exec/{id}/json`, over the engine's exec, which the
//! container's monitor runs.

use std::sync::Arc;

use berth_engine::attach::DetachKeys;
use berth_engine::exec::{self, ExecConfig, ExecRecord};
use serde::{Deserialize, Serialize};

use super::hijack::{self, Source, Stream};
use super::State;
use crate::error::ApiError;
use crate::respond::{self, Reply};
use crate::router::Call;

/// Docker's ExecConfig (what it ignores, berth ignores).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecCreate {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    detach_keys: String,
    tty: bool,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    privileged: bool,
    user: String,
    working_dir: String,
}

pub async fn create(state: &Arc<State>, call: &mut Call, id: &str) -> Reply {
    let body: ExecCreate = call.json().await?;
    if body.cmd.as_ref().is_none_or(Vec::is_empty) {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let config = ExecConfig {
        cmd: body.cmd.unwrap_or_default(),
        env: body.env.unwrap_or_default(),
        workdir: Some(body.working_dir).filter(|w| !w.is_empty()),
        user: Some(body.user).filter(|u| !u.is_empty()),
        tty: body.tty,
        attach_stdin: body.attach_stdin,
        attach_stdout: body.attach_stdout,
        attach_stderr: body.attach_stderr,
        detach_keys: body.detach_keys,
        privileged: body.privileged,
    };
    let key = id.to_string();
    let record = state
        .blocking(move |s| Ok(exec::create(&s.engine, &key, config)?))
        .await?;
    respond::json(201, &serde_json::json!({ "Id": record.id }))
}

/// Docker's ExecStartCheck.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStart {
    detach: bool,
    /// `[rows, columns]` for the exec's terminal.
    console_size: Option<[u16; 2]>,
}

pub async fn start(state: &Arc<State>, call: &mut Call, id: &str) -> Reply {
    let body: ExecStart = call.json().await?;
    let exec_id = id.to_string();
    let size = body.console_size.map(|[rows, cols]| (rows, cols));
    if body.detach {
        state
            .blocking(move |s| Ok(exec::start(&s.engine, &exec_id, true, size).map(drop)?))
            .await?;
        return respond::status(200);
    }
    // As Docker: a missing exec is the answer's 404; anything else, once the connection is
    // switched, is the stream's (exec start in hijack.rs).
    let record = state
        .blocking(move |s| Ok(exec::inspect(&s.engine, &exec_id)?))
        .await?;
    let config = &record.config;
    let stream = Stream {
        source: Source::Exec {
            id: record.id.clone(),
            size,
        },
        tty: config.tty,
        stdin: config.attach_stdin,
        detach: (config.tty && config.attach_stdin)
            .then(|| DetachKeys::parse(&config.detach_keys).unwrap_or_default()),
        prelude: Vec::new(),
    };
    hijack::hijack(state, call, stream)
}

pub async fn resize(state: &Arc<State>, call: &Call, id: &str) -> Reply {
    let (rows, cols) = super::size(call)?;
    let exec_id = id.to_string();
    state
        .blocking(move |s| Ok(exec::resize(&s.engine, &exec_id, rows, cols)?))
        .await?;
    respond::status(200)
}

pub async fn inspect(state: &Arc<State>, id: &str) -> Reply {
    let exec_id = id.to_string();
    let record = state
        .blocking(move |s| Ok(exec::inspect(&s.engine, &exec_id)?))
        .await?;
    respond::json(200, &Inspect::from(&record))
}

/// Docker's ExecInspect.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    #[serde(rename = "ID")]
    id: String,
    running: bool,
    /// null until the process exited.
    exit_code: Option<i32>,
    process_config: ProcessConfig,
    open_stdin: bool,
    open_stderr: bool,
    open_stdout: bool,
    can_remove: bool,
    #[serde(rename = "ContainerID")]
    container_id: String,
    detach_keys: String,
    pid: i32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProcessConfig {
    tty: bool,
    entrypoint: String,
    arguments: Vec<String>,
    privileged: bool,
    user: String,
}

impl From<&ExecRecord> for Inspect {
    fn from(r: &ExecRecord) -> Self {
        let c = &r.config;
        let (entrypoint, arguments) = match c.cmd.split_first() {
            Some((first, rest)) => (first.clone(), rest.to_vec()),
            None => (String::new(), Vec::new()),
        };
        Inspect {
            id: r.id.clone(),
            running: r.running,
            exit_code: r.exit_code,
            process_config: ProcessConfig {
                tty: c.tty,
                entrypoint,
                arguments,
                privileged: false,
                user: c.user.clone().unwrap_or_default(),
            },
            open_stdin: c.attach_stdin,
            open_stderr: c.attach_stderr,
            open_stdout: c.attach_stdout,
            can_remove: false,
            container_id: r.container_id.clone(),
            detach_keys: c.detach_keys.clone(),
            pid: r.pid,
        }
    }
}
