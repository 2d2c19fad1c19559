//! docker-archive: manifest.json + `<config>.json` + `<layer>/layer.tar` (uncompressed).

use std::fs;
use std::io::{self, BufReader, Write};

use serde::{Deserialize, Serialize};

use super::{parse_config, store_layer_file, write_manifest, Loaded, Unpacked};
use crate::compress;
use crate::digest;
use crate::error::{Error, Result};
use crate::progress::{LayerState, Progress};
use crate::reference::Reference;
use crate::store::{Image, Store};

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

pub(super) fn load(
    store: &Store,
    archive: &Unpacked,
    progress: &dyn Progress,
) -> Result<Vec<Loaded>> {
    let bytes = archive.read("manifest.json")?;
    let entries: Vec<Entry> = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        object: "manifest.json".into(),
        source,
    })?;
    let mut loaded = Vec::new();
    for entry in entries {
        let config_bytes = archive.read(&entry.config)?;
        let (_, diff_ids) = parse_config(&config_bytes, &entry.config)?;
        if diff_ids.len() != entry.layers.len() {
            return Err(Error::Invalid {
                object: format!("archive image {}", entry.config),
                reason: "layer count does not match the config's diff IDs".into(),
            });
        }
        // Every file the image names must be in the archive before any of it is stored.
        let layer_files: Vec<fs::File> = entry
            .layers
            .iter()
            .map(|name| archive.open(name))
            .collect::<Result<_>>()?;
        let config_digest = store.put_blob(&entry.config, None, &config_bytes)?;
        let names: Vec<Reference> = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|t| Reference::parse(t))
            .collect::<Result<_>>()?;
        // The same image (same config) already here: give it the names, keep one image ID.
        if let Some(existing) = store
            .images()?
            .into_iter()
            .find(|i| *i.id() == config_digest)
        {
            names
                .iter()
                .try_for_each(|name| store.tag(&existing, name))?;
            loaded.push(Loaded {
                id: config_digest,
                names,
            });
            continue;
        }
        let mut layers = Vec::new();
        for ((name, file), diff_id) in entry.layers.iter().zip(layer_files).zip(&diff_ids) {
            let layer = store_layer_file(store, file, name, diff_id)?;
            progress.layer(layer.digest(), LayerState::Complete);
            layers.push(layer);
        }
        let manifest = write_manifest(store, &config_digest, config_bytes.len() as u64, &layers)?;
        if names.is_empty() {
            store.commit_image(&manifest, None, None)?;
        }
        for name in &names {
            store.commit_image(&manifest, Some(name), None)?;
        }
        loaded.push(Loaded {
            id: config_digest,
            names,
        });
    }
    Ok(loaded)
}

/// Writes `images` (each with the names to record) as a docker-archive.
pub fn save(store: &Store, images: &[(Image, Vec<Reference>)], out: impl Write) -> Result<()> {
    let mut builder = tar::Builder::new(out);
    let tar_err = |source: io::Error| Error::Io {
        step: "write archive",
        path: "<output>".into(),
        source,
    };
    let mut entries = Vec::new();
    let mut written = std::collections::HashSet::new();
    for (image, names) in images {
        let config_name = format!("{}.json", image.id().digest());
        if written.insert(config_name.clone()) {
            append_bytes(&mut builder, &config_name, &image.config_raw).map_err(tar_err)?;
        }
        let mut layer_names = Vec::new();
        for (layer, diff_id) in image.manifest.layers().iter().zip(image.diff_ids()?) {
            let name = format!("{}/layer.tar", diff_id.digest());
            if written.insert(name.clone()) {
                append_uncompressed_layer(store, &mut builder, &name, layer.digest(), &diff_id)?;
            }
            layer_names.push(name);
        }
        let repo_tags = Some(names.iter().map(Reference::familiar).collect());
        entries.push(Entry {
            config: config_name,
            repo_tags,
            layers: layer_names,
        });
    }
    let manifest = serde_json::to_vec(&entries).map_err(|source| Error::Json {
        object: "manifest.json".into(),
        source,
    })?;
    append_bytes(&mut builder, "manifest.json", &manifest).map_err(tar_err)?;
    builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(tar_err)
}

pub(super) fn append_bytes<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, bytes)
}

/// docker-archive layers are plain tars, so a compressed blob is inflated to a temp file first
/// (a tar header needs the size up front), checked against its diff ID on the way.
fn append_uncompressed_layer<W: Write>(
    store: &Store,
    builder: &mut tar::Builder<W>,
    name: &str,
    blob: &oci_spec::image::Digest,
    diff_id: &oci_spec::image::Digest,
) -> Result<()> {
    let tmp_dir = store.dir().join("tmp");
    let mut tmp = tempfile::NamedTempFile::new_in(&tmp_dir)
        .map_err(Error::io("create temp file in", &tmp_dir))?;
    let decoder = compress::decoder(BufReader::with_capacity(1 << 20, store.open_blob(blob)?))
        .map_err(Error::io("read blob", store.blob_path(blob)))?;
    let mut hashing = digest::HashingReader::new(decoder);
    io::copy(&mut hashing, &mut tmp)
        .map_err(Error::io("inflate layer to", tmp.path().to_path_buf()))?;
    let (actual, _, _) = hashing
        .finish()
        .map_err(Error::io("read blob", store.blob_path(blob)))?;
    digest::verify(
        || format!("layer {blob}: uncompressed content"),
        diff_id,
        &actual,
    )?;
    builder
        .append_path_with_name(tmp.path(), name)
        .map_err(|source| Error::Io {
            step: "write archive",
            path: name.into(),
            source,
        })
}
