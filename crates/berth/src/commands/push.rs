//! `berth push`: upload an image to a registry.

use anyhow::Result;
use berth_image::registry::push::{push, PushOptions};
use berth_image::Reference;
use clap::Args;

use super::Context;
use crate::progress::{Direction, Printer};

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Image to push: NAME[:TAG]
    pub image: String,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    /// Upload blobs larger than this many bytes in chunks (PATCH) rather than one PUT
    #[arg(long, default_value_t = 32 << 20, hide = true)]
    pub chunk_size: u64,
}

pub fn run(ctx: &Context, args: PushArgs) -> Result<()> {
    let target = Reference::parse(&args.image)?;
    let store = ctx.store()?;
    let image = store.resolve(&args.image)?;
    let options = PushOptions {
        chunk_size: args.chunk_size.max(1),
        registry: ctx.registry_options(),
    };
    let printer = Printer::new(Direction::Push, args.quiet);
    if !args.quiet {
        outln!("The push refers to repository [{}]", target.name());
    }
    let digest = push(&store, &image, &target, &options, &printer)?;
    if args.quiet {
        outln!("{target}@{digest}");
    }
    Ok(())
}
