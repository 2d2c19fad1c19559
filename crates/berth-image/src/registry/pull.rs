//! Pull: resolve a reference to one platform's manifest, then fetch the config and the
//! layers concurrently, each layer unpacked while it downloads and verified twice
//! (compressed digest, uncompressed diff ID) before it enters the store. A broken download
//! resumes where it stopped (HTTP Range); other transient failures retry the layer.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use oci_spec::image::{
    Descriptor, Digest, ImageConfiguration, ImageIndex, ImageManifest, MediaType,
};

use super::resume::ResumingBody;
use super::{Client, RegistryOptions};
use crate::compress;
use crate::digest::{self, parse_digest, TeeReader};
use crate::error::{Error, Result, ResultExt};
use crate::platform::{self, Platform};
use crate::progress::{LayerState, Progress, ProgressReader};
use crate::reference::Reference;
use crate::store::{Image, Store};
use crate::{pipe, unpack};

const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// How to pull.
#[derive(Clone, Debug)]
pub struct PullOptions {
    pub platform: Platform,
    /// Layers downloaded at once (Docker's default is 3).
    pub max_concurrent: usize,
    /// Attempts per layer after the first, with exponential backoff.
    pub retries: u32,
    pub registry: RegistryOptions,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::host(),
            max_concurrent: 3,
            retries: 3,
            registry: RegistryOptions::default(),
        }
    }
}

/// Pulls `reference` into the store and returns the image.
pub fn pull(
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
    progress: &dyn Progress,
) -> Result<Image> {
    pull_inner(store, reference, options, progress)
        .map_err(|e| store.explain_no_space(e))
        .context(|| format!("pull {reference}"))
}

/// A resolved manifest: the top digest (an index's, when there is one), the image manifest's
/// descriptor and its bytes.
type Resolved = (Digest, Descriptor, Vec<u8>);

/// Where the image comes from: the first of Docker Hub's mirrors that has it (as Docker's
/// `registry-mirrors`), else its own registry; the client and the resolved manifest.
fn source(reference: &Reference, options: &PullOptions) -> Result<(Client, Resolved)> {
    let repo = reference.repository();
    let scopes = || vec![format!("repository:{repo}:pull")];
    if reference.registry() == crate::reference::DOCKER_HUB {
        for mirror in &options.registry.mirrors {
            let Ok(client) = Client::new(mirror, scopes(), &options.registry) else {
                continue;
            };
            // A mirror that lacks it or cannot be reached: the next, then the Hub.
            if let Ok(found) = resolve_manifest(&client, reference, &options.platform) {
                return Ok((client, found));
            }
        }
    }
    let client = Client::new(reference.registry(), scopes(), &options.registry)?;
    let found = resolve_manifest(&client, reference, &options.platform)?;
    Ok((client, found))
}

fn pull_inner(
    store: &Store,
    reference: &Reference,
    options: &PullOptions,
    progress: &dyn Progress,
) -> Result<Image> {
    let repo = reference.repository();
    let _hold = store.lock_shared()?;
    let (client, (top_digest, manifest_desc, manifest_raw)) = source(reference, options)?;
    let manifest: ImageManifest =
        serde_json::from_slice(&manifest_raw).map_err(|source| Error::Json {
            object: format!("manifest {}", manifest_desc.digest()),
            source,
        })?;
    for layer in manifest.layers() {
        compress::check_layer_media_type(
            || format!("layer {}", layer.digest()),
            layer.media_type().as_ref(),
        )?;
    }
    let config_digest = manifest.config().digest().clone();
    if store.has_blob(&config_digest) {
        check_stored_size(store, manifest.config())?;
    } else {
        let bytes = client.get_small_blob(repo, manifest.config())?;
        store.put_blob(
            &format!("config {config_digest}"),
            Some(&config_digest),
            &bytes,
        )?;
    }
    let config: ImageConfiguration = serde_json::from_slice(&store.read_blob(&config_digest)?)
        .map_err(|source| Error::Json {
            object: format!("config {config_digest}"),
            source,
        })?;
    let diff_ids: Vec<Digest> = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| parse_digest(d))
        .collect::<Result<_>>()?;
    if diff_ids.len() != manifest.layers().len() {
        return Err(Error::Invalid {
            object: format!("manifest {}", manifest_desc.digest()),
            reason: format!(
                "{} layers but the config lists {} diff IDs",
                manifest.layers().len(),
                diff_ids.len()
            ),
        });
    }
    let jobs: Vec<(&Descriptor, &Digest)> = manifest.layers().iter().zip(&diff_ids).collect();
    fetch_layers(store, &client, repo, &jobs, options, progress)?;
    if progress.cancelled() {
        return Err(Error::Cancelled);
    }
    store.put_blob(
        &format!("manifest {}", manifest_desc.digest()),
        Some(manifest_desc.digest()),
        &manifest_raw,
    )?;
    let name = reference.tag().map(|tag| reference.with_tag(tag));
    let repo_digest = reference.with_digest(top_digest.clone());
    store.commit_image(&manifest_desc, name.as_ref(), Some(&repo_digest))?;
    progress.message(&format!("Digest: {top_digest}"));
    store
        .find(name.as_ref().unwrap_or(&repo_digest))?
        .ok_or_else(|| Error::NoSuchImage(reference.to_string()))
}

