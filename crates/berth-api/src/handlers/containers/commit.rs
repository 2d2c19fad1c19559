//! `GET /containers/{id}/changes` (docker diff) and `POST /commit` (docker commit): the
//! engine's `commit` module, in Docker's JSON.

use std::sync::Arc;

use berth_engine::commit::{self, CommitOptions};
use berth_image::archive::import::Change;
use berth_image::Reference;
use serde_json::{json, Value};

use super::body::Body;
use super::State;
use crate::error::ApiError;
use crate::respond::{self, Reply};
use crate::router::Call;

/// `GET /containers/{id}/changes`: `[{"Path": ..., "Kind": 0|1|2}]` (changed, added,
/// deleted), null when there are none, as dockerd answers.
pub async fn changes(state: &Arc<State>, key: String) -> Reply {
    let changes = state
        .blocking(move |s| Ok(commit::changes(&s.engine, &key)?))
        .await?;
    let list: Vec<Value> = changes
        .iter()
        .map(|c| {
            let kind = match c.kind {
                'C' => 0,
                'A' => 1,
                _ => 2,
            };
            json!({"Path": c.path, "Kind": kind})
        })
        .collect();
    match list.is_empty() {
        true => respond::json(200, &Value::Null),
        false => respond::json(200, &list),
    }
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`, the body a
/// container Config whose fields go over the container's: 201 with the new image's ID.
pub async fn commit(state: &Arc<State>, call: &mut Call) -> Reply {
    let query = &call.query;
    let Some(container) = query.get("container").filter(|c| !c.is_empty()) else {
        return Err(ApiError::bad_request("container is required"));
    };
    let container = container.to_string();
    let name = name(
        query.get("repo").unwrap_or(""),
        query.get("tag").unwrap_or(""),
    )?;
    let mut changes = query
        .all("changes")
        .iter()
        .filter(|c| !c.trim().is_empty())
        .map(|c| Change::parse(c))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    let text = |key| query.get(key).filter(|v| !v.is_empty()).map(String::from);
    let mut options = CommitOptions {
        author: text("author"),
        message: text("comment"),
        changes: Vec::new(),
        // Docker pauses unless told not to.
        pause: query.get("pause").is_none_or(str::is_empty) || query.flag("pause"),
        name,
    };
    let body: Body = call.json().await?;
    changes.extend(config_changes(body));
    options.changes = changes;
    let id = state
        .blocking(move |s| Ok(commit::commit(&s.engine, &container, &options)?))
        .await?;
    respond::json(201, &json!({"Id": id.to_string()}))
}

/// `repo` and `tag` as the new image's name (none without a repo).
fn name(repo: &str, tag: &str) -> Result<Option<Reference>, ApiError> {
    match (repo, tag) {
        ("", "") => Ok(None),
        ("", _) => Err(ApiError::bad_request("tag is not allowed without a repo")),
        (repo, "") => Ok(Some(Reference::parse(repo)?)),
        (repo, tag) => Ok(Some(Reference::parse(&format!(
            "{}:{tag}",
            Reference::parse_named(repo)?.name()
        ))?)),
    }
}

/// The body's Config as the changes it makes over the container's (after `changes=`, as
/// dockerd merges them).
fn config_changes(body: Body) -> Vec<Change> {
    let mut out = Vec::new();
    out.extend(body.cmd.filter(|c| !c.is_empty()).map(Change::Cmd));
    out.extend(
        body.entrypoint
            .filter(|e| !e.is_empty())
            .map(Change::Entrypoint),
    );
    for e in body.env.unwrap_or_default() {
        let (k, v) = e.split_once('=').unwrap_or((&e, ""));
        out.push(Change::Env(k.to_string(), v.to_string()));
    }
    out.extend(
        body.working_dir
            .filter(|w| !w.is_empty())
            .map(Change::Workdir),
    );
    out.extend(body.user.filter(|u| !u.is_empty()).map(Change::User));
    for (k, v) in body.labels.unwrap_or_default() {
        out.push(Change::Label(k, v));
    }
    for v in body.volumes.unwrap_or_default().into_keys() {
        out.push(Change::Volume(v));
    }
    out.extend(
        body.stop_signal
            .filter(|s| !s.is_empty())
            .map(Change::StopSignal),
    );
    out
}
