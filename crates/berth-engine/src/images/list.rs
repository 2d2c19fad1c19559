//! What `images` lists and `image prune` weighs: Docker's filters over the store (dangling,
//! reference, label, before, since, until), each image's summary in Docker's shape, and
//! `history`.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use berth_image::{Image, Reference};
use serde::Serialize;

use crate::engine::Engine;
use crate::error::Result;
use crate::filters::{glob_matches, Filters};

/// The filters `images` takes.
pub const LIST_FILTERS: &[&str] = &[
    "before",
    "dangling",
    "label",
    "label!",
    "reference",
    "since",
    "until",
];

/// An image as Docker lists it (its `ImageSummary`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Seconds since the epoch.
    pub created: i64,
    pub size: u64,
    /// Bytes of its layers that other images share; -1 unless counted (`system df`).
    pub shared_size: i64,
    pub labels: BTreeMap<String, String>,
    /// How many containers use it; -1 unless counted (`system df`).
    pub containers: i64,
}

/// `images`: the images `filters` (of [`LIST_FILTERS`]) let through, newest first, each with
/// the names the `reference` filter matched (all of them without one), as Docker lists them.
pub fn list(engine: &Engine, filters: &Filters) -> Result<Vec<Summary>> {
    let store = engine.images()?;
    let dangling = filters.bool("dangling")?;
    let until = Until::of(filters)?;
    let bound = |key| -> Result<Option<SystemTime>> {
        let last = filters.get(key).last();
        Ok(last
            .map(|v| store.resolve(v))
            .transpose()?
            .map(|i| created(&i)))
    };
    let (before, since) = (bound("before")?, bound("since")?);
    let patterns = filters.get("reference");
    let wanted = |r: &Reference| {
        patterns.is_empty()
            || patterns
                .iter()
                .any(|p| glob_matches(p, &r.familiar()) || glob_matches(p, &r.familiar_name()))
    };
    let mut images = store.images()?;
    images.sort_by_key(|i| std::cmp::Reverse(created(i)));
    let mut out: Vec<Summary> = Vec::new();
    for image in &images {
        let at = created(image);
        if before.is_some_and(|b| at >= b)
            || since.is_some_and(|s| at <= s)
            || !until.admits(image)
            || !filters.labels_match(&labels(image))
            // One config under two manifests (pulled, then loaded) is one image.
            || out.iter().any(|s| s.id == image.id().to_string())
        {
            continue;
        }
        let names = |refs: &[Reference]| -> Vec<String> {
            refs.iter()
                .filter(|r| wanted(r))
                .map(Reference::familiar)
                .collect()
        };
        let (repo_tags, repo_digests) = (names(&image.repo_tags), names(&image.repo_digests));
        let untagged = repo_tags.is_empty() && repo_digests.is_empty();
        if untagged && (dangling == Some(false) || !patterns.is_empty())
            || dangling == Some(true) && !repo_tags.is_empty()
        {
            continue;
        }
        out.push(Summary {
            id: image.id().to_string(),
            parent_id: String::new(),
            repo_tags,
            repo_digests,
            created: unix(at),
            size: image.size(&store),
            shared_size: -1,
            labels: labels(image),
            containers: -1,
        });
    }
    Ok(out)
}

/// The image's labels (its config's).
pub fn labels(image: &Image) -> BTreeMap<String, String> {
    let config = image.config.config().as_ref();
    let labels = config.and_then(|c| c.labels().clone()).unwrap_or_default();
    labels.into_iter().collect()
}

/// When the image was built; the epoch when its config does not say.
fn created(image: &Image) -> SystemTime {
    image.created().unwrap_or(UNIX_EPOCH)
}

fn unix(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The `until` filter: images built before the time (the last one given).
pub(super) struct Until(Option<SystemTime>);

impl Until {
    pub(super) fn of(filters: &Filters) -> Result<Until> {
        let nanos = filters.until()?;
        Ok(Until(nanos.map(|n| {
            UNIX_EPOCH + std::time::Duration::from_nanos(u64::try_from(n).unwrap_or(0))
        })))
    }

    pub(super) fn admits(&self, image: &Image) -> bool {
        self.0.is_none_or(|until| created(image) < until)
    }
}

/// One step of an image's history, as Docker's `GET /images/{name}/history` gives it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryEntry {
    /// The image's ID for its last step, `<missing>` for the others (they are no images).
    pub id: String,
    /// Seconds since the epoch; 0 when unknown.
    pub created: i64,
    pub created_by: String,
    /// The image's names, on its last step only.
    pub tags: Option<Vec<String>>,
    pub size: u64,
    pub comment: String,
}

/// `history`: the build steps in the image's config, newest first, each with the size of the
/// layer it made (0 for the steps that made none).
pub fn history(engine: &Engine, input: &str) -> Result<Vec<HistoryEntry>> {
    let store = engine.images()?;
    let image = store.resolve(input)?;
    let diff_ids = image.diff_ids()?;
    let steps = image.config.history().clone().unwrap_or_default();
    let mut layer = diff_ids.len();
    let mut out = Vec::new();
    for (i, step) in steps.iter().enumerate().rev() {
        let size = if step.empty_layer().unwrap_or(false) || layer == 0 {
            0
        } else {
            layer -= 1;
            store.layer_size(&diff_ids[layer])
        };
        let last = i + 1 == steps.len();
        let tags: Vec<String> = image.repo_tags.iter().map(Reference::familiar).collect();
        let created = step.created().as_deref().and_then(|c| {
            humantime::parse_rfc3339_weak(c.trim_end_matches('Z'))
                .or_else(|_| humantime::parse_rfc3339(c))
                .ok()
        });
        out.push(HistoryEntry {
            id: if last {
                image.id().to_string()
            } else {
                "<missing>".into()
            },
            created: created.map_or(0, unix),
            created_by: step.created_by().clone().unwrap_or_default(),
            tags: (last && !tags.is_empty()).then_some(tags),
            size,
            comment: step.comment().clone().unwrap_or_default(),
        });
    }
    Ok(out)
}