/// Fetches what the reference points at and, for an index, the manifest for our platform.
/// Returns the digest the reference resolved to (for RepoDigests), the platform manifest's
/// descriptor and its bytes.
fn resolve_manifest(client: &Client, reference: &Reference, wanted: &Platform) -> Result<Resolved> {
    let repo = reference.repository();
    let (raw, media_type, digest) = client.get_manifest(repo, &reference.api_reference())?;
    if let Some(expected) = reference.digest() {
        digest::verify(|| format!("manifest {reference}"), expected, &digest)?;
    }
    if INDEX_TYPES.contains(&media_type.as_str()) {
        let index: ImageIndex = serde_json::from_slice(&raw).map_err(|source| Error::Json {
            object: format!("index {digest}"),
            source,
        })?;
        let chosen = platform::select(index.manifests(), wanted)?;
        let (child_raw, child_type, child_digest) =
            client.get_manifest(repo, chosen.digest().as_ref())?;
        digest::verify(
            || format!("manifest {}", chosen.digest()),
            chosen.digest(),
            &child_digest,
        )?;
        if child_raw.len() as u64 != chosen.size() {
            return Err(Error::SizeMismatch {
                object: format!("manifest {}", chosen.digest()),
                expected: chosen.size(),
                got: child_raw.len() as u64,
            });
        }
        if !MANIFEST_TYPES.contains(&child_type.as_str()) {
            return Err(Error::UnsupportedMediaType {
                object: format!("manifest {child_digest}"),
                media_type: child_type,
            });
        }
        let desc = Descriptor::new(
            MediaType::from(child_type.as_str()),
            child_raw.len() as u64,
            child_digest,
        );
        return Ok((digest, desc, child_raw));
    }
    if !MANIFEST_TYPES.contains(&media_type.as_str()) {
        return Err(Error::UnsupportedMediaType {
            object: format!("manifest {reference}"),
            media_type,
        });
    }
    let desc = Descriptor::new(
        MediaType::from(media_type.as_str()),
        raw.len() as u64,
        digest.clone(),
    );
    Ok((digest, desc, raw))
}

/// Runs the layer jobs on up to `max_concurrent` threads; the first failure stops the rest.
fn fetch_layers(
    store: &Store,
    client: &Client,
    repo: &str,
    jobs: &[(&Descriptor, &Digest)],
    options: &PullOptions,
    progress: &dyn Progress,
) -> Result<()> {
    for (layer, diff_id) in jobs {
        // A layer already here is only `Already exists`, as Docker says it.
        if !(store.has_blob(layer.digest()) && store.has_layer(diff_id)) {
            progress.layer(layer.digest(), LayerState::Waiting { size: layer.size() });
        }
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let workers = options.max_concurrent.clamp(1, jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= jobs.len() || failed.load(Ordering::SeqCst) {
                    break;
                }
                let (layer, diff_id) = jobs[i];
                if let Err(e) =
                    fetch_layer_with_retry(store, client, repo, layer, diff_id, options, progress)
                {
                    failed.store(true, Ordering::SeqCst);
                    first_error
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(e);
                    break;
                }
            });
        }
    });
    match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn fetch_layer_with_retry(
    store: &Store,
    client: &Client,
    repo: &str,
    layer: &Descriptor,
    diff_id: &Digest,
    options: &PullOptions,
    progress: &dyn Progress,
) -> Result<()> {
    let mut attempt = 0;
    loop {
        match fetch_layer(
            store,
            client,
            repo,
            layer,
            diff_id,
            options.retries,
            progress,
        ) {
            Ok(()) => return Ok(()),
            Err(_) if progress.cancelled() => return Err(Error::Cancelled),
            Err(e) if e.is_transient() && attempt < options.retries => {
                attempt += 1;
                progress.layer(
                    layer.digest(),
                    LayerState::Retrying {
                        attempt,
                        error: e.to_string(),
                    },
                );
                std::thread::sleep(Duration::from_millis(500 << attempt));
            }
            Err(e) => return Err(e).context(|| format!("layer {}", layer.digest())),
        }
    }
}

