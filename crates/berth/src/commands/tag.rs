//! `berth tag`: give an image another name.

use anyhow::Result;
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG] or image ID
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

pub fn run(ctx: &Context, args: TagArgs) -> Result<()> {
    let engine = ctx.engine()?;
    berth_engine::images::tag(&engine, &args.source, &args.target)?;
    Ok(())
}
