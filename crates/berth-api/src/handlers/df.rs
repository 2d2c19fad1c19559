//! `GET /system/df`: what images, containers and volumes hold on disk, as the engine measures
//! it (the docker CLI draws `system df` from it).

use std::ops::ControlFlow::{Break, Continue};
use std::sync::Arc;

use super::{Routed, State};
use crate::respond;
use crate::router::Call;

pub async fn route(state: &Arc<State>, call: Call) -> Routed {
    if call.method != hyper::Method::GET || call.path() != ["system", "df"] {
        return Continue(call);
    }
    let usage = state.blocking(|s| Ok(berth_engine::df::disk_usage(&s.engine)?));
    Break(match usage.await {
        Ok(usage) => respond::json(200, &usage),
        Err(e) => Err(e),
    })
}
