//! `berth image prune`: remove untagged images (all unused ones with -a) and their layers,
//! never an image a container uses.

use anyhow::Result;
use berth_engine::filters::Filters;
use berth_engine::images::{self, Removed, Usage};
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
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
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
    let (removed, freed) = images::prune(&ctx.engine()?, &filters(args.all, &args.filter)?, usage)?;
    if !removed.is_empty() {
        outln!("Deleted Images:");
        lines(&removed).iter().for_each(|l| outln!("{l}"));
        outln!();
    }
    outln!("Total reclaimed space: {}", human_size(freed));
    Ok(())
}

/// `--filter`s, and `-a` as Docker's client sends it: `dangling=false`.
pub fn filters(all: bool, given: &[String]) -> Result<Filters> {
    let mut pairs = given.to_vec();
    if all {
        pairs.push("dangling=false".to_string());
    }
    Ok(Filters::parse(&pairs, images::PRUNE_FILTERS)?)
}

/// What a prune removed, as docker prints it: `untagged: NAME`, `deleted: ID`.
pub fn lines(removed: &[Removed]) -> Vec<String> {
    removed
        .iter()
        .map(|r| match r {
            Removed::Untagged(name) => format!("untagged: {}", name.familiar()),
            Removed::Deleted(id) => format!("deleted: {id}"),
        })
        .collect()
}
