//! `/containers/...`: the container lifecycle (create, start, stop, restart, kill, wait, pause,
//! unpause, rename, update, remove, prune), listing and inspection (list, inspect, top, stats,
//! changes, export), and commit. Attach, logs, exec and archives are routed by the streams' module.

mod body;
mod commit;
mod create;
mod lifecycle;
mod list;
mod stats;
mod update;

use std::ops::ControlFlow::{Break, Continue};
use std::sync::Arc;

use super::{Routed, State};
use crate::router::Call;

pub async fn route(state: &Arc<State>, mut call: Call) -> Routed {
    let segments = call.segments.clone();
    let path: Vec<&str> = segments.iter().map(String::as_str).collect();
    let id = |i: &str| i.to_string();
    Break(match (call.method.as_str(), path.as_slice()) {
        ("POST", ["containers", "create"]) => create::create(state, &mut call).await,
        ("GET", ["containers", "json"]) => list::list(state, &call).await,
        ("POST", ["containers", "prune"]) => update::prune(state, &call).await,
        ("GET", ["containers", c, "json"]) => list::inspect(state, id(c), &call).await,
        ("GET", ["containers", c, "top"]) => stats::top(state, id(c), &call).await,
        ("GET", ["containers", c, "stats"]) => stats::stats(state, id(c), &call).await,
        ("GET", ["containers", c, "changes"]) => commit::changes(state, id(c)).await,
        ("POST", ["commit"]) => commit::commit(state, &mut call).await,
        ("GET", ["containers", c, "export"]) => list::export(state, id(c)).await,
        ("POST", ["containers", c, "start"]) => lifecycle::start(state, id(c)).await,
        ("POST", ["containers", c, "stop"]) => lifecycle::stop(state, id(c), &call).await,
        ("POST", ["containers", c, "restart"]) => lifecycle::restart(state, id(c), &call).await,
        ("POST", ["containers", c, "kill"]) => lifecycle::kill(state, id(c), &call).await,
        ("POST", ["containers", c, "wait"]) => lifecycle::wait(state, id(c), &call).await,
        ("POST", ["containers", c, "pause"]) => lifecycle::pause(state, id(c), true).await,
        ("POST", ["containers", c, "unpause"]) => lifecycle::pause(state, id(c), false).await,
        ("POST", ["containers", c, "rename"]) => lifecycle::rename(state, id(c), &call).await,
        ("POST", ["containers", c, "update"]) => update::update(state, id(c), &mut call).await,
        ("DELETE", ["containers", c]) => lifecycle::remove(state, id(c), &call).await,
        _ => return Continue(call),
    })
}