/// Streams one layer: HTTP body -> blob temp file (hashed) -> decoder -> hashed -> unpack.
/// A broken connection is resumed with a Range request up to `resumes` times.
fn fetch_layer(
    store: &Store,
    client: &Client,
    repo: &str,
    layer: &Descriptor,
    diff_id: &Digest,
    resumes: u32,
    progress: &dyn Progress,
) -> Result<()> {
    let digest = layer.digest();
    if store.has_blob(digest) {
        check_stored_size(store, layer)?;
        if store.has_layer(diff_id) {
            progress.layer(digest, LayerState::Exists);
        } else {
            store.ensure_layer(digest, diff_id)?;
            progress.layer(digest, LayerState::Complete);
        }
        return Ok(());
    }
    let response = client.get_blob(repo, layer)?;
    let body = ProgressReader {
        inner: ResumingBody::new(client, repo, digest, layer.size(), response, resumes),
        progress,
        digest,
        total: layer.size(),
        done: 0,
        reported: 0,
    };
    let mut blob = store.blob_writer()?;
    let temp_layer = store.temp_layer()?;
    let diff_dir = temp_layer.diff_dir();
    let layer_name = diff_id.to_string();
    // Three stages on three threads, as `curl | gzip -dc | tar -x` would run: this one
    // downloads, keeps and hashes the blob; the next inflates and hashes what it is handed;
    // the last untars. A layer's work is then never one thread's, which on a machine busy
    // with other work is what decides how much of the CPU the pull gets.
    let (ztx, zrx) = pipe::pipe(4);
    let (tx, rx) = pipe::pipe(4);
    let (fetched, produced, unpacked) = std::thread::scope(|scope| {
        let unpacker = scope.spawn(|| unpack::unpack_layer(rx, &diff_dir, &layer_name));
        let inflater = scope.spawn(|| inflate_into(zrx, tx, digest, diff_id));
        let fetched = fetch_into(body, &mut blob, ztx, digest);
        let panicked = |stage: &str| Error::Invalid {
            object: format!("layer {digest}"),
            reason: format!("the {stage} thread panicked"),
        };
        let produced = inflater.join().unwrap_or_else(|_| Err(panicked("inflate")));
        let unpacked = unpacker.join().unwrap_or_else(|_| Err(panicked("unpack")));
        (fetched, produced, unpacked)
    });
    let size = match (fetched, produced, unpacked) {
        (Ok(()), Ok(()), Ok(size)) => size,
        (fetched, produced, unpacked) => return Err(first_failure(fetched, produced, unpacked)),
    };
    blob.commit(&format!("blob {digest}"), Some(digest), Some(layer.size()))?;
    temp_layer.commit(diff_id, size)?;
    progress.layer(digest, LayerState::Complete);
    Ok(())
}

/// The error that stopped a layer's stages: a broken pipe only means the stage after it
/// stopped first, so the real error is the first stage's that is not one.
fn first_failure(fetched: Result<()>, produced: Result<()>, unpacked: Result<u64>) -> Error {
    let broken = |e: &Error| matches!(e, Error::Read { source, .. } if source.kind() == io::ErrorKind::BrokenPipe);
    let errors = [fetched.err(), produced.err(), unpacked.err()];
    let mut errors = errors.into_iter().flatten();
    let first = errors.next();
    match first {
        Some(e) if broken(&e) => errors.find(|e| !broken(e)).unwrap_or(e),
        Some(e) => e,
        None => Error::Cancelled,
    }
}

/// A blob the store already holds must still be the size this manifest declares (the OCI
/// image spec's rule), so an image pulls or fails the same whatever the store held before.
fn check_stored_size(store: &Store, descriptor: &Descriptor) -> Result<()> {
    let path = store.blob_path(descriptor.digest());
    let got = std::fs::metadata(&path)
        .map_err(Error::io("stat blob", &path))?
        .len();
    if got == descriptor.size() {
        return Ok(());
    }
    Err(Error::SizeMismatch {
        object: format!("blob {}", descriptor.digest()),
        expected: descriptor.size(),
        got,
    })
}

/// Streams the blob body into the blob file (hashed by the writer) and down the pipe to
/// the inflater.
fn fetch_into(
    body: impl io::Read,
    blob: &mut crate::store::BlobWriter,
    mut ztx: pipe::PipeWriter,
    digest: &Digest,
) -> Result<()> {
    let read_err = |source: io::Error| Error::Read {
        object: format!("blob {digest}"),
        source,
    };
    let mut tee = TeeReader::new(body, blob);
    ztx.fill_from(&mut tee, |_| {}).map_err(read_err)?;
    ztx.close().map_err(read_err)
}

/// Inflates the blob's bytes from the fetching thread into the pipe to the untarring
/// thread, checking the inflated content against the diff ID.
fn inflate_into(
    compressed: pipe::PipeReader,
    mut tx: pipe::PipeWriter,
    digest: &Digest,
    diff_id: &Digest,
) -> Result<()> {
    let read_err = |source: io::Error| Error::Read {
        object: format!("blob {digest}"),
        source,
    };
    // The pipe is its own buffer: the inflater reads the fetched chunks in place.
    let mut decoder = compress::decoder(compressed).map_err(read_err)?;
    // Inflated straight into the pipe's chunks and hashed there: one pass over each byte
    // after the inflater's.
    let mut hasher = digest::Hasher::new();
    tx.fill_from(&mut decoder, |chunk| hasher.update(chunk))
        .map_err(read_err)?;
    tx.close().map_err(read_err)?;
    let actual = hasher.finish();
    // The compressed stream may go on past the end of the data (padding, a trailer): it
    // is part of the blob and must be fetched and kept.
    io::copy(&mut decoder.into_inner(), &mut io::sink()).map_err(read_err)?;
    digest::verify(
        || format!("layer {digest}: uncompressed content (diff ID)"),
        diff_id,
        &actual,
    )
}
