//! `/images/...`: list, inspect, history, tag, remove and prune here; pulls,
//! pushes and imports in `transfer`, save and load in `archive`. A name may hold slashes and a
//! registry's port (`/images/localhost:5000/a/b:1/json`): the route is the last segment.

mod archive;
pub(super) mod stream;
mod transfer;

use std::ops::ControlFlow::{Break, Continue};
use std::sync::Arc;

use berth_engine::filters::Filters;
use berth_engine::images::{self, Removed};
use berth_image::inspect::{docker_config, docker_inspect};
use berth_image::Reference;
use serde_json::{json, Value};

use super::{Routed, State};
use crate::error::ApiError;
use crate::respond::{self, Reply};
use crate::router::Call;
use crate::version::ApiVersion;

pub async fn route(state: &Arc<State>, mut call: Call) -> Routed {
    let path: Vec<String> = call.segments.clone();
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let name = |parts: &[&str]| parts.join("/");
    Break(match (call.method.as_str(), path.as_slice()) {
        ("GET", ["images", "json"]) => list(state, &call).await,
        ("POST", ["images", "create"]) => transfer::create(state, &mut call).await,
        ("POST", ["images", "load"]) => archive::load(state, &mut call).await,
        ("GET", ["images", "get"]) => archive::save(state, call.query.all("names").to_vec()).await,
        ("POST", ["images", "prune"]) => prune(state, &call).await,
        ("GET", ["images", "search"]) => search(state, &call).await,
        ("GET", ["images", n @ .., "json"]) if !n.is_empty() => {
            inspect(state, name(n), call.version).await
        }
        ("GET", ["images", n @ .., "history"]) if !n.is_empty() => history(state, name(n)).await,
        ("GET", ["images", n @ .., "get"]) if !n.is_empty() => {
            archive::save(state, vec![name(n)]).await
        }
        ("POST", ["images", n @ .., "tag"]) if !n.is_empty() => tag(state, &call, name(n)).await,
        ("POST", ["images", n @ .., "push"]) if !n.is_empty() => {
            transfer::push(state, &call, name(n)).await
        }
        ("DELETE", ["images", n @ ..]) if !n.is_empty() => remove(state, &call, name(n)).await,
        _ => return Continue(call),
    })
}

/// `GET /images/json`: Docker's image summaries, with its filters (and the pre-1.13 `filter`,
/// a reference). Before API 1.43 an untagged image is listed as `<none>:<none>`, before 1.44
/// with `VirtualSize`.
async fn list(state: &Arc<State>, call: &Call) -> Reply {
    let mut pairs = crate::filters::Filters::of(&call.query)?.pairs();
    if let Some(reference) = call.query.get("filter").filter(|f| !f.is_empty()) {
        pairs.push(format!("reference={reference}"));
    }
    let version = call.version;
    let summaries = state
        .blocking(move |s| {
            let filters = Filters::parse(&pairs, images::LIST_FILTERS)?;
            Ok(images::list(&s.engine, &filters)?)
        })
        .await?;
    let mut out = Vec::with_capacity(summaries.len());
    for summary in summaries {
        let mut value = serde_json::to_value(&summary).map_err(internal)?;
        legacy_summary(&mut value, version);
        out.push(value);
    }
    respond::json(200, &out)
}

/// The fields older clients read.
fn legacy_summary(value: &mut Value, version: ApiVersion) {
    let untagged = |v: &Value, key| v[key].as_array().is_none_or(Vec::is_empty);
    if version < ApiVersion::new(1, 43)
        && untagged(value, "RepoTags")
        && untagged(value, "RepoDigests")
    {
        value["RepoTags"] = json!(["<none>:<none>"]);
        value["RepoDigests"] = json!(["<none>@<none>"]);
    }
    if version < ApiVersion::new(1, 44) {
        value["VirtualSize"] = value["Size"].clone();
    }
}

fn internal(e: serde_json::Error) -> ApiError {
    ApiError::internal(e.to_string())
}

