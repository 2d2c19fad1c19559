//! `berth diff`: what a container changed in its image's files, one `A`, `C` or `D` line each.

use anyhow::Result;
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The container (name or ID)
    pub container: String,
}

pub fn run(ctx: &Context, args: DiffArgs) -> Result<()> {
    let engine = ctx.engine()?;
    let record = engine.containers.find(&args.container)?;
    let (_, lowers) = berth_engine::bundle::image_of(&engine, &record)?;
    let upper = engine.containers.dir(&record.id).join("upper");
    if !upper.is_dir() {
        return Ok(());
    }
    for change in berth_image::diff::container_changes(&upper, &lowers)? {
        outln!("{} {}", change.kind, change.path);
    }
    Ok(())
}
