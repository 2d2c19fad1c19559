//! start, stop, restart, kill, pause and unpause, rename, remove and wait: each the engine's
//! verb, with Docker's statuses (304 for a start or stop with nothing to do).

use std::sync::Arc;

use berth_engine::attach::AttachOptions;
use berth_engine::lifecycle;
use berth_engine::records::Status;
use berth_engine::wait::{self, Condition};

use super::State;
use crate::error::ApiError;
use crate::respond::{self, Reply};
use crate::router::Call;

/// `POST /containers/{id}/start`: the container's monitor, started detached; 304 if it runs.
pub async fn start(state: &Arc<State>, key: String) -> Reply {
    let started = state
        .blocking(move |s| {
            let engine = &s.engine;
            let record = lifecycle::refresh(engine, engine.containers.find(&key)?)?;
            match record.state.status {
                Status::Paused => Err(ApiError::conflict(
                    "cannot start a paused container, try unpause instead",
                )),
                status if status.is_live() => Ok(false),
                _ => {
                    // The session is dropped at once: the monitor carries on detached.
                    lifecycle::start(engine, &record.id, &AttachOptions::default())?;
                    Ok(true)
                }
            }
        })
        .await?;
    respond::status(if started { 204 } else { 304 })
}

/// `t` (seconds before SIGKILL) and `signal`, as stop and restart take them.
fn stop_options(call: &Call) -> Result<(Option<i64>, Option<String>), ApiError> {
    let signal = call.query.get("signal").filter(|s| !s.is_empty());
    Ok((call.query.int("t")?, signal.map(String::from)))
}

/// `POST /containers/{id}/stop?t=&signal=`: 304 if it was not running.
pub async fn stop(state: &Arc<State>, key: String, call: &Call) -> Reply {
    let (timeout, signal) = stop_options(call)?;
    let stopped = state
        .blocking(move |s| {
            let engine = &s.engine;
            let record = lifecycle::refresh(engine, engine.containers.find(&key)?)?;
            if !record.state.status.is_live() {
                return Ok(false);
            }
            lifecycle::stop(engine, &record.id, timeout, signal.as_deref())?;
            Ok(true)
        })
        .await?;
    respond::status(if stopped { 204 } else { 304 })
}

/// `POST /containers/{id}/restart?t=&signal=`.
pub async fn restart(state: &Arc<State>, key: String, call: &Call) -> Reply {
    let (timeout, signal) = stop_options(call)?;
    state
        .blocking(move |s| {
            lifecycle::restart(&s.engine, &key, timeout, signal.as_deref())?;
            Ok(())
        })
        .await?;
    respond::status(204)
}

/// `POST /containers/{id}/kill?signal=` (SIGKILL by default).
pub async fn kill(state: &Arc<State>, key: String, call: &Call) -> Reply {
    let signal = match call.query.get("signal") {
        None | Some("") => "KILL".to_string(),
        Some(s) => s.to_string(),
    };
    state
        .blocking(move |s| {
            lifecycle::kill(&s.engine, &key, &signal).map_err(|e| {
                let e = ApiError::from(e);
                ApiError::new(
                    e.status,
                    format!("cannot kill container: {key}: {}", e.message),
                )
            })?;
            Ok(())
        })
        .await?;
    respond::status(204)
}

/// `POST /containers/{id}/pause` and `unpause`.
pub async fn pause(state: &Arc<State>, key: String, pause: bool) -> Reply {
    state
        .blocking(move |s| Ok(lifecycle::pause(&s.engine, &key, pause).map(drop)?))
        .await?;
    respond::status(204)
}

/// `POST /containers/{id}/rename?name=`.
pub async fn rename(state: &Arc<State>, key: String, call: &Call) -> Reply {
    let name = call.query.get("name").unwrap_or("").to_string();
    state
        .blocking(move |s| Ok(berth_engine::names::rename(&s.engine, &key, &name)?))
        .await?;
    respond::status(204)
}

/// `DELETE /containers/{id}?force=&v=`: 409 for a running container without `force`.
pub async fn remove(state: &Arc<State>, key: String, call: &Call) -> Reply {
    let (force, volumes) = (call.query.flag("force"), call.query.flag("v"));
    state
        .blocking(move |s| Ok(lifecycle::remove(&s.engine, &key, force, volumes)?))
        .await?;
    respond::status(204)
}

/// `POST /containers/{id}/wait?condition=`: the answer's head at once (the docker CLI starts
/// a container only once its wait is in place), `{"StatusCode", "Error"}` when the container
/// reaches the condition. A client that goes away ends the wait within a second: its thread
/// and its connection to the monitor with it.
pub async fn wait(state: &Arc<State>, key: String, call: &Call) -> Reply {
    let condition: Condition = call
        .query
        .get("condition")
        .unwrap_or("")
        .parse()
        .map_err(ApiError::from)?;
    // In place before the head is sent: an unknown container is a 404, not a 200, and a start
    // that follows the head at once (`docker run`) is seen, however short its run.
    let waiter = state
        .blocking(move |s| Ok(wait::Waiter::new(&s.engine, &key, condition)?))
        .await?;
    let (tx, body) = respond::channel();
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || {
        let gone = || tx.is_closed();
        let answer = match waiter.until(&state.engine, &gone) {
            Ok(Some(code)) => serde_json::json!({"StatusCode": code, "Error": null}),
            Ok(None) => return,
            Err(e) => serde_json::json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
        };
        let _ = tx.blocking_send(format!("{answer}\n").into());
    });
    Ok(respond::builder(200)
        .header("Content-Type", "application/json")
        .body(body)
        .expect("static headers are valid"))
}