/// `GET /images/{name}/json`: Docker's ImageInspect (before 1.45 with `Container` and
/// `ContainerConfig`, the legacy builder's fields).
async fn inspect(state: &Arc<State>, name: String, version: ApiVersion) -> Reply {
    let value = state
        .blocking(move |s| {
            let store = s.engine.images()?;
            let image = store.resolve(&name)?;
            let mut v = docker_inspect(&store, &image);
            // Dropped in 1.45; compose 1.29 reads ContainerConfig.Volumes to recreate.
            if version < ApiVersion::new(1, 45) {
                let raw = image.config_json().unwrap_or_default();
                v["Container"] = raw["container"].as_str().unwrap_or("").into();
                v["ContainerConfig"] = docker_config(&raw["container_config"]);
            }
            Ok(v)
        })
        .await?;
    respond::json(200, &value)
}

/// `GET /images/{name}/history`.
async fn history(state: &Arc<State>, name: String) -> Reply {
    let steps = state
        .blocking(move |s| Ok(images::history(&s.engine, &name)?))
        .await?;
    respond::json(200, &steps)
}

/// `POST /images/{name}/tag?repo=&tag=`: 201, no body.
async fn tag(state: &Arc<State>, call: &Call, name: String) -> Reply {
    let repo = call.query.get("repo").unwrap_or("");
    let tag = call.query.get("tag").unwrap_or("");
    let named = Reference::parse_named(repo)?;
    let target = match tag {
        "" => Reference::parse(repo)?,
        tag => Reference::parse(&format!("{}:{tag}", named.name()))?,
    };
    state
        .blocking(move |s| Ok(images::tag(&s.engine, &name, &target.to_string())?))
        .await?;
    respond::status(201)
}

/// `DELETE /images/{name}?force=&noprune=`: what was untagged and deleted.
async fn remove(state: &Arc<State>, call: &Call, name: String) -> Reply {
    let force = call.query.flag("force");
    let removed = state
        .blocking(move |s| {
            let usage = images::usage(&s.engine)?;
            Ok(images::remove(&s.engine, &name, force, &usage)?)
        })
        .await?;
    respond::json(200, &removed_json(&removed))
}

/// Docker's `[{"Untagged": name}, {"Deleted": id}]`.
fn removed_json(removed: &[Removed]) -> Vec<Value> {
    removed
        .iter()
        .map(|r| match r {
            Removed::Untagged(name) => json!({"Untagged": name.familiar()}),
            Removed::Deleted(id) => json!({"Deleted": id.to_string()}),
        })
        .collect()
}

/// `POST /images/prune?filters=`: dangling images (every unused one with `dangling=false`).
async fn prune(state: &Arc<State>, call: &Call) -> Reply {
    let pairs = crate::filters::Filters::of(&call.query)?.pairs();
    let (removed, freed) = state
        .blocking(move |s| {
            let filters = Filters::parse(&pairs, images::PRUNE_FILTERS)?;
            let usage = images::usage(&s.engine)?;
            Ok(images::prune(&s.engine, &filters, &usage)?)
        })
        .await?;
    let deleted = match removed.as_slice() {
        [] => Value::Null,
        some => removed_json(some).into(),
    };
    respond::json(
        200,
        &json!({"ImagesDeleted": deleted, "SpaceReclaimed": freed}),
    )
}

/// `GET /images/search?term=&limit=&filters=`: the engine's search, with the client's
/// credentials.
async fn search(state: &Arc<State>, call: &Call) -> Reply {
    let term = call.query.get("term").unwrap_or_default().to_string();
    let limit = match call.query.get("limit").filter(|l| !l.is_empty()) {
        Some(l) => Some(
            l.parse::<usize>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
        ),
        None => None,
    };
    let pairs = crate::filters::Filters::of(&call.query)?.pairs();
    let credentials = transfer::registry_auth(call);
    let found = state
        .blocking(move |s| {
            let filters = Filters::parse(&pairs, images::SEARCH_FILTERS)?;
            let options = s.registry(credentials);
            Ok(images::search(&term, limit, &filters, &options)?)
        })
        .await?;
    respond::json(200, &found)
}
