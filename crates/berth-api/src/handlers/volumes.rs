//! `/volumes`: list, create, inspect, remove and prune, over the engine's local-driver
//! volumes.

use std::collections::BTreeMap;
use std::ops::ControlFlow::{Break, Continue};
use std::sync::Arc;

use berth_engine::filters::Filters;
use berth_engine::volumes;
use serde::Deserialize;
use serde_json::json;

use super::{Routed, State};
use crate::error::ApiError;
use crate::respond::{self, Reply};
use crate::router::Call;
use crate::version::ApiVersion;

pub async fn route(state: &Arc<State>, mut call: Call) -> Routed {
    let path: Vec<String> = call.segments.clone();
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    Break(match (call.method.as_str(), path.as_slice()) {
        ("GET", ["volumes"]) => list(state, &call).await,
        ("POST", ["volumes", "create"]) => create(state, &mut call).await,
        ("POST", ["volumes", "prune"]) => prune(state, &call).await,
        ("GET", ["volumes", name]) => inspect(state, name.to_string()).await,
        ("DELETE", ["volumes", name]) => remove(state, &call, name.to_string()).await,
        _ => return Continue(call),
    })
}

fn filter_pairs(call: &Call) -> Result<Vec<String>, ApiError> {
    Ok(crate::filters::Filters::of(&call.query)?.pairs())
}

/// `GET /volumes`: `{"Volumes": [...], "Warnings": []}`, with Docker's filters.
async fn list(state: &Arc<State>, call: &Call) -> Reply {
    let pairs = filter_pairs(call)?;
    let list = state
        .blocking(move |s| {
            let filters = Filters::parse(&pairs, volumes::LIST_FILTERS)?;
            Ok(volumes::list_filtered(&s.engine, &filters)?)
        })
        .await?;
    respond::json(200, &json!({"Volumes": list, "Warnings": []}))
}

/// Docker's VolumeCreateRequest; docker-py sends null for what it was not given.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct CreateBody {
    name: Option<String>,
    driver: Option<String>,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

/// `POST /volumes/create`: 201 with the volume (the existing one of that name, as Docker).
async fn create(state: &Arc<State>, call: &mut Call) -> Reply {
    let body: CreateBody = call.json().await?;
    if !matches!(body.driver.as_deref(), None | Some("" | "local")) {
        return Err(ApiError::bad_request(format!(
            "volume driver {:?}: berth has only the local driver",
            body.driver.unwrap_or_default()
        )));
    }
    let name = body.name.filter(|n| !n.is_empty());
    let labels = body.labels.unwrap_or_default();
    let options = body.driver_opts.unwrap_or_default();
    let volume = state
        .blocking(move |s| {
            Ok(volumes::create(
                &s.engine,
                name.as_deref(),
                labels,
                options,
            )?)
        })
        .await?;
    respond::json(201, &volume)
}

async fn inspect(state: &Arc<State>, name: String) -> Reply {
    let volume = state
        .blocking(move |s| Ok(volumes::inspect(&s.engine, &name)?))
        .await?;
    respond::json(200, &volume)
}

/// `DELETE /volumes/{name}?force=`: 204; 409 while a container refers to it.
async fn remove(state: &Arc<State>, call: &Call, name: String) -> Reply {
    let force = call.query.flag("force");
    state
        .blocking(move |s| Ok(volumes::remove(&s.engine, &name, force)?))
        .await?;
    respond::status(204)
}

/// `POST /volumes/prune?filters=`: unused anonymous volumes, every unused one with the
/// filter `all=true` or for a client older than API 1.42 (Docker's change).
async fn prune(state: &Arc<State>, call: &Call) -> Reply {
    let pairs = filter_pairs(call)?;
    let old_client = call.version < ApiVersion::new(1, 42);
    let (removed, freed) = state
        .blocking(move |s| {
            let filters = Filters::parse(&pairs, volumes::PRUNE_FILTERS)?;
            let all = old_client || filters.bool("all")? == Some(true);
            Ok(volumes::prune(&s.engine, all, &filters)?)
        })
        .await?;
    respond::json(
        200,
        &json!({"VolumesDeleted": removed, "SpaceReclaimed": freed}),
    )
}
