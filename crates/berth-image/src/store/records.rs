//! Which images the store holds: index.json's descriptors, one per (image, name) pair.
//!
//! Each descriptor points at a single-platform image manifest. `io.berth.image.name` holds the
//! full tagged name; a descriptor without it is an untagged (`<none>`) image.
//! `io.berth.image.repo-digest` holds `name@digest` as the registry knows it (RepoDigests).

use std::collections::HashMap;

use oci_spec::image::{Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest};

use super::Store;
use crate::digest::parse_digest;
use crate::error::{Error, Result};
use crate::reference::Reference;

pub const ANNOTATION_NAME: &str = "io.berth.image.name";
pub const ANNOTATION_REPO_DIGEST: &str = "io.berth.image.repo-digest";

/// An image in the store: its manifest, its config, and the names it goes by.
#[derive(Clone, Debug)]
pub struct Image {
    pub manifest_digest: Digest,
    pub manifest_media_type: String,
    pub manifest: ImageManifest,
    /// The config exactly as stored; its digest is the image ID.
    pub config_raw: Vec<u8>,
    pub config: ImageConfiguration,
    pub repo_tags: Vec<Reference>,
    pub repo_digests: Vec<Reference>,
}

impl Image {
    /// The image ID: the digest of its config, as Docker has it.
    pub fn id(&self) -> &Digest {
        self.manifest.config().digest()
    }

    /// The uncompressed digests of the layers, bottom first.
    pub fn diff_ids(&self) -> Result<Vec<Digest>> {
        self.config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| parse_digest(d))
            .collect()
    }

    /// The config as generic JSON, keeping fields oci-spec does not model (Docker's extras).
    /// An error when it does not read as JSON values (a number out of range, say, which
    /// oci-spec skipped in a field it does not model): never a silent `null`.
    pub fn config_json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.config_raw).map_err(|source| Error::Json {
            object: format!("config {}", self.id()),
            source,
        })
    }
}

fn annotation<'a>(d: &'a Descriptor, key: &str) -> Option<&'a str> {
    d.annotations().as_ref()?.get(key).map(String::as_str)
}

fn named(d: &Descriptor, name: &Reference) -> bool {
    annotation(d, ANNOTATION_NAME) == Some(name.to_string().as_str())
}

