//! `berth rmi`: untag images and delete those left without a name.
//!
//! TODO(berth-engine): refuse an image a container uses unless -f; needs container records.

use anyhow::{bail, Result};
use berth_image::{Reference, Store};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Images (names or IDs)
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Force removal of an image with several names
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(ctx: &Context, args: RmiArgs) -> Result<()> {
    let store = ctx.store()?;
    let mut failures = Vec::new();
    for input in &args.images {
        if let Err(e) = remove_one(&store, input, args.force) {
            failures.push(format!("{e:#}"));
        }
    }
    let _ = store.gc()?;
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(())
}

fn remove_one(store: &Store, input: &str, force: bool) -> Result<()> {
    let by_name = Reference::parse(input)
        .ok()
        .filter(|r| r.tag().is_some() && matches!(store.find(r), Ok(Some(_))));
    let image = store.resolve(input)?;
    if let Some(name) = by_name {
        outln!("Untagged: {}", name.familiar());
        if store.untag(&name)? {
            return Ok(());
        }
    } else {
        if image.repo_tags.len() > 1 && !force {
            bail!("conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories", berth_image::digest::short(image.id()));
        }
        for tag in &image.repo_tags {
            outln!("Untagged: {}", tag.familiar());
        }
    }
    for digest in &image.repo_digests {
        outln!("Untagged: {}", digest.familiar());
    }
    // Every manifest of this image ID goes: Docker has one image per ID.
    for same in store.images()?.iter().filter(|i| i.id() == image.id()) {
        store.remove_image(&same.manifest_digest)?;
    }
    outln!("Deleted: {}", image.id());
    Ok(())
}
