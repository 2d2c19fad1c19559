//! `berth image prune`: remove untagged images (all unused ones with -a) and their layers,
//! never an image a container uses.

use anyhow::Result;
use berth_image::store::ImageUsage;
use clap::Args;
use oci_spec::image::Digest;

use super::Context;
use crate::format::human_size;

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just untagged ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `image prune` with the engine's answer to "which containers use this image ID".
pub fn run_with(ctx: &Context, args: PruneArgs, usage: ImageUsage) -> Result<()> {
    let what = if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    if !super::confirmed(args.force, &format!("This will remove {what}."))? {
        return Ok(());
    }
    let (deleted, freed) = remove_unused(ctx, args.all, usage)?;
    if !deleted.is_empty() {
        outln!("Deleted Images:");
        deleted.iter().for_each(|id| outln!("deleted: {id}"));
        outln!();
    }
    outln!("Total reclaimed space: {}", human_size(freed));
    Ok(())
}

/// Removes the untagged images (every one with `all`) no container uses, then what nothing
/// refers to any more; returns the IDs removed and the bytes freed. Also `system prune`'s.
pub fn remove_unused(ctx: &Context, all: bool, usage: ImageUsage) -> Result<(Vec<Digest>, u64)> {
    let store = ctx.store()?;
    let mut deleted = Vec::new();
    for image in store.images()? {
        if (all || image.repo_tags.is_empty()) && !usage(image.id()).in_use() {
            store.remove_image(&image.manifest_digest)?;
            deleted.push(image.id().clone());
        }
    }
    Ok((deleted, store.gc()?.bytes_freed))
}
