//! `berth rmi`: untag images and delete those left without a name, never one a container uses.

use anyhow::{bail, Result};
use berth_engine::images::{self, Removed, Usage};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Images (names or IDs)
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Force removal of an image with several names, or untag one a stopped container uses
    #[arg(short, long)]
    pub force: bool,
}

/// `rmi` with the engine's answer to "which containers use this image ID".
pub fn run(ctx: &Context, args: RmiArgs, usage: &Usage) -> Result<()> {
    let engine = ctx.engine()?;
    let mut failures = Vec::new();
    for input in &args.images {
        match images::remove(&engine, input, args.force, usage) {
            Ok(removed) => removed.iter().for_each(|r| match r {
                Removed::Untagged(name) => outln!("Untagged: {}", name.familiar()),
                Removed::Deleted(id) => outln!("Deleted: {id}"),
            }),
            Err(e) => failures.push(format!("{:#}", anyhow::Error::from(e))),
        }
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}
