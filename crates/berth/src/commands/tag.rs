//! `berth tag`: give an image another name.

use anyhow::Result;
use berth_image::Reference;
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
    let target = Reference::parse(&args.target)?;
    if target.digest().is_some() {
        anyhow::bail!(
            "tag {}: a tag cannot name a digest; use NAME[:TAG]",
            args.target
        );
    }
    let store = ctx.store()?;
    let image = store.resolve(&args.source)?;
    store.tag(&image, &target)?;
    Ok(())
}
