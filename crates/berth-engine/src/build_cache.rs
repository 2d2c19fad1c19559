//! The build cache, which berth-build fills and `system df`, `system prune` and `builder
//! prune` measure and empty. A step's key is the hash of its parent's key and what the step
//! does (the instruction with its arguments expanded, the build args it sees, the content it
//! copies); its record the layer it made (none for an empty diff), when, and the instruction.
//! Records live in `<root>/build/cache/<key>.json`; each pins its layer in the image store so
//! that garbage collection keeps it until the cache is pruned. `RUN --mount=type=cache`
//! directories live in `<root>/build/mounts/`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use berth_image::store::{Pin, Store};
use oci_spec::image::{Descriptor, Digest};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// The owner of the builder's pins in the image store.
pub const PIN_OWNER: &str = "build-cache";

/// A layer in a stage: its blob and its diff ID.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Layer {
    pub blob: Descriptor,
    pub diff_id: Digest,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub layer: Option<Layer>,
    /// RFC 3339: when the layer was made, the time its history entry carries.
    pub created: String,
    /// The step as its history line has it (`RUN /bin/sh -c ...`); none in older records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

pub struct Cache {
    dir: PathBuf,
    store: Store,
}

/// `parent` and `parts` hashed into a key.
pub fn key(parent: &str, parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    h.update(parent.as_bytes());
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p);
    }
    format!("{:x}", h.finalize())
}

/// `<data root>/build`, made root's alone if it is not there: what RUN steps leave in their
/// working directories and cache mounts (setuid programs among it) is out of local users'
/// reach, as a container's directory is (`records::Containers::make_dir`).
pub fn build_dir(data_root: &Path) -> Result<PathBuf> {
    let dir = data_root.join("build");
    crate::records::private_dir(&dir)?;
    Ok(dir)
}

fn records_dir(data_root: &Path) -> PathBuf {
    data_root.join("build/cache")
}

fn mounts_dir(data_root: &Path) -> PathBuf {
    data_root.join("build/mounts")
}

impl Cache {
    pub fn open(data_root: &Path, store: Store) -> Result<Cache> {
        let dir = records_dir(data_root);
        std::fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        Ok(Cache { dir, store })
    }

    /// The record of `key`, if its layer is still in the store.
    pub fn get(&self, key: &str) -> Option<Record> {
        let bytes = std::fs::read(self.dir.join(format!("{key}.json"))).ok()?;
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        match &record.layer {
            Some(l)
                if !(self.store.has_blob(l.blob.digest()) && self.store.has_layer(&l.diff_id)) =>
            {
                None
            }
            _ => Some(record),
        }
    }

    pub fn put(&self, key: &str, record: &Record) -> Result<()> {
        if let Some(l) = &record.layer {
            let pin = Pin {
                blobs: vec![l.blob.digest().clone()],
                layers: vec![l.diff_id.clone()],
            };
            self.store.pin(PIN_OWNER, key, &pin)?;
        }
        let path = self.dir.join(format!("{key}.json"));
        let bytes = serde_json::to_vec(record)
            .map_err(|e| Error::Invalid(format!("build cache record: {e}")))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(Error::io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(Error::io("rename", &path))
    }
}

/// Docker's `types.BuildCache`, one per record and per cache mount, as `GET /system/df`
/// lists them. berth cannot tell a record a running build uses: none is in use.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Entry {
    #[serde(rename = "ID")]
    pub id: String,
    pub parents: Option<Vec<String>>,
    /// `regular` for a step's layer, `exec.cachemount` for a `RUN --mount=type=cache`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub description: String,
    pub in_use: bool,
    /// Its layer is an image's too (counted with the images), or another record's.
    pub shared: bool,
    pub size: u64,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub usage_count: u64,
}

/// Every record and cache mount of the data root at `data_root`; `in_images` tells the
/// layers (diff IDs) that images hold.
pub fn entries(data_root: &Path, store: &Store, in_images: &dyn Fn(&str) -> bool) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (path, id) in files(&records_dir(data_root), ".json") {
        let Some(record) = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        else {
            continue;
        };
        let (size, shared) = match &record.layer {
            Some(l) => {
                let diff_id = l.diff_id.to_string();
                let shared = in_images(&diff_id) || !seen.insert(diff_id);
                (store.layer_size(&l.diff_id), shared)
            }
            None => (0, false),
        };
        out.push(entry(
            &path,
            id,
            "regular",
            record.description,
            size,
            shared,
        ));
    }
    for (path, id) in files(&mounts_dir(data_root), "") {
        let size = berth_image::unpack::disk_usage(&path);
        let description = Some("cached mount (RUN --mount=type=cache)".to_string());
        out.push(entry(
            &path,
            id,
            "exec.cachemount",
            description,
            size,
            false,
        ));
    }
    out
}

fn entry(
    path: &Path,
    id: String,
    kind: &str,
    description: Option<String>,
    size: u64,
    shared: bool,
) -> Entry {
    let time = std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let time = humantime::format_rfc3339_nanos(time).to_string();
    Entry {
        id,
        parents: None,
        kind: kind.to_string(),
        description: description.unwrap_or_default(),
        in_use: false,
        shared,
        size,
        created_at: time.clone(),
        last_used_at: Some(time),
        usage_count: 1,
    }
}

/// The entries of `dir` whose names end in `suffix`, with their names less the suffix.
fn files(dir: &Path, suffix: &str) -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.strip_suffix(suffix)?.to_string();
            Some((e.path(), id))
        })
        .collect();
    out.sort();
    out
}

/// What a prune of the cache removed.
#[derive(Debug, Default)]
pub struct Pruned {
    /// The records' and cache mounts' IDs, as `system df` lists them.
    pub ids: Vec<String>,
    pub bytes: u64,
}

/// Drops every cache record and pin and the cache mounts, then collects the store's garbage.
pub fn prune(data_root: &Path) -> Result<Pruned> {
    let store = Store::open(data_root)?;
    let mut pruned = Pruned::default();
    for (path, id) in files(&records_dir(data_root), "") {
        if std::fs::remove_file(&path).is_ok() {
            pruned
                .ids
                .extend(id.strip_suffix(".json").map(String::from));
        }
    }
    for (name, _) in store.pins(PIN_OWNER) {
        store.unpin(PIN_OWNER, &name)?;
    }
    for (path, id) in files(&mounts_dir(data_root), "") {
        let size = berth_image::unpack::disk_usage(&path);
        if std::fs::remove_dir_all(&path).is_ok() {
            pruned.bytes += size;
            pruned.ids.push(id);
        }
    }
    pruned.bytes += store.gc()?.bytes_freed;
    Ok(pruned)
}
