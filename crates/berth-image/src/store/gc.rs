//! Garbage collection: blobs and layers no image refers to, and leftovers in tmp/.

use std::collections::HashSet;
use std::fs;

use oci_spec::image::ImageManifest;

use super::Store;
use crate::digest::parse_digest;
use crate::error::{Error, Result};
use crate::unpack::disk_usage;

/// What a collection removed.
#[derive(Debug, Default)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub layers_removed: usize,
    pub bytes_freed: u64,
    /// True when another command held the store, so nothing was collected this time.
    pub skipped: bool,
}

impl Store {
    /// Removes what no image refers to. Skips (reporting so) if a pull or load is running:
    /// their blobs are not referenced yet and must not be taken from under them.
    pub fn gc(&self) -> Result<GcReport> {
        let Some(_lock) = self.try_lock_exclusive()? else {
            return Ok(GcReport {
                skipped: true,
                ..GcReport::default()
            });
        };
        let (blobs, layers) = self.referenced()?;
        let mut report = GcReport::default();
        let blob_dir = self.dir.join("blobs/sha256");
        for entry in fs::read_dir(&blob_dir)
            .map_err(Error::io("list", &blob_dir))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !blobs.contains(&name) {
                report.bytes_freed += entry.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(entry.path()).map_err(Error::io("remove blob", entry.path()))?;
                report.blobs_removed += 1;
            }
        }
        let layer_dir = self.dir.join("layers");
        for entry in fs::read_dir(&layer_dir)
            .map_err(Error::io("list", &layer_dir))?
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            // An image's init layer goes with the image (named by its ID, its config's digest).
            let kept = match name.strip_prefix(super::init::INIT_PREFIX) {
                Some(image_id) => blobs.contains(image_id),
                None => layers.contains(&name),
            };
            if !kept {
                report.bytes_freed += disk_usage(&entry.path());
                fs::remove_dir_all(entry.path())
                    .map_err(Error::io("remove layer", entry.path()))?;
                report.layers_removed += 1;
            }
        }
        // Nothing else holds the store, so whatever is in tmp/ was left by a killed command.
        let tmp = self.tmp_dir();
        for entry in fs::read_dir(&tmp)
            .map_err(Error::io("list", &tmp))?
            .flatten()
        {
            let path = entry.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
        Ok(report)
    }

    /// The blob hexes and layer hexes that some recorded image needs.
    fn referenced(&self) -> Result<(HashSet<String>, HashSet<String>)> {
        let (mut blobs, mut layers) = self.pinned();
        for d in self.read_index()? {
            blobs.insert(d.digest().digest().to_string());
            let raw = self.read_blob(d.digest())?;
            let manifest: ImageManifest =
                serde_json::from_slice(&raw).map_err(|source| Error::Json {
                    object: format!("manifest {}", d.digest()),
                    source,
                })?;
            blobs.insert(manifest.config().digest().digest().to_string());
            blobs.extend(
                manifest
                    .layers()
                    .iter()
                    .map(|l| l.digest().digest().to_string()),
            );
            let config: serde_json::Value = serde_json::from_slice(
                &self.read_blob(manifest.config().digest())?,
            )
            .map_err(|source| Error::Json {
                object: format!("config {}", manifest.config().digest()),
                source,
            })?;
            for diff_id in config["rootfs"]["diff_ids"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(d) = diff_id.as_str().and_then(|s| parse_digest(s).ok()) {
                    layers.insert(d.digest().to_string());
                }
            }
        }
        Ok((blobs, layers))
    }
}
