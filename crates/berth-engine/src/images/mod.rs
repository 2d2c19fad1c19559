//! Images as the engine uses them, over berth-image: `run`'s pull policy, which containers use
//! which image (rmi and prune refuse by it; images and system df count with it), Docker's rules
//! for removing one, and the image operations Docker logs as events (pull, push, tag, untag,
//! delete, import, load, save). The listing, its filters and `history` are in `list`.

mod list;

pub use list::{history, list, HistoryEntry, Summary, LIST_FILTERS};

use std::collections::HashMap;
use std::io::{Read, Write};

use berth_image::archive::{self, import::Change, Format, Loaded};
use berth_image::digest::short as short_digest;
use berth_image::progress::{LayerState, Progress};
use berth_image::registry::pull::PullOptions;
use berth_image::registry::push::PushOptions;
use berth_image::registry::RegistryOptions;
use berth_image::store::ImageUse;
use berth_image::{Image, Platform, Reference, Store};
use oci_spec::image::Digest;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events::{self, Event, Kind};
use crate::filters::Filters;
use crate::records::{Record, Skipped};

/// `run`'s image: the local one, or pulled as `policy` says (`missing`, `always`, `never`), as
/// Docker does; a local image of another platform than asked does not count. `progress`
/// hears the pull's layers and Docker's two words around it: `Unable to find image 'x'
/// locally` before a pull the image's absence caused, `Status: Downloaded image for x` after.
pub fn resolve_or_pull(
    engine: &Engine,
    image: &str,
    platform: Option<&str>,
    policy: &str,
    registry: &RegistryOptions,
    progress: &dyn Progress,
) -> Result<Image> {
    let local = local(engine, image, platform)?;
    match (policy, local) {
        ("never", None) => Err(Error::Invalid(format!(
            "No such image: {image}{}: pull it first or drop --pull never",
            platform
                .map(|p| format!(" for platform {p}"))
                .unwrap_or_default()
        ))),
        ("always", _) | (_, None) => {
            let reference = Reference::parse(image)?;
            if policy != "always" {
                progress.message(&format!("Unable to find image '{reference}' locally"));
            }
            let wanted = match platform {
                Some(p) => Platform::parse(p)?,
                None => Platform::host(),
            };
            let image = pull(engine, &reference, wanted, registry, &LayersOnly(progress))?;
            progress.message(&format!("Status: Downloaded image for {reference}"));
            Ok(image)
        }
        (_, Some(image)) => Ok(image),
    }
}

