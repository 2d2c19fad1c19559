//! `berth pull`: fetch an image from a registry.

use anyhow::Result;
use berth_engine::images;
use berth_image::{Platform, Reference};
use clap::Args;

use super::Context;
use crate::progress::{Direction, Printer};

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Image to pull: NAME[:TAG|@DIGEST]
    pub image: String,
    /// Platform to pull from a multi-platform image (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(ctx: &Context, args: PullArgs) -> Result<()> {
    let reference = Reference::parse(&args.image)?;
    let platform = match &args.platform {
        Some(p) => Platform::parse(p)?,
        None => Platform::host(),
    };
    let engine = ctx.engine()?;
    let printer = Printer::new(Direction::Pull, args.quiet);
    if !args.quiet {
        // A tag is a ':' after the last '/' (before it, it is a registry's port).
        let last = args.image.rsplit('/').next().unwrap_or_default();
        if reference.digest().is_none() && !last.contains(':') {
            outln!("Using default tag: latest");
        }
        // Docker names the repository on the registry: `library/busybox`, `team/app`.
        outln!(
            "{}: Pulling from {}",
            reference.api_reference(),
            reference.repository()
        );
    }
    // Its last word, `Status: ...`, comes from the engine through the printer.
    images::pull(
        &engine,
        &reference,
        platform,
        &ctx.registry_options(),
        &printer,
    )?;
    outln!("{reference}");
    Ok(())
}
