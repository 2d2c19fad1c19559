//! `commit`: a container's changes as a new image over its own. The layer is the container's
//! upper directory (the engine's mount points left out, see `diff::engine_made`), copied, not
//! moved, since the container keeps it; the config is the image's, with what the container
//! was run with over it and then the `--change` instructions.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use oci_spec::image::Descriptor;
use serde_json::{json, Map, Value};

use crate::archive::import::Change;
use crate::archive::write_manifest;
use crate::diff::{engine_made, store_copy, LayerOptions};
use crate::error::{Error, Result};
use crate::reference::Reference;
use crate::store::{Image, Store};

/// What the container was run with, over its image's config (Docker's container Config).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Arguments after the image name; empty keeps the image's Cmd.
    pub cmd: Vec<String>,
    /// `--entrypoint` (the API's list): "" (or an empty list) clears the image's.
    pub entrypoint: Option<Vec<String>>,
    /// `-e`, `KEY=VALUE`.
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub labels: Vec<(String, String)>,
    /// The container's Healthcheck (the image's merged with its flags, Docker's JSON), which
    /// replaces the image's.
    pub healthcheck: Option<Value>,
}

/// A commit of the container whose upper directory is `upper`, over `image`.
pub struct Commit<'a> {
    pub image: &'a Image,
    pub upper: &'a Path,
    /// The image's layers, top first.
    pub lowers: &'a [PathBuf],
    pub settings: Settings,
    pub changes: &'a [Change],
    /// The container's command, for the history line.
    pub created_by: String,
    pub author: Option<String>,
    pub message: Option<String>,
    pub name: Option<&'a Reference>,
}

/// Stores the container's changes as a layer and records the new image; its ID.
pub fn commit(store: &Store, c: &Commit) -> Result<oci_spec::image::Digest> {
    let skip = |rel: &Path| engine_made(c.upper, &Path::new("/").join(rel), c.lowers);
    let layer = store_copy(store, c.upper, &LayerOptions::default(), &skip)?;
    let mut config: Value =
        serde_json::from_slice(&c.image.config_raw).map_err(|source| Error::Json {
            object: format!("config of {}", c.image.id()),
            source,
        })?;
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let mut run = config
        .get("config")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    apply_settings(&mut run, &c.settings);
    for change in c.changes {
        change.apply(&mut run);
    }
    let doc = config
        .as_object_mut()
        .ok_or_else(|| invalid(c.image, "the config is not an object"))?;
    doc.insert("config".into(), Value::Object(run));
    doc.insert("created".into(), json!(now));
    match &c.author {
        Some(a) => doc.insert("author".into(), json!(a)),
        None => doc.remove("author"),
    };
    push(doc, "rootfs", "diff_ids", json!(layer.diff_id.to_string()))?;
    let mut entry = json!({"created": now, "created_by": c.created_by});
    if let Some(a) = &c.author {
        entry["author"] = json!(a);
    }
    if let Some(m) = &c.message {
        entry["comment"] = json!(m);
    }
    doc.entry("history").or_insert_with(|| json!([]));
    if let Some(h) = doc.get_mut("history").and_then(Value::as_array_mut) {
        h.push(entry);
    }
    let bytes = serde_json::to_vec(&config).map_err(|source| Error::Json {
        object: "committed config".into(),
        source,
    })?;
    let _hold = store.lock_shared()?;
    let config_digest = store.put_blob("committed config", None, &bytes)?;
    let mut layers: Vec<Descriptor> = c.image.manifest.layers().clone();
    layers.push(layer.blob);
    let manifest = write_manifest(store, &config_digest, bytes.len() as u64, &layers)?;
    store.commit_image(&manifest, c.name, None)?;
    Ok(config_digest)
}

fn invalid(image: &Image, reason: &str) -> Error {
    Error::Invalid {
        object: format!("image {}", image.id()),
        reason: reason.into(),
    }
}

/// Appends `value` to the list `doc[object][key]`.
fn push(doc: &mut Map<String, Value>, object: &str, key: &str, value: Value) -> Result<()> {
    let list = doc
        .get_mut(object)
        .and_then(|o| o.as_object_mut())
        .map(|o| o.entry(key).or_insert_with(|| json!([])))
        .and_then(Value::as_array_mut);
    match list {
        Some(l) => {
            l.push(value);
            Ok(())
        }
        None => Err(Error::Invalid {
            object: format!("image config {object}.{key}"),
            reason: "is not a list".into(),
        }),
    }
}

/// moby's merge of a container's Config over its image's: the run's command replaces Cmd, an
/// `--entrypoint` replaces Entrypoint (and drops the image's Cmd unless one was given), `-e`
/// replaces or adds variables, `-w` and `-u` replace, labels are added.
fn apply_settings(run: &mut Map<String, Value>, s: &Settings) {
    if let Some(e) = &s.entrypoint {
        match e.as_slice() {
            [] => run.insert("Entrypoint".into(), Value::Null),
            [only] if only.is_empty() => run.insert("Entrypoint".into(), Value::Null),
            e => {
                run.insert("Cmd".into(), Value::Null);
                run.insert("Entrypoint".into(), json!(e))
            }
        };
    }
    if !s.cmd.is_empty() {
        run.insert("Cmd".into(), json!(s.cmd));
    }
    for entry in &s.env {
        let (k, v) = entry.split_once('=').unwrap_or((entry, ""));
        Change::Env(k.to_string(), v.to_string()).apply(run);
    }
    if let Some(w) = s.workdir.as_ref().filter(|w| !w.is_empty()) {
        run.insert("WorkingDir".into(), json!(w));
    }
    if let Some(u) = s.user.as_ref().filter(|u| !u.is_empty()) {
        run.insert("User".into(), json!(u));
    }
    for (k, v) in &s.labels {
        Change::Label(k.clone(), v.clone()).apply(run);
    }
    if let Some(h) = &s.healthcheck {
        run.insert("Healthcheck".into(), h.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_merge_over_the_image_as_moby_does() {
        let mut run = json!({"Cmd": ["sh"], "Env": ["PATH=/bin", "A=1"], "Entrypoint": null})
            .as_object()
            .cloned()
            .unwrap();
        let s = Settings {
            entrypoint: Some(vec!["/entry".into()]),
            env: vec!["A=2".into(), "B=3".into()],
            labels: vec![("l".into(), "v".into())],
            ..Settings::default()
        };
        apply_settings(&mut run, &s);
        assert_eq!(run["Cmd"], Value::Null);
        assert_eq!(run["Entrypoint"], json!(["/entry"]));
        assert_eq!(run["Env"], json!(["PATH=/bin", "A=2", "B=3"]));
        assert_eq!(run["Labels"], json!({"l": "v"}));
    }
}
