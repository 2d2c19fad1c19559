//! oci-archive: a tarred OCI image layout (oci-layout, index.json, blobs/sha256/*).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write};

use oci_spec::image::{Descriptor, Digest, ImageIndex, ImageManifest, MediaType};

use super::docker::append_bytes;
use super::{parse_config, Loaded, Unpacked};
use crate::digest::{self, HashingReader};
use crate::error::{Error, Result};
use crate::platform::{self, Platform};
use crate::progress::{LayerState, Progress};
use crate::reference::Reference;
use crate::store::{Image, Store};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const CONTAINERD_NAME: &str = "io.containerd.image.name";

fn blob_name(digest: &Digest) -> String {
    format!("blobs/{}/{}", digest.algorithm(), digest.digest())
}

/// Reads the blob `descriptor` names, checked against its size and digest.
fn read_verified(archive: &Unpacked, descriptor: &Descriptor) -> Result<Vec<u8>> {
    let digest = descriptor.digest();
    let bytes = archive.read(&blob_name(digest))?;
    if bytes.len() as u64 != descriptor.size() {
        return Err(Error::SizeMismatch {
            object: format!("archive blob {digest}"),
            expected: descriptor.size(),
            got: bytes.len() as u64,
        });
    }
    digest::verify(
        || format!("archive blob {digest}"),
        digest,
        &digest::sha256(&bytes),
    )?;
    Ok(bytes)
}

/// The name an index entry carries: a full reference, or a bare tag we cannot place.
fn name_of(descriptor: &Descriptor) -> Option<Reference> {
    let annotations = descriptor.annotations().as_ref()?;
    [CONTAINERD_NAME, REF_NAME]
        .iter()
        .filter_map(|k| annotations.get(*k))
        .find(|n| n.contains('/') || n.contains(':'))
        .and_then(|n| Reference::parse(n).ok())
}

pub(super) fn load(
    store: &Store,
    archive: &Unpacked,
    progress: &dyn Progress,
) -> Result<Vec<Loaded>> {
    let index: ImageIndex =
        serde_json::from_slice(&archive.read("index.json")?).map_err(|source| Error::Json {
            object: "archive index.json".into(),
            source,
        })?;
    let mut loaded = Vec::new();
    for top in index.manifests() {
        let name = name_of(top);
        let mut descriptor = top.clone();
        // An index inside the archive: take our platform's manifest from it.
        if matches!(descriptor.media_type(), MediaType::ImageIndex)
            || descriptor.media_type().as_ref()
                == "application/vnd.docker.distribution.manifest.list.v2+json"
        {
            let nested: ImageIndex = serde_json::from_slice(&read_verified(archive, &descriptor)?)
                .map_err(|source| Error::Json {
                    object: format!("archive index {}", descriptor.digest()),
                    source,
                })?;
            descriptor = platform::select(nested.manifests(), &Platform::host())?.clone();
        }
        let raw = read_verified(archive, &descriptor)?;
        let manifest: ImageManifest =
            serde_json::from_slice(&raw).map_err(|source| Error::Json {
                object: format!("archive manifest {}", descriptor.digest()),
                source,
            })?;
        let config_bytes = read_verified(archive, manifest.config())?;
        let (_, diff_ids) = parse_config(&config_bytes, "archive config")?;
        if diff_ids.len() != manifest.layers().len() {
            return Err(Error::Invalid {
                object: format!("archive manifest {}", descriptor.digest()),
                reason: "layer count does not match the config".into(),
            });
        }
        // Every blob the image names must be in the archive before any of it is stored.
        let layer_files: Vec<fs::File> = manifest
            .layers()
            .iter()
            .map(|layer| archive.open(&blob_name(layer.digest())))
            .collect::<Result<_>>()?;
        store.put_blob(
            "archive config",
            Some(manifest.config().digest()),
            &config_bytes,
        )?;
        for ((layer, mut file), diff_id) in manifest.layers().iter().zip(layer_files).zip(&diff_ids)
        {
            crate::compress::check_layer_media_type(
                || format!("layer {}", layer.digest()),
                layer.media_type().as_ref(),
            )?;
            if !store.has_blob(layer.digest()) {
                store.put_blob_reader(
                    &format!("layer {}", layer.digest()),
                    Some(layer.digest()),
                    Some(layer.size()),
                    &mut file,
                )?;
            }
            store.ensure_layer(layer.digest(), diff_id)?;
            progress.layer(layer.digest(), LayerState::Complete);
        }
        store.put_blob("archive manifest", Some(descriptor.digest()), &raw)?;
        let record = Descriptor::new(
            descriptor.media_type().clone(),
            raw.len() as u64,
            descriptor.digest().clone(),
        );
        store.commit_image(&record, name.as_ref(), None)?;
        loaded.push(Loaded {
            id: manifest.config().digest().clone(),
            names: name.into_iter().collect(),
        });
    }
    Ok(loaded)
}

/// Writes `images` as an oci-archive; each name becomes an index entry.
pub fn save(store: &Store, images: &[(Image, Vec<Reference>)], out: impl Write) -> Result<()> {
    let mut builder = tar::Builder::new(out);
    let tar_err = |source: io::Error| Error::Io {
        step: "write archive",
        path: "<output>".into(),
        source,
    };
    append_bytes(
        &mut builder,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .map_err(tar_err)?;
    let mut written = HashSet::new();
    let mut manifests = Vec::new();
    for (image, names) in images {
        let mut blobs = vec![image.manifest_digest.clone(), image.id().clone()];
        blobs.extend(image.manifest.layers().iter().map(|l| l.digest().clone()));
        for blob in blobs {
            if written.insert(blob.clone()) {
                let name = format!("blobs/{}/{}", blob.algorithm(), blob.digest());
                let mut file = HashingReader::new(store.open_blob(&blob)?);
                let len = fs::metadata(store.blob_path(&blob))
                    .map_err(Error::io("stat blob", store.blob_path(&blob)))?
                    .len();
                let mut header = tar::Header::new_gnu();
                header.set_size(len);
                header.set_mode(0o644);
                header.set_entry_type(tar::EntryType::Regular);
                builder
                    .append_data(&mut header, &name, &mut file)
                    .map_err(tar_err)?;
                let (actual, _, _) = file
                    .finish()
                    .map_err(Error::io("read blob", store.blob_path(&blob)))?;
                digest::verify(|| format!("blob {blob} in the store"), &blob, &actual)?;
            }
        }
        let size = fs::metadata(store.blob_path(&image.manifest_digest))
            .map(|m| m.len())
            .unwrap_or(0);
        let media_type = MediaType::from(image.manifest_media_type.as_str());
        let entries: Vec<Option<&Reference>> = if names.is_empty() {
            vec![None]
        } else {
            names.iter().map(Some).collect()
        };
        for name in entries {
            let mut d = Descriptor::new(media_type.clone(), size, image.manifest_digest.clone());
            if let Some(name) = name {
                let mut annotations = HashMap::new();
                annotations.insert(CONTAINERD_NAME.to_string(), name.to_string());
                annotations.insert(
                    REF_NAME.to_string(),
                    name.tag().unwrap_or("latest").to_string(),
                );
                d.set_annotations(Some(annotations));
            }
            manifests.push(d);
        }
    }
    let mut index = ImageIndex::default();
    index.set_manifests(manifests);
    let bytes = serde_json::to_vec(&index).map_err(|source| Error::Json {
        object: "index.json".into(),
        source,
    })?;
    append_bytes(&mut builder, "index.json", &bytes).map_err(tar_err)?;
    builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(tar_err)
}
