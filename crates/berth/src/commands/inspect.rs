//! `berth image inspect`: Docker-compatible JSON for images.

use anyhow::{bail, Result};
use berth_image::inspect::docker_inspect;
use clap::Args;
use serde::Serialize;

use super::Context;

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Output format (only "json" for now)
    #[arg(short, long, default_value = "json")]
    pub format: String,
}

pub fn run(ctx: &Context, args: InspectArgs) -> Result<()> {
    if args.format != "json" {
        bail!(
            "unsupported --format {:?}: only \"json\" is implemented",
            args.format
        );
    }
    let store = ctx.store()?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for input in &args.images {
        match store.resolve(input) {
            Ok(image) => found.push(docker_inspect(&store, &image)),
            Err(e) => missing.push(e.to_string()),
        }
    }
    // Docker prints what it found, then fails for what it did not.
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    found.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, formatter,
    ))?;
    outln!("{}", String::from_utf8_lossy(&out));
    if !missing.is_empty() {
        bail!("{}", missing.join("; "));
    }
    Ok(())
}