/// The local image `image`, if there is one of `platform` (any, when not given); never pulls.
pub fn local(engine: &Engine, image: &str, platform: Option<&str>) -> Result<Option<Image>> {
    let wanted = platform.map(Platform::parse).transpose()?;
    match engine.images()?.resolve(image) {
        Ok(i) if wanted.as_ref().is_some_and(|w| !same_platform(&i, w)) => Ok(None),
        Ok(i) => Ok(Some(i)),
        Err(berth_image::Error::NoSuchImage(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn same_platform(image: &Image, wanted: &Platform) -> bool {
    let c = &image.config;
    c.os().to_string() == wanted.os && c.architecture().to_string() == wanted.architecture
}

/// A pull's layers, without its own messages: `run` says only its two.
struct LayersOnly<'a>(&'a dyn Progress);

impl Progress for LayersOnly<'_> {
    fn layer(&self, digest: &Digest, state: LayerState) {
        self.0.layer(digest, state);
    }
}

/// `pull`: the image from its registry into the store, and Docker's last word on it through
/// `progress`: `Status: Downloaded newer image for x`, or `Status: Image is up to date for x`
/// when the name already stood for this manifest.
pub fn pull(
    engine: &Engine,
    reference: &Reference,
    platform: Platform,
    registry: &RegistryOptions,
    progress: &dyn Progress,
) -> Result<Image> {
    let options = PullOptions {
        platform,
        registry: registry.clone(),
        ..PullOptions::default()
    };
    let store = engine.images()?;
    let before = store.find(reference)?.map(|i| i.manifest_digest);
    let image = berth_image::registry::pull::pull(&store, reference, &options, progress)?;
    let event = Event::new(Kind::Image, "pull", reference.familiar())
        .with("name", reference.familiar_name());
    events::record(engine, event);
    let status = if before.as_ref() == Some(&image.manifest_digest) {
        "Image is up to date for"
    } else {
        "Downloaded newer image for"
    };
    progress.message(&format!("Status: {status} {}", reference.familiar()));
    Ok(image)
}

/// `push`: the image to the registry as `target`; the manifest's digest there.
pub fn push(
    engine: &Engine,
    image: &Image,
    target: &Reference,
    options: &PushOptions,
    progress: &dyn Progress,
) -> Result<Digest> {
    let store = engine.images()?;
    let digest = berth_image::registry::push::push(&store, image, target, options, progress)?;
    let event =
        Event::new(Kind::Image, "push", target.familiar()).with("name", target.familiar_name());
    events::record(engine, event);
    Ok(digest)
}

/// `push -a`'s targets: every tag of the repository `name` (which must give none), sorted.
pub fn every_tag(engine: &Engine, name: &str) -> Result<Vec<(Reference, Image)>> {
    let repo = Reference::parse_named(name)?;
    if repo.tag().is_some() || repo.digest().is_some() {
        return Err(Error::Invalid(
            "tag can't be used with --all-tags/-a".into(),
        ));
    }
    let mut targets: Vec<(Reference, Image)> = engine
        .images()?
        .images()?
        .into_iter()
        .flat_map(|image| {
            let tags = image.repo_tags.iter().filter(|t| t.name() == repo.name());
            tags.map(|t| (t.clone(), image.clone())).collect::<Vec<_>>()
        })
        .collect();
    if targets.is_empty() {
        return Err(Error::Invalid(format!(
            "An image does not exist locally with the tag: {}",
            repo.familiar_name()
        )));
    }
    targets.sort_by_key(|(t, _)| t.to_string());
    Ok(targets)
}

/// `tag`: another name for the image `source`.
pub fn tag(engine: &Engine, source: &str, target: &str) -> Result<()> {
    let name = Reference::parse(target)?;
    if name.digest().is_some() {
        return Err(Error::Invalid(format!(
            "tag {target}: a tag cannot name a digest; use NAME[:TAG]"
        )));
    }
    let store = engine.images()?;
    let image = store.resolve(source)?;
    store.tag(&image, &name)?;
    events::record(engine, image_event(&image, "tag", &name));
    Ok(())
}

fn image_event(image: &Image, action: &str, name: &Reference) -> Event {
    Event::new(Kind::Image, action, image.id().to_string()).with("name", name.familiar())
}

/// `import`: a root filesystem tarball as a one-layer image.
pub fn import(
    engine: &Engine,
    input: impl Read,
    changes: &[Change],
    name: Option<&Reference>,
    source: &str,
) -> Result<Image> {
    let store = engine.images()?;
    let image = archive::import::import(&store, input, changes, name, source)?;
    let mut event = Event::new(Kind::Image, "import", image.id().to_string());
    if let Some(name) = name {
        event = event.with("name", name.familiar());
    }
    events::record(engine, event);
    Ok(image)
}

/// `load`: the images of a docker-archive or an oci-archive.
pub fn load(engine: &Engine, input: impl Read, progress: &dyn Progress) -> Result<Vec<Loaded>> {
    let loaded = archive::load(&engine.images()?, input, progress)?;
    for image in &loaded {
        let mut event = Event::new(Kind::Image, "load", image.id.to_string());
        if let Some(name) = image.names.first() {
            event = event.with("name", name.familiar());
        }
        events::record(engine, event);
    }
    Ok(loaded)
}

/// `save`: the images `inputs` name, each under the name given (or all its tags when given by
/// id), as a docker-archive or an oci-archive.
pub fn save(engine: &Engine, inputs: &[String], format: Format, out: impl Write) -> Result<()> {
    let store = engine.images()?;
    let images = inputs
        .iter()
        .map(|input| {
            let image = store.resolve(input)?;
            let names = match Reference::parse(input) {
                Ok(r) if image.repo_tags.contains(&r) => vec![r],
                _ => image.repo_tags.clone(),
            };
            Ok((image, names))
        })
        .collect::<Result<Vec<_>>>()?;
    match format {
        Format::Docker => archive::docker::save(&store, &images, out)?,
        Format::Oci => archive::oci::save(&store, &images, out)?,
    }
    for (image, names) in &images {
        let mut event = Event::new(Kind::Image, "save", image.id().to_string());
        if let Some(name) = names.first() {
            event = event.with("name", name.familiar());
        }
        events::record(engine, event);
    }
    Ok(())
}

/// Which containers use each image.
#[derive(Debug, Default)]
pub struct Usage {
    /// Image id (`sha256:...`) -> its containers.
    pub by_image: HashMap<String, ImageUse>,
    /// Containers whose record could not be read (not counted).
    pub skipped: Vec<Skipped>,
}

impl Usage {
    pub fn of(&self, id: &Digest) -> ImageUse {
        self.by_image
            .get(&id.to_string())
            .cloned()
            .unwrap_or_default()
    }

    /// The table for these containers' records.
    pub fn of_records<'a>(records: impl IntoIterator<Item = &'a Record>) -> Usage {
        let mut usage = Usage::default();
        for record in records {
            let entry = usage.by_image.entry(record.image_id.clone()).or_default();
            entry.containers += 1;
            entry.running += usize::from(record.state.status.is_live());
        }
        usage
    }
}

/// The usage table as the containers' records say now.
pub fn usage(engine: &Engine) -> Result<Usage> {
    let listing = engine.containers.all()?;
    Ok(Usage {
        skipped: listing.skipped,
        ..Usage::of_records(&listing.records)
    })
}

/// What `rmi` did, in the order Docker prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(Reference),
    Deleted(Digest),
}

