//! Unpacked layers: one directory per diff ID, made in tmp/ and renamed in when verified.

use std::fs;
use std::io::{BufReader, Read};
use std::path::PathBuf;

use oci_spec::image::Digest;
use tempfile::TempDir;

use super::Store;
use crate::compress;
use crate::digest::{self, HashingReader};
use crate::error::{Error, Result};
use crate::unpack;

/// A layer being unpacked; dropped without `commit`, it disappears.
pub struct TempLayer {
    dir: TempDir,
    store: Store,
}

impl TempLayer {
    /// The directory to unpack into (becomes `layers/<hex>/diff`).
    pub fn diff_dir(&self) -> PathBuf {
        self.dir.path().join("diff")
    }

    /// Moves the verified layer into place; if another command got there first, ours goes.
    pub fn commit(self, diff_id: &Digest, size: u64) -> Result<()> {
        let size_path = self.dir.path().join("size");
        fs::write(&size_path, size.to_string()).map_err(Error::io("write", &size_path))?;
        let target = self.store.layer_dir(diff_id);
        let tmp = self.dir.keep();
        match fs::rename(&tmp, &target) {
            Ok(()) => Ok(()),
            Err(_) if target.join("diff").is_dir() => {
                let _ = fs::remove_dir_all(&tmp);
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp);
                Err(Error::io("rename layer into place", target)(e))
            }
        }
    }
}

impl Store {
    /// `layers/<hex>`: holds `diff/` and `size` (and the engine's copies of `diff/` shifted for
    /// a user namespace's range, `diff-<first>-<count>/`, where it cannot idmap the layer).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join("layers").join(diff_id.digest())
    }

    /// Whether the layer with this diff ID is unpacked.
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        self.layer_dir(diff_id).join("diff").is_dir()
    }

    /// The layer's recorded size in bytes (its regular files), 0 if unknown.
    pub fn layer_size(&self, diff_id: &Digest) -> u64 {
        fs::read_to_string(self.layer_dir(diff_id).join("size"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// A fresh temp layer directory.
    pub fn temp_layer(&self) -> Result<TempLayer> {
        let dir = tempfile::Builder::new()
            .prefix("layer-")
            .tempdir_in(self.tmp_dir())
            .map_err(Error::io("create temp layer in", self.tmp_dir()))?;
        let diff = dir.path().join("diff");
        fs::create_dir(&diff).map_err(Error::io("create", &diff))?;
        Ok(TempLayer {
            dir,
            store: self.clone(),
        })
    }

    /// Unpacks a (compressed or plain) tar stream as the layer `diff_id`, verifying it.
    pub fn unpack_layer_from(&self, reader: impl Read, diff_id: &Digest) -> Result<()> {
        let name = format!("{diff_id}");
        let layer = self.temp_layer()?;
        let decoder = compress::decoder(BufReader::with_capacity(1 << 20, reader))
            .map_err(Error::io("read layer", layer.diff_dir()))?;
        let mut hashing = HashingReader::new(decoder);
        let size = unpack::unpack_layer(&mut hashing, &layer.diff_dir(), &name)?;
        let (actual, _, _) = hashing
            .finish()
            .map_err(Error::io("read layer", layer.diff_dir()))?;
        digest::verify(
            || format!("layer {diff_id}: uncompressed content"),
            diff_id,
            &actual,
        )?;
        layer.commit(diff_id, size)
    }

    /// Makes sure the layer is unpacked, from its stored blob if need be.
    pub fn ensure_layer(&self, blob: &Digest, diff_id: &Digest) -> Result<()> {
        if self.has_layer(diff_id) {
            return Ok(());
        }
        let file = self.open_blob(blob)?;
        self.unpack_layer_from(file, diff_id)
    }

    /// The overlay lowerdirs of an image's root filesystem, top layer first.
    pub fn rootfs_layers(&self, image: &super::Image) -> Result<Vec<PathBuf>> {
        self.layers_of(image.id(), &image.diff_ids()?)
    }

    /// The same from the image's ID and layer diff IDs (bottom first), without reading the
    /// index: what a container's start needs once its image was resolved at create.
    ///
    /// A layer that comes twice (two build steps that made the same change, the empty layers
    /// of old builders) is given once, at its topmost place: overlayfs refuses a directory
    /// twice in one mount (ELOOP), and the copy below changes nothing, since every path it
    /// could answer for is answered by the same layer higher up.
    pub fn layers_of(&self, image_id: &Digest, diff_ids: &[Digest]) -> Result<Vec<PathBuf>> {
        let dirs = self.lowerdirs(diff_ids);
        for dir in &dirs {
            if !dir.is_dir() {
                // `layers/<hex>/diff`
                let hex = dir.parent().and_then(|d| d.file_name()).unwrap_or_default();
                return Err(Error::Invalid {
                    object: format!(
                        "image {}: layer sha256:{}",
                        digest::short(image_id),
                        hex.to_string_lossy()
                    ),
                    reason: "is not unpacked in the store; pull the image again".into(),
                });
            }
        }
        Ok(dirs)
    }

    /// [`Store::layers_of`]'s paths, unchecked (no `statx` of each): what a mount of them
    /// would be given, to measure its options.
    pub fn lowerdirs(&self, diff_ids: &[Digest]) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for diff_id in diff_ids.iter().rev() {
            let dir = self.layer_dir(diff_id).join("diff");
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    }
}
