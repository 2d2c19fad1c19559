//! `diff` and `commit`: a container's changes to its image's files, listed (Docker's
//! `GET /containers/{id}/changes`) or stored as a new image over its own (`POST /commit`),
//! for the command line and the API alike. The changes are the container's upper directory
//! over the image's layers (berth-image's `diff` and `commit`); a running container is paused
//! while they are read, as Docker does unless told not to.

use berth_image::archive::import::Change as ConfigChange;
use berth_image::commit::Settings;
use berth_image::diff::Change;
use berth_image::Reference;
use oci_spec::image::Digest;

use crate::engine::Engine;
use crate::error::Result;
use crate::records::{Record, Status};

/// What `commit` is asked besides the container.
#[derive(Clone, Debug, Default)]
pub struct CommitOptions {
    pub author: Option<String>,
    pub message: Option<String>,
    /// `--change` instructions, applied over the container's config in order.
    pub changes: Vec<ConfigChange>,
    /// Pause a running container while its files are read.
    pub pause: bool,
    pub name: Option<Reference>,
}

/// The container's changes to its image's files, sorted by path.
pub fn changes(engine: &Engine, key: &str) -> Result<Vec<Change>> {
    let record = engine.containers.find(key)?;
    let (_, lowers) = crate::bundle::image_of(engine, &record)?;
    let upper = engine.containers.dir(&record.id).join("upper");
    if !upper.is_dir() {
        return Ok(Vec::new());
    }
    Ok(berth_image::diff::container_changes(&upper, &lowers)?)
}

/// The container's changes as a new image, its config the container's with `options.changes`
/// over it; the new image's ID.
pub fn commit(engine: &Engine, key: &str, options: &CommitOptions) -> Result<Digest> {
    let record = crate::lifecycle::refresh(engine, engine.containers.find(key)?)?;
    let store = engine.images()?;
    let image = store.resolve(&record.image_id)?;
    let (_, lowers) = crate::bundle::image_of(engine, &record)?;
    let cdir = engine.containers.dir(&record.id);
    let upper = cdir.join("upper");
    std::fs::create_dir_all(&upper).map_err(crate::Error::io("create", upper.clone()))?;
    // A container with a user namespace of its own stores its changes with its range's ids:
    // the image gets them with the container's.
    let (upper, _view) = match crate::userns::of(&record) {
        Some(map) => {
            let (dir, view) = crate::idmap::unshifted(&cdir, &upper, map)?;
            (dir, Some(view))
        }
        None => (upper, None),
    };
    let paused = options.pause && record.state.status == Status::Running;
    if paused {
        crate::lifecycle::pause(engine, &record.id, true)?;
    }
    let done = berth_image::commit::commit(
        &store,
        &berth_image::commit::Commit {
            image: &image,
            upper: &upper,
            lowers: &lowers,
            settings: settings(&record),
            changes: &options.changes,
            created_by: crate::inspect::command(engine, &record).join(" "),
            author: options.author.clone(),
            message: options.message.clone(),
            name: options.name.as_ref(),
        },
    );
    if paused {
        crate::lifecycle::pause(engine, &record.id, false)?;
    }
    let id = done?;
    crate::events::record(engine, crate::events::Event::container(&record, "commit"));
    Ok(id)
}

/// What the container was run with, as the commit's config takes it.
fn settings(record: &Record) -> Settings {
    let req = &record.request;
    Settings {
        cmd: req.cmd.clone(),
        entrypoint: req.entrypoint.clone(),
        env: req.env.clone(),
        workdir: req.workdir.clone(),
        user: req.user.clone(),
        labels: req
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        // The container's merged health check, as Docker's commit keeps it.
        healthcheck: req
            .healthcheck
            .as_ref()
            .and_then(|h| serde_json::to_value(h).ok()),
    }
}