/// `rmi`: by name, untags (and deletes an image left without one); by id, deletes. Never an
/// image a container uses, unless `force`, which untags it and keeps it for the containers;
/// never one a running container uses. Unreferenced blobs go after.
pub fn remove(engine: &Engine, input: &str, force: bool, usage: &Usage) -> Result<Vec<Removed>> {
    let store = engine.images()?;
    let image = store.resolve(input)?;
    let mut removed = remove_one(&store, &image, input, force, usage)?;
    for r in &removed {
        let event = match r {
            Removed::Untagged(name) => image_event(&image, "untag", name),
            Removed::Deleted(id) => Event::new(Kind::Image, "delete", id.to_string()),
        };
        events::record(engine, event);
    }
    let deleted = removed.iter().any(|r| matches!(r, Removed::Deleted(_)));
    // Read before the collection; the removal is done whatever this says.
    let diff_ids = image.diff_ids().unwrap_or_default();
    store.gc()?;
    if deleted {
        // As dockerd: every layer the image took with it, by its chain ID, top first.
        let chain = chain_ids(&diff_ids);
        for (diff_id, chain_id) in diff_ids.iter().zip(chain).rev() {
            if !store.has_layer(diff_id) {
                removed.push(Removed::Deleted(chain_id));
            }
        }
    }
    Ok(removed)
}

/// The OCI chain IDs of a stack of layers (bottom first): the first is its diff ID, each next
/// one `sha256(parent + " " + diff ID)`.
fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    use sha2::{Digest as _, Sha256};
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => {
                let hash = Sha256::digest(format!("{parent} {diff_id}"));
                let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
                match format!("sha256:{hex}").parse() {
                    Ok(d) => d,
                    Err(_) => continue,
                }
            }
        };
        out.push(next);
    }
    out
}

fn remove_one(
    store: &Store,
    image: &Image,
    input: &str,
    force: bool,
    usage: &Usage,
) -> Result<Vec<Removed>> {
    let conflict = |what: String| {
        Err(Error::Conflict(format!(
            "conflict: unable to delete {what}"
        )))
    };
    let by_name = Reference::parse(input)
        .ok()
        .filter(|r| r.tag().is_some() && matches!(store.find(r), Ok(Some(_))));
    let used = usage.of(image.id());
    let id = short_digest(image.id());
    if let Some(name) = &by_name {
        if image.repo_tags.len() > 1 {
            store.untag(name)?;
            return Ok(vec![Removed::Untagged(name.clone())]);
        }
    } else if image.repo_tags.len() > 1 && !force {
        return conflict(format!(
            "{id} (must be forced) - image is referenced in multiple repositories"
        ));
    }
    if used.running > 0 && by_name.is_none() {
        return conflict(format!(
            "{id} (cannot be forced) - image is being used by {} running container(s)",
            used.running
        ));
    }
    let mut removed = Vec::new();
    if used.in_use() {
        if !force {
            return conflict(format!(
                "{input} (must be forced) - image {id} is being used by {} container(s)",
                used.containers
            ));
        }
        // Forced: the names go, the image stays (untagged) under its containers' roots.
        for tag in &image.repo_tags {
            store.untag_keeping_image(tag)?;
            removed.push(Removed::Untagged(tag.clone()));
        }
        return Ok(removed);
    }
    let names = image.repo_tags.iter().chain(&image.repo_digests);
    removed.extend(names.cloned().map(Removed::Untagged));
    // Every manifest of this image ID goes: Docker has one image per ID.
    for same in store.images()?.iter().filter(|i| i.id() == image.id()) {
        store.remove_image(&same.manifest_digest)?;
    }
    removed.push(Removed::Deleted(image.id().clone()));
    Ok(removed)
}

/// The filters `image prune` takes; `dangling=false` prunes every unused image, not only the
/// untagged ones (what the command line's `-a` asks).
pub const PRUNE_FILTERS: &[&str] = &["dangling", "label", "label!", "until"];

