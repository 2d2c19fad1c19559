//! `berth image prune`: remove untagged images (all unused ones with -a) and their layers,
//! never an image a container uses.

use anyhow::Result;
use berth_engine::images::{self, Usage};
use clap::Args;

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
pub fn run(ctx: &Context, args: PruneArgs, usage: &Usage) -> Result<()> {
    let what = if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    };
    if !super::confirmed(args.force, &format!("This will remove {what}."))? {
        return Ok(());
    }
    let (deleted, freed) = images::prune(&ctx.engine()?, args.all, usage)?;
    if !deleted.is_empty() {
        outln!("Deleted Images:");
        deleted.iter().for_each(|id| outln!("deleted: {id}"));
        outln!();
    }
    outln!("Total reclaimed space: {}", human_size(freed));
    Ok(())
}
