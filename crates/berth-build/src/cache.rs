//! The layer cache: a step's key is the hash of its parent's key and what the step does (the
//! instruction with its arguments expanded, the build args it sees, the content it copies); its
//! record the layer it made (none for an empty diff) and when. Records live in
//! `<root>/build/cache/<key>.json`; each pins its layer in the image store so that garbage
//! collection keeps it until `builder prune`.

use std::path::{Path, PathBuf};

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

impl Cache {
    pub fn open(data_root: &Path, store: Store) -> Result<Cache> {
        let dir = data_root.join("build/cache");
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
        let bytes =
            serde_json::to_vec(record).map_err(|e| Error::Invalid(format!("cache record: {e}")))?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).map_err(Error::io("write", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(Error::io("rename", &path))
    }
}

/// What `builder prune` removed.
#[derive(Debug, Default)]
pub struct Pruned {
    pub records: usize,
    pub bytes: u64,
}

/// Drops every cache record and pin, the cache mounts, then collects the store's garbage.
pub fn prune(data_root: &Path) -> Result<Pruned> {
    let store = Store::open(data_root)?;
    let mut pruned = Pruned::default();
    let dir = data_root.join("build/cache");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if std::fs::remove_file(e.path()).is_ok() {
                pruned.records += 1;
            }
        }
    }
    for (name, _) in store.pins(PIN_OWNER) {
        store.unpin(PIN_OWNER, &name)?;
    }
    let mounts = data_root.join("build/mounts");
    pruned.bytes += berth_image::unpack::disk_usage(&mounts);
    let _ = std::fs::remove_dir_all(&mounts);
    pruned.bytes += store.gc()?.bytes_freed;
    Ok(pruned)
}
