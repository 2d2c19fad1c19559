//! Push: blobs first (skipped when the registry has them, mounted from a sibling
//! repository when it can, else uploaded monolithically or in chunks), then the manifest.

use oci_spec::image::{Descriptor, Digest};

use super::{Body, Client, RegistryOptions};
use crate::digest::{self};
use crate::error::{Error, Result, ResultExt};
use crate::progress::{LayerState, Progress, Silent};
use crate::reference::Reference;
use crate::store::{Image, Store};

/// How to push.
#[derive(Clone, Debug)]
pub struct PushOptions {
    /// Blobs larger than this go up in PATCH chunks of this size; smaller ones in one PUT.
    pub chunk_size: u64,
    pub registry: RegistryOptions,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            chunk_size: 32 << 20,
            registry: RegistryOptions::default(),
        }
    }
}

/// Pushes `image` as `target`; returns the manifest digest the registry stored.
pub fn push(
    store: &Store,
    image: &Image,
    target: &Reference,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<oci_spec::image::Digest> {
    push_inner(store, image, target, options, progress).context(|| format!("push {target}"))
}

fn push_inner(
    store: &Store,
    image: &Image,
    target: &Reference,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<oci_spec::image::Digest> {
    let repo = target.repository();
    // A sibling repository on the same registry that already has these blobs, for mounts.
    let mount_from = image
        .repo_tags
        .iter()
        .chain(&image.repo_digests)
        .find(|r| r.registry() == target.registry() && r.repository() != repo)
        .map(|r| r.repository().to_string());
    let mut scopes = vec![format!("repository:{repo}:pull,push")];
    if let Some(from) = &mount_from {
        scopes.push(format!("repository:{from}:pull"));
    }
    let client = Client::new(target.registry(), scopes, &options.registry)?;
    // The layers are reported as Docker reports them, by their diff IDs; the config goes up
    // after them, unseen.
    let diff_ids = image.diff_ids()?;
    let layers = image.manifest.layers().iter().enumerate().map(|(i, l)| {
        let shown = diff_ids.get(i).unwrap_or(l.digest());
        (l, shown, progress)
    });
    let config = image.manifest.config();
    let config = std::iter::once((config, config.digest(), &Silent as &dyn Progress));
    for (blob, shown, progress_of_blob) in layers.chain(config) {
        if progress.cancelled() {
            return Err(Error::Cancelled);
        }
        push_blob(
            store,
            &client,
            repo,
            blob,
            mount_from.as_deref(),
            options,
            (shown, progress_of_blob),
        )
        .context(|| format!("blob {}", blob.digest()))?;
    }
    let raw = store.read_blob(&image.manifest_digest)?;
    let url = client.url(&format!("/v2/{repo}/manifests/{}", target.api_reference()));
    let response = client.send(
        "PUT",
        &url,
        &[],
        &Body::Bytes(&raw, &image.manifest_media_type),
    )?;
    if !(200..300).contains(&response.status()) {
        return Err(client.status_error(format!("manifest {target}"), response));
    }
    if let Some(returned) = response
        .header("docker-content-digest")
        .and_then(|d| digest::parse_digest(d).ok())
    {
        digest::verify(
            || format!("manifest {target} as stored by the registry"),
            &image.manifest_digest,
            &returned,
        )?;
    }
    progress.message(&format!(
        "{}: digest: {} size: {}",
        target.tag().unwrap_or("latest"),
        image.manifest_digest,
        raw.len()
    ));
    Ok(image.manifest_digest.clone())
}

fn push_blob(
    store: &Store,
    client: &Client,
    repo: &str,
    blob: &Descriptor,
    mount_from: Option<&str>,
    options: &PushOptions,
    (shown, progress): (&Digest, &dyn Progress),
) -> Result<()> {
    let digest = blob.digest();
    let head = client.send(
        "HEAD",
        &client.url(&format!("/v2/{repo}/blobs/{digest}")),
        &[],
        &Body::Empty,
    )?;
    if head.status() == 200 {
        progress.layer(shown, LayerState::Exists);
        return Ok(());
    }
    let start = match mount_from {
        Some(from) => format!("/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"),
        None => format!("/v2/{repo}/blobs/uploads/"),
    };
    let response = client.send("POST", &client.url(&start), &[], &Body::Empty)?;
    if response.status() == 201 {
        progress.layer(
            shown,
            LayerState::Mounted {
                from: mount_from.unwrap_or_default().to_string(),
            },
        );
        return Ok(());
    }
    if response.status() != 202 {
        return Err(client.status_error(format!("upload of blob {digest}"), response));
    }
    let mut location = upload_location(client, &response)?;
    let path = store.blob_path(digest);
    let size = blob.size();
    let mut offset = 0;
    // Chunked: PATCH pieces, then a PUT with no body. Small blobs: a single PUT.
    if size > options.chunk_size {
        while offset < size {
            let len = options.chunk_size.min(size - offset);
            let range = format!("{}-{}", offset, offset + len - 1);
            let body = Body::File {
                path: path.clone(),
                offset,
                len,
            };
            let response = client.send("PATCH", &location, &[("Content-Range", &range)], &body)?;
            if response.status() != 202 {
                return Err(client.status_error(format!("upload of blob {digest}"), response));
            }
            location = upload_location(client, &response)?;
            offset += len;
            progress.layer(
                shown,
                LayerState::Transferring {
                    done: offset,
                    total: size,
                },
            );
        }
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    let put_url = format!("{location}{sep}digest={digest}");
    let body = if offset < size {
        Body::File {
            path,
            offset,
            len: size - offset,
        }
    } else {
        Body::Empty
    };
    let response = client.send("PUT", &put_url, &[], &body)?;
    if response.status() != 201 {
        return Err(client.status_error(format!("upload of blob {digest}"), response));
    }
    progress.layer(shown, LayerState::Complete);
    Ok(())
}

fn upload_location(client: &Client, response: &ureq::Response) -> Result<String> {
    let location = response.header("location").ok_or_else(|| Error::Invalid {
        object: format!("registry {}", client.registry()),
        reason: "upload answer has no Location header".into(),
    })?;
    Ok(client.resolve_location(location))
}