/// `image prune`: untagged images (every one with `dangling=false`) that no container uses
/// and that `filters` let through; what was untagged and deleted, in Docker's order, and the
/// bytes freed.
pub fn prune(engine: &Engine, filters: &Filters, usage: &Usage) -> Result<(Vec<Removed>, u64)> {
    let all = filters.bool("dangling")? == Some(false);
    let until = list::Until::of(filters)?;
    let store = engine.images()?;
    let mut removed = Vec::new();
    for image in store.images()? {
        let unused = !usage.of(image.id()).in_use();
        if (all || image.repo_tags.is_empty())
            && unused
            && filters.labels_match(&list::labels(&image))
            && until.admits(&image)
        {
            for name in image.repo_tags.iter().chain(&image.repo_digests) {
                events::record(engine, image_event(&image, "untag", name));
                removed.push(Removed::Untagged(name.clone()));
            }
            store.remove_image(&image.manifest_digest)?;
            let deleted = Removed::Deleted(image.id().clone());
            // One config under two manifests (pulled, then loaded) is one image: one delete.
            if !removed.contains(&deleted) {
                events::record(
                    engine,
                    Event::new(Kind::Image, "delete", image.id().to_string()),
                );
                removed.push(deleted);
            }
        }
    }
    Ok((removed, store.gc()?.bytes_freed))
}

/// The filters `search` takes.
pub const SEARCH_FILTERS: &[&str] = &["stars", "is-official", "is-automated"];

/// `search`: up to `limit` (Docker's default 25) repositories of the registry `term` names
/// (`[REGISTRY/]TERM`) whose name holds the term, that `filters` let through.
pub fn search(
    term: &str,
    limit: Option<usize>,
    filters: &Filters,
    options: &RegistryOptions,
) -> Result<Vec<berth_image::registry::search::Found>> {
    let stars: u64 = match filters.get("stars").last() {
        Some(s) => s
            .parse()
            .map_err(|_| Error::Invalid(format!("invalid filter 'stars={s}': give a number")))?,
        None => 0,
    };
    let official = filters.bool("is-official")?;
    let automated = filters.bool("is-automated")?;
    let limit = limit.unwrap_or(25);
    if !(1..=100).contains(&limit) {
        return Err(Error::Invalid(format!(
            "limit {limit} is outside the range of [1, 100]"
        )));
    }
    let found = berth_image::registry::search::search(term, limit, options)?;
    Ok(found
        .into_iter()
        .filter(|f| f.star_count >= stars)
        .filter(|f| official.is_none_or(|o| o == f.is_official))
        .filter(|f| automated.is_none_or(|a| a == f.is_automated))
        .collect())
}

#[cfg(test)]
mod tests {
    //! Images a container uses survive `rmi` and `image prune`.

    use super::*;

    #[test]
    fn chain_ids_are_the_oci_specs() {
        let a: Digest = "sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
            .parse()
            .unwrap();
        let b: Digest = "sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
            .parse()
            .unwrap();
        // `printf '<a> <b>' | sha256sum`
        let ab = "sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676";
        let chain = chain_ids(&[a.clone(), b]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1].to_string(), ab);
    }

    fn one_file_tar() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(2);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, "f", &b"hi"[..]).unwrap();
        builder.into_inner().unwrap()
    }

    #[test]
    fn images_in_use_are_kept_unless_forced_and_never_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), std::path::Path::new("/bin/true")).unwrap();
        let name = Reference::parse("used:1").unwrap();
        let image = import(&engine, &one_file_tar()[..], &[], Some(&name), "test").unwrap();
        let id = image.id().clone();
        let with = |containers, running| {
            let mut usage = Usage::default();
            let uses = ImageUse {
                containers,
                running,
            };
            usage.by_image.insert(id.to_string(), uses);
            usage
        };
        let (stopped, running) = (with(1, 0), with(1, 1));
        let e = remove(&engine, "used:1", false, &stopped)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is being used by 1 container"), "{e}");
        let e = remove(&engine, id.as_ref(), true, &running)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be forced"), "{e}");
        let store = engine.images().unwrap();
        assert!(store.find(&name).unwrap().is_some());

        // Forced: the name goes, the image stays (untagged) with its layer.
        let removed = remove(&engine, "used:1", true, &stopped).unwrap();
        assert_eq!(removed, vec![Removed::Untagged(name.clone())]);
        assert!(store.find(&name).unwrap().is_none());
        let left = store.images().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id(), &id);
        assert!(store.has_layer(&left[0].diff_ids().unwrap()[0]));

        let all = Filters::parse(&["dangling=false".into()], PRUNE_FILTERS).unwrap();
        prune(&engine, &all, &stopped).unwrap();
        assert_eq!(store.images().unwrap().len(), 1);
        // Once no container uses it, the dangling image is pruned.
        let (deleted, _) = prune(&engine, &Filters::default(), &Usage::default()).unwrap();
        assert_eq!(deleted, vec![Removed::Deleted(id)]);
        assert!(store.images().unwrap().is_empty());
    }
}
