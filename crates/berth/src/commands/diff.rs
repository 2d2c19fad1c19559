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
    for change in berth_engine::commit::changes(&ctx.engine()?, &args.container)? {
        outln!("{} {}", change.kind, change.path);
    }
    Ok(())
}
