//! `berth push`: upload an image, or every tag of a repository (`-a`), to a registry.

use anyhow::{bail, Result};
use berth_image::registry::push::{push, PushOptions};
use berth_image::{Image, Reference, Store};
use clap::Args;

use super::Context;
use crate::progress::{Direction, Printer};

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Image to push: NAME[:TAG] (NAME alone with --all-tags)
    pub image: String,
    /// Push all tags of the repository
    #[arg(short, long)]
    pub all_tags: bool,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Upload blobs larger than this many bytes in chunks (PATCH) rather than one PUT
    #[arg(long, default_value_t = 32 << 20, hide = true)]
    pub chunk_size: u64,
}

pub fn run(ctx: &Context, args: PushArgs) -> Result<()> {
    let store = ctx.store()?;
    let targets = if args.all_tags {
        every_tag(&store, &args.image)?
    } else {
        vec![(Reference::parse(&args.image)?, store.resolve(&args.image)?)]
    };
    let options = PushOptions {
        chunk_size: args.chunk_size.max(1),
        registry: ctx.registry_options(),
    };
    let printer = Printer::new(Direction::Push, args.quiet);
    if !args.quiet {
        outln!("The push refers to repository [{}]", targets[0].0.name());
    }
    for (target, image) in &targets {
        let digest = push(&store, image, target, &options, &printer)?;
        if args.quiet {
            outln!("{target}@{digest}");
        }
    }
    Ok(())
}

/// Every tagged image of the repository `name`, as (tag, image), in tag order.
fn every_tag(store: &Store, name: &str) -> Result<Vec<(Reference, Image)>> {
    let repo = Reference::parse_named(name)?;
    if repo.tag().is_some() || repo.digest().is_some() {
        bail!("tag can't be used with --all-tags/-a");
    }
    let mut targets: Vec<(Reference, Image)> = store
        .images()?
        .into_iter()
        .flat_map(|image| {
            image
                .repo_tags
                .iter()
                .filter(|t| t.name() == repo.name())
                .map(|t| (t.clone(), image.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    if targets.is_empty() {
        bail!(
            "An image does not exist locally with the tag: {}",
            repo.familiar_name()
        );
    }
    targets.sort_by_key(|(t, _)| t.to_string());
    Ok(targets)
}
