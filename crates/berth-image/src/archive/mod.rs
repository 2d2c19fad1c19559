//! Image archives: docker-archive (what `docker save` writes) and oci-archive, both ways,
//! and `import` of a root filesystem tarball as a one-layer image.

pub mod docker;
pub mod import;
pub mod oci;
mod unpacked;

use std::fs;
use std::io::{Read, Seek};

use oci_spec::image::{Descriptor, Digest, ImageConfiguration, MediaType};
use serde_json::json;

use crate::digest::{parse_digest, HashingReader};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::reference::Reference;
use crate::store::Store;
use unpacked::Unpacked;

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
    let archive = Unpacked::new(store, reader)?;
    if archive.has("manifest.json")? {
        docker::load(store, &archive, progress)
    } else if archive.has("index.json")? {
        oci::load(store, &archive, progress)
    } else {
        Err(Error::Invalid {
            object: "archive".into(),
            reason: "has neither manifest.json (docker-archive) nor index.json (oci-archive)"
                .into(),
        })
    }
}

/// Stores a layer file (`name` in the archive) as a blob, as it is, compressed or not, and
/// unpacks it as `diff_id`. Returns the layer's descriptor for a new manifest.
fn store_layer_file(
    store: &Store,
    mut file: fs::File,
    name: &str,
    diff_id: &Digest,
) -> Result<Descriptor> {
    let mut magic = [0u8; 4];
    let n = file
        .read(&mut magic)
        .map_err(Error::io("read layer", name))?;
    let media_type = match &magic[..n] {
        [0x1f, 0x8b, ..] => MediaType::ImageLayerGzip,
        [0x28, 0xb5, 0x2f, 0xfd] => MediaType::ImageLayerZstd,
        _ => MediaType::ImageLayer,
    };
    file.rewind().map_err(Error::io("read layer", name))?;
    let mut file = HashingReader::new(file);
    let digest = store.put_blob_reader(&format!("layer {name}"), None, None, &mut file)?;
    let size = file.count();
    store.ensure_layer(&digest, diff_id)?;
    Ok(Descriptor::new(media_type, size, digest))
}

/// Writes an OCI manifest for a config and layers already in the store; returns its descriptor.
pub fn write_manifest(
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
