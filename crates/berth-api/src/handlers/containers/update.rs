//! `POST /containers/{id}/update` (resources and restart policy) and `POST /containers/prune`.

use std::sync::Arc;

use berth_engine::update::Update;
use serde::Deserialize;
use serde_json::json;

use super::body::{Resources, RestartPolicy};
use super::create::restart_policy;
use super::State;
use crate::error::ApiError;
use crate::filters::Filters;
use crate::respond::{self, Reply};
use crate::router::Call;

/// Docker's `UpdateConfig`: the resources and the restart policy; as Docker reads it, a zero
/// (or an empty policy name) leaves a setting as it is.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct UpdateConfig {
    #[serde(flatten)]
    resources: Resources,
    restart_policy: Option<RestartPolicy>,
}

/// `POST /containers/{id}/update`: `{"Warnings": [...]}`, the daemon's for what the host could
/// not take.
pub async fn update(state: &Arc<State>, key: String, call: &mut Call) -> Reply {
    let config: UpdateConfig = call.json().await?;
    let r = &config.resources;
    berth_engine::options::Unused {
        realtime: r.realtime(),
        ..Default::default()
    }
    .refuse()?;
    let restart = match &config.restart_policy {
        Some(p) if !p.name.as_deref().unwrap_or("").is_empty() => Some(restart_policy(p)?),
        _ => None,
    };
    let u = Update {
        memory: r.memory.filter(|m| *m != 0),
        memory_reservation: r.memory_reservation.filter(|m| *m != 0),
        memory_swap: r.memory_swap.filter(|m| *m != 0),
        cpus: r.cpus()?,
        cpu_shares: r.cpu_shares()?,
        cpu_period: r.cpu_period()?,
        cpu_quota: r.cpu_quota.filter(|q| *q != 0),
        cpuset_cpus: r.cpuset_cpus.clone().filter(|c| !c.is_empty()),
        cpuset_mems: r.cpuset_mems.clone().filter(|c| !c.is_empty()),
        // 0 and -1 alike: unlimited (Docker takes any value below 1 so).
        pids_limit: r.pids_limit.map(|l| if l <= 0 { -1 } else { l }),
        blkio_weight: r.blkio_weight.filter(|w| *w != 0),
        restart,
    };
    let warnings = state
        .blocking(move |s| Ok(berth_engine::update::update(&s.engine, &key, &u)?.warnings))
        .await?;
    respond::json(200, &json!({"Warnings": warnings}))
}

/// `POST /containers/prune?filters=` (`until`, `label`, `label!`): the stopped containers,
/// removed; `{"ContainersDeleted", "SpaceReclaimed"}`.
pub async fn prune(state: &Arc<State>, call: &Call) -> Reply {
    let pairs = Filters::of(&call.query)?.pairs();
    let pruned = state
        .blocking(move |s| {
            let filter = berth_engine::prune::Filter::parse(&pairs)?;
            Ok(berth_engine::prune::containers(&s.engine, &filter)?)
        })
        .await?;
    if let Some(e) = pruned.failed.first() {
        // Docker's prune stops at nothing either: what was removed stays removed.
        return Err(ApiError::internal(format!(
            "some containers could not be removed ({} of them), the first: {e}",
            pruned.failed.len()
        )));
    }
    // Docker sends null rather than an empty list.
    let deleted = (!pruned.removed.is_empty()).then_some(&pruned.removed);
    respond::json(
        200,
        &json!({"ContainersDeleted": deleted, "SpaceReclaimed": pruned.freed}),
    )
}
