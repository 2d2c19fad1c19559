//! `system df`: what images, containers and volumes hold on disk, in the shape of Docker's
//! `GET /system/df`, and the four lines `docker system df` draws from it (its formulas, so
//! that `berth system df` and the docker CLI over the API print the same).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::engine::Engine;
use crate::error::Result;
use crate::filters::Filters;
use crate::images::{self, Summary, Usage};
use crate::records::{Record, Skipped};
use crate::volumes::{self, Volume};

/// Docker's `system.DiskUsage`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskUsage {
    /// Every layer in the store, once.
    pub layers_size: u64,
    pub images: Vec<Summary>,
    pub containers: Vec<ContainerUsage>,
    pub volumes: Vec<VolumeUsage>,
    /// The build cache's records and cache mounts.
    pub build_cache: Vec<crate::build_cache::Entry>,
    /// Containers whose record could not be read (not counted).
    #[serde(skip)]
    pub skipped: Vec<Skipped>,
}

/// A container as `system df` lists it: the fields of Docker's container summary it reads.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerUsage {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub state: String,
    /// As `ps` says it: `Up 2 minutes`, `Exited (0) 5 seconds ago`.
    pub status: String,
    /// Bytes in its writable layer.
    pub size_rw: u64,
    /// Its writable layer and its image's.
    pub size_root_fs: u64,
    pub labels: BTreeMap<String, String>,
    /// As inspect's (`system df -v` counts the local driver's volumes among them).
    pub mounts: Vec<serde_json::Value>,
}

/// A volume with what `system df` adds to it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeUsage {
    #[serde(flatten)]
    pub volume: Volume,
    pub usage_data: VolumeData,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeData {
    pub size: u64,
    /// How many containers refer to it.
    pub ref_count: usize,
}

/// Measures everything (walking every container's writable layer and every volume).
pub fn disk_usage(engine: &Engine) -> Result<DiskUsage> {
    let listing = crate::lifecycle::list(engine)?;
    let usage = Usage::of_records(&listing.records);
    let store = engine.images()?;
    let mut images = images::list(engine, &Filters::default())?;
    // Which images hold each layer, for the layers' total and each image's shared part.
    let mut holders: HashMap<String, usize> = HashMap::new();
    let mut layers_of: HashMap<String, Vec<String>> = HashMap::new();
    for image in store.images()? {
        let id = image.id().to_string();
        if layers_of.contains_key(&id) {
            continue;
        }
        let layers: Vec<String> = image.diff_ids()?.iter().map(|d| d.to_string()).collect();
        for layer in &layers {
            *holders.entry(layer.clone()).or_default() += 1;
        }
        layers_of.insert(id, layers);
    }
    let layer_size =
        |layer: &str| berth_image::digest::parse_digest(layer).map_or(0, |d| store.layer_size(&d));
    for summary in &mut images {
        let layers = layers_of.get(&summary.id).map_or(&[][..], Vec::as_slice);
        let shared: u64 = layers
            .iter()
            .filter(|l| holders.get(*l).is_some_and(|n| *n > 1))
            .map(|l| layer_size(l))
            .sum();
        summary.shared_size = i64::try_from(shared).unwrap_or(i64::MAX);
        let uses = usage.by_image.get(&summary.id).map_or(0, |u| u.containers);
        summary.containers = i64::try_from(uses).unwrap_or(i64::MAX);
    }
    let sizes: HashMap<&str, u64> = images.iter().map(|i| (i.id.as_str(), i.size)).collect();
    let containers = listing
        .records
        .iter()
        .map(|r| container(engine, r, sizes.get(r.image_id.as_str()).copied()))
        .collect();
    let volumes = volumes::list(engine)?
        .into_iter()
        .map(|volume| {
            let ref_count = listing
                .records
                .iter()
                .filter(|r| volumes::uses(r, &volume.name))
                .count();
            let size = volumes::disk_usage(&volume.mountpoint);
            VolumeUsage {
                volume,
                usage_data: VolumeData { size, ref_count },
            }
        })
        .collect();
    let build_cache =
        crate::build_cache::entries(&engine.root, &store, &|l| holders.contains_key(l));
    Ok(DiskUsage {
        layers_size: holders.keys().map(|l| layer_size(l)).sum(),
        images,
        containers,
        volumes,
        build_cache,
        skipped: listing.skipped,
    })
}

fn container(engine: &Engine, record: &Record, image_size: Option<u64>) -> ContainerUsage {
    let size_rw = volumes::disk_usage(&engine.containers.dir(&record.id).join("upper"));
    let created = humantime::parse_rfc3339_weak(record.created.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    let state = record.state.status.as_str().to_string();
    ContainerUsage {
        id: record.id.clone(),
        names: vec![format!("/{}", record.name)],
        image: record.image.clone(),
        image_id: record.image_id.clone(),
        command: crate::ps::command(engine, record),
        created,
        status: crate::ps::status_text(record),
        state,
        size_rw,
        size_root_fs: size_rw + image_size.unwrap_or(0),
        labels: record.request.labels.clone(),
        mounts: crate::inspect::mounts(engine, record),
    }
}

/// One line of `docker system df`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    pub kind: &'static str,
    pub total: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

impl DiskUsage {
    /// The docker CLI's four lines, by its formulas: an image is active with a container,
    /// and only what is its own (size less shared) counts as used; a container is active
    /// while running, paused or restarting; a volume while a container refers to it; a
    /// build cache entry while in use, its size counted unless shared.
    pub fn lines(&self) -> [Line; 4] {
        let active_images = self.images.iter().filter(|i| i.containers > 0);
        let used: u64 = active_images
            .clone()
            .map(|i| {
                i.size
                    .saturating_sub(u64::try_from(i.shared_size).unwrap_or(0))
            })
            .sum();
        let live =
            |c: &&ContainerUsage| matches!(c.state.as_str(), "running" | "paused" | "restarting");
        let containers_size = self.containers.iter().map(|c| c.size_rw).sum();
        let volumes_size = self.volumes.iter().map(|v| v.usage_data.size).sum();
        let unused_volumes = self.volumes.iter().filter(|v| v.usage_data.ref_count == 0);
        [
            Line {
                kind: "Images",
                total: self.images.len(),
                active: active_images.count(),
                size: self.layers_size,
                reclaimable: self.layers_size.saturating_sub(used),
            },
            Line {
                kind: "Containers",
                total: self.containers.len(),
                active: self.containers.iter().filter(live).count(),
                size: containers_size,
                reclaimable: self
                    .containers
                    .iter()
                    .filter(|c| !live(c))
                    .map(|c| c.size_rw)
                    .sum(),
            },
            Line {
                kind: "Local Volumes",
                total: self.volumes.len(),
                active: self.volumes.len() - unused_volumes.clone().count(),
                size: volumes_size,
                reclaimable: unused_volumes.map(|v| v.usage_data.size).sum(),
            },
            self.build_cache_line(),
        ]
    }

    fn build_cache_line(&self) -> Line {
        let own = self.build_cache.iter().filter(|e| !e.shared);
        let size: u64 = own.clone().map(|e| e.size).sum();
        let in_use: u64 = own.filter(|e| e.in_use).map(|e| e.size).sum();
        Line {
            kind: "Build Cache",
            total: self.build_cache.len(),
            active: self.build_cache.iter().filter(|e| e.in_use).count(),
            size,
            reclaimable: size.saturating_sub(in_use),
        }
    }
}
