//! Image archives: docker-archive (what `docker save` writes) and oci-archive, both ways,
//! and `import` of a root filesystem tarball as a one-layer image.

pub mod docker;
pub mod import;
pub mod oci;

use std::fs;
use std::io::Read;
use std::path::Path;

use oci_spec::image::{Descriptor, Digest, ImageConfiguration, MediaType};
use serde_json::json;

use crate::digest::{parse_digest, HashingReader};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::store::Store;

/// The archive formats `save` can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Docker,
    Oci,
}

/// What `load` added: each image's ID and the names it got.
#[derive(Debug)]
pub struct Loaded {
    pub id: Digest,
    pub names: Vec<Reference>,
}

/// Loads a docker-archive or an oci-archive (told apart by manifest.json vs index.json).
pub fn load(store: &Store, reader: impl Read, progress: &dyn Progress) -> Result<Vec<Loaded>> {
    load_inner(store, reader, progress).map_err(|e| store.explain_no_space(e))
}

fn load_inner(store: &Store, reader: impl Read, progress: &dyn Progress) -> Result<Vec<Loaded>> {
    let _hold = store.lock_shared()?;
    let dir = tempfile::Builder::new()
        .prefix("load-")
        .tempdir_in(store.dir().join("tmp"))
        .map_err(Error::io("create temp dir in", store.dir().join("tmp")))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(false);
    archive.set_unpack_xattrs(false);
    // tar's unpack_in refuses entries that would land outside the directory.
    archive.unpack(dir.path()).map_err(|source| Error::Unpack {
        layer: "archive".into(),
        entry: "<archive>".into(),
        source,
    })?;
    if dir.path().join("manifest.json").is_file() {
        docker::load_dir(store, dir.path(), progress)
    } else if dir.path().join("index.json").is_file() {
        oci::load_dir(store, dir.path(), progress)
    } else {
        Err(Error::Invalid {
            object: "archive".into(),
            reason: "has neither manifest.json (docker-archive) nor index.json (oci-archive)"
                .into(),
        })
    }
}

/// Stores a layer file as a blob (as it is, compressed or not) and unpacks it as `diff_id`.
/// Returns the layer's descriptor for a new manifest.
fn store_layer_file(store: &Store, path: &Path, diff_id: &Digest) -> Result<Descriptor> {
    let mut file = fs::File::open(path).map_err(Error::io("open layer", path))?;
    let mut magic = [0u8; 4];
    let n = file
        .read(&mut magic)
        .map_err(Error::io("read layer", path))?;
    let media_type = match &magic[..n] {
        [0x1f, 0x8b, ..] => MediaType::ImageLayerGzip,
        [0x28, 0xb5, 0x2f, 0xfd] => MediaType::ImageLayerZstd,
        _ => MediaType::ImageLayer,
    };
    let mut file = HashingReader::new(fs::File::open(path).map_err(Error::io("open layer", path))?);
    let digest =
        store.put_blob_reader(&format!("layer {}", path.display()), None, None, &mut file)?;
    let size = file.count();
    store.ensure_layer(&digest, diff_id)?;
    Ok(Descriptor::new(media_type, size, digest))
}

/// Writes an OCI manifest for a config and layers already in the store; returns its descriptor.
fn write_manifest(
    store: &Store,
    config: &Digest,
    config_size: u64,
    layers: &[Descriptor],
) -> Result<Descriptor> {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": config_size},
        "layers": layers,
    });
    let bytes = serde_json::to_vec(&manifest).map_err(|source| Error::Json {
        object: "new manifest".into(),
        source,
    })?;
    let digest = store.put_blob("new manifest", None, &bytes)?;
    Ok(Descriptor::new(
        MediaType::ImageManifest,
        bytes.len() as u64,
        digest,
    ))
}

fn parse_config(bytes: &[u8], object: &str) -> Result<(ImageConfiguration, Vec<Digest>)> {
    let config: ImageConfiguration =
        serde_json::from_slice(bytes).map_err(|source| Error::Json {
            object: object.to_string(),
            source,
        })?;
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| parse_digest(d))
        .collect::<Result<Vec<_>>>()?;
    Ok((config, diff_ids))
}
