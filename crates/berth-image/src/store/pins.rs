//! Pins: blobs and layers that no image names but that garbage collection must keep, such as
//! the build cache's intermediate layers. `<root>/image/pins/<owner>/<name>.json`, one file per
//! pinned thing, so each owner adds and drops its own without a shared index.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;

use oci_spec::image::Digest;
use serde::{Deserialize, Serialize};

use super::Store;
use crate::error::{Error, Result};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Pin {
    /// Blob digests (layers, configs).
    #[serde(default)]
    pub blobs: Vec<Digest>,
    /// Diff IDs of unpacked layers.
    #[serde(default)]
    pub layers: Vec<Digest>,
}

impl Store {
    fn pins_dir(&self, owner: &str) -> PathBuf {
        self.dir.join("pins").join(owner)
    }

    /// Keeps what `pin` names from garbage collection until `unpin`.
    pub fn pin(&self, owner: &str, name: &str, pin: &Pin) -> Result<()> {
        let dir = self.pins_dir(owner);
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        let bytes = serde_json::to_vec(pin).map_err(|source| Error::Json {
            object: format!("pin {name}"),
            source,
        })?;
        self.write_atomic(&dir.join(format!("{name}.json")), &bytes)
    }

    /// Every pin of `owner`, by name.
    pub fn pins(&self, owner: &str) -> Vec<(String, Pin)> {
        let Ok(entries) = fs::read_dir(self.pins_dir(owner)) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e
                    .file_name()
                    .to_string_lossy()
                    .strip_suffix(".json")?
                    .to_string();
                let pin = serde_json::from_slice(&fs::read(e.path()).ok()?).ok()?;
                Some((name, pin))
            })
            .collect()
    }

    /// Lets garbage collection take what the pin `name` kept (unless another keeps it).
    pub fn unpin(&self, owner: &str, name: &str) -> Result<()> {
        let path = self.pins_dir(owner).join(format!("{name}.json"));
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", path)(e)),
            _ => Ok(()),
        }
    }

    /// Blob and layer hexes that some pin of any owner keeps.
    pub(super) fn pinned(&self) -> (HashSet<String>, HashSet<String>) {
        let (mut blobs, mut layers) = (HashSet::new(), HashSet::new());
        let Ok(owners) = fs::read_dir(self.dir.join("pins")) else {
            return (blobs, layers);
        };
        for owner in owners.flatten() {
            for (_, pin) in self.pins(&owner.file_name().to_string_lossy()) {
                blobs.extend(pin.blobs.iter().map(|d| d.digest().to_string()));
                layers.extend(pin.layers.iter().map(|d| d.digest().to_string()));
            }
        }
        (blobs, layers)
    }
}
