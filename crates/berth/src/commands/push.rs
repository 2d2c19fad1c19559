//! `berth push`: upload an image, or every tag of a repository (`-a`), to a registry.

use anyhow::Result;
use berth_engine::images;
use berth_image::registry::push::PushOptions;
use berth_image::Reference;
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
    let engine = ctx.engine()?;
    let targets = if args.all_tags {
        images::every_tag(&engine, &args.image)?
    } else {
        let image = engine.images()?.resolve(&args.image)?;
        vec![(Reference::parse(&args.image)?, image)]
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
        let digest = images::push(&engine, image, target, &options, &printer)?;
        if args.quiet {
            outln!("{target}@{digest}");
        }
    }
    Ok(())
}