impl Store {
    pub(crate) fn read_index(&self) -> Result<Vec<Descriptor>> {
        let path = self.dir.join("index.json");
        let bytes = std::fs::read(&path).map_err(Error::io("read", &path))?;
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|source| Error::Json {
            object: path.display().to_string(),
            source,
        })?;
        Ok(index.manifests().clone())
    }

    fn write_index(&self, manifests: Vec<Descriptor>) -> Result<()> {
        let mut index = ImageIndex::default();
        index.set_manifests(manifests);
        let bytes = serde_json::to_vec_pretty(&index).map_err(|source| Error::Json {
            object: "index.json".into(),
            source,
        })?;
        self.write_atomic(&self.dir.join("index.json"), &bytes)
    }

    /// Runs `change` on index.json's descriptors under the index lock and saves the result.
    pub(crate) fn update_index<T>(
        &self,
        change: impl FnOnce(&mut Vec<Descriptor>) -> Result<T>,
    ) -> Result<T> {
        let _lock = self.lock_index()?;
        let mut manifests = self.read_index()?;
        let out = change(&mut manifests)?;
        self.write_index(manifests)?;
        Ok(out)
    }

    /// Every image, once each, with all its names.
    pub fn images(&self) -> Result<Vec<Image>> {
        let descriptors = self.read_index()?;
        let mut order: Vec<Digest> = Vec::new();
        let mut groups: HashMap<Digest, Vec<Descriptor>> = HashMap::new();
        for d in descriptors {
            if !groups.contains_key(d.digest()) {
                order.push(d.digest().clone());
            }
            groups.entry(d.digest().clone()).or_default().push(d);
        }
        order
            .iter()
            .map(|digest| self.load_image(&groups[digest]))
            .collect()
    }

    fn load_image(&self, descriptors: &[Descriptor]) -> Result<Image> {
        let first = &descriptors[0];
        let manifest_digest = first.digest().clone();
        let raw = self.read_blob(&manifest_digest)?;
        let manifest: ImageManifest =
            serde_json::from_slice(&raw).map_err(|source| Error::Json {
                object: format!("manifest {manifest_digest}"),
                source,
            })?;
        let config_raw = self.read_blob(manifest.config().digest())?;
        let config: ImageConfiguration =
            serde_json::from_slice(&config_raw).map_err(|source| Error::Json {
                object: format!("config {}", manifest.config().digest()),
                source,
            })?;
        let mut repo_tags = Vec::new();
        let mut repo_digests: Vec<Reference> = Vec::new();
        for d in descriptors {
            if let Some(name) =
                annotation(d, ANNOTATION_NAME).and_then(|n| Reference::parse(n).ok())
            {
                repo_tags.push(name);
            }
            if let Some(rd) =
                annotation(d, ANNOTATION_REPO_DIGEST).and_then(|n| Reference::parse(n).ok())
            {
                if !repo_digests.contains(&rd) {
                    repo_digests.push(rd);
                }
            }
        }
        Ok(Image {
            manifest_digest,
            manifest_media_type: first.media_type().to_string(),
            manifest,
            config_raw,
            config,
            repo_tags,
            repo_digests,
        })
    }

    /// Finds an image by name (`busybox`, `busybox@sha256:…`) or by ID prefix (`3f57d9401f8d`).
    pub fn resolve(&self, input: &str) -> Result<Image> {
        if let Ok(reference) = Reference::parse(input) {
            if let Some(image) = self.find(&reference)? {
                return Ok(image);
            }
        }
        let hex = input.strip_prefix("sha256:").unwrap_or(input);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hex = hex.to_ascii_lowercase();
            let mut matches: Vec<Image> = self
                .images()?
                .into_iter()
                .filter(|i| i.id().digest().starts_with(&hex))
                .collect();
            // One config can sit under two manifests (pulled compressed, loaded plain): one ID.
            let ids: std::collections::HashSet<&Digest> = matches.iter().map(Image::id).collect();
            match ids.len() {
                0 => {}
                1 => return Ok(matches.remove(0)),
                count => {
                    return Err(Error::AmbiguousImage {
                        input: input.to_string(),
                        count,
                    })
                }
            }
        }
        Err(Error::NoSuchImage(input.to_string()))
    }

    /// The image a reference names, if the store has it.
    pub fn find(&self, reference: &Reference) -> Result<Option<Image>> {
        let descriptors = self.read_index()?;
        let hit = descriptors.iter().find(|d| match reference.digest() {
            Some(digest) => {
                annotation(d, ANNOTATION_REPO_DIGEST)
                    == Some(reference.with_digest(digest.clone()).to_string().as_str())
                    || (d.digest() == digest
                        && [ANNOTATION_NAME, ANNOTATION_REPO_DIGEST].iter().any(|k| {
                            annotation(d, k)
                                .and_then(|n| Reference::parse(n).ok())
                                .is_some_and(|r| r.name() == reference.name())
                        }))
            }
            None => named(d, reference),
        });
        let Some(hit) = hit else { return Ok(None) };
        let group: Vec<Descriptor> = descriptors
            .iter()
            .filter(|d| d.digest() == hit.digest())
            .cloned()
            .collect();
        self.load_image(&group).map(Some)
    }

    /// Records an image whose blobs and layers are all in place, under `name` if given. A
    /// name held by another image moves here; that image stays, untagged, if nothing else
    /// names it.
    pub fn commit_image(
        &self,
        manifest: &Descriptor,
        name: Option<&Reference>,
        repo_digest: Option<&Reference>,
    ) -> Result<()> {
        self.check_complete(manifest.digest())?;
        let mut annotations = HashMap::new();
        if let Some(name) = name {
            annotations.insert(ANNOTATION_NAME.to_string(), name.to_string());
        }
        if let Some(rd) = repo_digest {
            annotations.insert(ANNOTATION_REPO_DIGEST.to_string(), rd.to_string());
        }
        let mut record = Descriptor::new(
            manifest.media_type().clone(),
            manifest.size(),
            manifest.digest().clone(),
        );
        record.set_annotations(Some(annotations));
        self.update_index(|manifests| {
            if let Some(name) = name {
                untag_in(manifests, name);
            }
            // The same image under the same name (or untagged again): replace, don't duplicate.
            manifests.retain(|d| {
                !(d.digest() == manifest.digest()
                    && (annotation(d, ANNOTATION_NAME).is_none()
                        || name.is_some_and(|n| named(d, n))))
            });
            manifests.push(record);
            Ok(())
        })
    }

    /// Checks that the manifest, config, every layer blob and every unpacked layer are here.
    fn check_complete(&self, manifest_digest: &Digest) -> Result<()> {
        let incomplete = |reason: String| Error::Invalid {
            object: format!("image {manifest_digest}"),
            reason,
        };
        let manifest: ImageManifest = serde_json::from_slice(&self.read_blob(manifest_digest)?)
            .map_err(|source| Error::Json {
                object: format!("manifest {manifest_digest}"),
                source,
            })?;
        let config: ImageConfiguration = serde_json::from_slice(
            &self.read_blob(manifest.config().digest())?,
        )
        .map_err(|source| Error::Json {
            object: format!("config {}", manifest.config().digest()),
            source,
        })?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(incomplete(format!(
                "manifest has {} layers but config has {} diff IDs",
                manifest.layers().len(),
                diff_ids.len()
            )));
        }
        for (layer, diff_id) in manifest.layers().iter().zip(diff_ids) {
            let diff_id = parse_digest(diff_id)?;
            if !self.has_blob(layer.digest()) || !self.has_layer(&diff_id) {
                return Err(incomplete(format!(
                    "layer {} is missing from the store",
                    layer.digest()
                )));
            }
        }
        Ok(())
    }

    /// Removes one name. Returns whether the image it named still has other names.
    pub fn untag(&self, name: &Reference) -> Result<bool> {
        self.update_index(|manifests| {
            let digest = manifests
                .iter()
                .find(|d| named(d, name))
                .map(|d| d.digest().clone());
            let Some(digest) = digest else {
                return Err(Error::NoSuchImage(name.familiar()));
            };
            manifests.retain(|d| !named(d, name));
            Ok(manifests.iter().any(|d| *d.digest() == digest))
        })
    }

    /// Removes one name but keeps the image, untagged (`<none>`), if that was its last name:
    /// what `rmi -f` does to an image a container still uses.
    pub fn untag_keeping_image(&self, name: &Reference) -> Result<()> {
        self.update_index(|manifests| {
            if !manifests.iter().any(|d| named(d, name)) {
                return Err(Error::NoSuchImage(name.familiar()));
            }
            untag_in(manifests, name);
            Ok(())
        })
    }

    /// Forgets an image under every name. Its blobs and layers go at the next `gc`.
    pub fn remove_image(&self, manifest_digest: &Digest) -> Result<()> {
        self.update_index(|manifests| {
            manifests.retain(|d| d.digest() != manifest_digest);
            Ok(())
        })
    }
}

/// Takes `name` off whichever image has it, leaving that image untagged if it has no other name.
fn untag_in(manifests: &mut Vec<Descriptor>, name: &Reference) {
    let Some(pos) = manifests.iter().position(|d| named(d, name)) else {
        return;
    };
    let old = manifests.remove(pos);
    if !manifests.iter().any(|d| d.digest() == old.digest()) {
        let mut untagged = old.clone();
        let keep: HashMap<String, String> = old
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|(k, _)| k != ANNOTATION_NAME)
            .collect();
        untagged.set_annotations(Some(keep));
        manifests.push(untagged);
    }
}

impl Store {
    /// Gives `image` the name `name` (moving it off any other image).
    pub fn tag(&self, image: &Image, name: &Reference) -> Result<()> {
        let size = std::fs::metadata(self.blob_path(&image.manifest_digest))
            .map(|m| m.len())
            .unwrap_or(0);
        let desc = Descriptor::new(
            oci_spec::image::MediaType::from(image.manifest_media_type.as_str()),
            size,
            image.manifest_digest.clone(),
        );
        self.commit_image(&desc, Some(name), None)
    }
}
