//! `berth system df`: disk used by images, and by containers as the engine reports them.

use std::collections::HashSet;

use anyhow::Result;
use berth_engine::images::ContainersDf;
use berth_image::store::ImageUsage;
use clap::Args;

use super::Context;
use crate::format::{human_size, print_table};

#[derive(Args, Debug)]
pub struct DfArgs {}

/// `system df` with the engine's answers: which containers use each image ID, and the
/// containers' own row.
pub fn run_with(
    ctx: &Context,
    _args: DfArgs,
    usage: ImageUsage,
    containers: &ContainersDf,
) -> Result<()> {
    let store = ctx.store()?;
    let images = store.images()?;
    let (mut seen, mut active_layers) = (HashSet::new(), HashSet::new());
    let (mut size, mut active_ids) = (0, HashSet::new());
    for image in &images {
        let in_use = usage(image.id()).in_use();
        if in_use {
            active_ids.insert(image.id().clone());
        }
        for diff_id in image.diff_ids()? {
            if in_use {
                active_layers.insert(diff_id.clone());
            }
            if seen.insert(diff_id.clone()) {
                size += store.layer_size(&diff_id);
            }
        }
    }
    let used: u64 = active_layers.iter().map(|d| store.layer_size(d)).sum();
    let total_ids: HashSet<_> = images.iter().map(|i| i.id().clone()).collect();
    let rows = vec![
        row(
            "Images",
            total_ids.len(),
            active_ids.len(),
            size,
            size - used,
        ),
        row(
            "Containers",
            containers.total,
            containers.active,
            containers.size,
            containers.reclaimable,
        ),
        row("Local Volumes", 0, 0, 0, 0),
        row("Build Cache", 0, 0, 0, 0),
    ];
    print_table(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], &rows);
    Ok(())
}

/// One line, RECLAIMABLE with Docker's percentage when there is anything to reclaim.
fn row(kind: &str, total: usize, active: usize, size: u64, reclaimable: u64) -> Vec<String> {
    let reclaimable = if reclaimable == 0 || size == 0 {
        human_size(reclaimable)
    } else {
        format!(
            "{} ({}%)",
            human_size(reclaimable),
            reclaimable * 100 / size
        )
    };
    vec![
        kind.into(),
        total.to_string(),
        active.to_string(),
        human_size(size),
        reclaimable,
    ]
}
