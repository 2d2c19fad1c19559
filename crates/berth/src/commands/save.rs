//! `berth save`: write images to a docker-archive (default) or an oci-archive.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use berth_image::archive::{docker, oci, Format};
use berth_image::{Image, Reference, Store};
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct SaveArgs {
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to a file instead of standard output
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Archive format: "docker" (docker-archive) or "oci" (oci-archive)
    #[arg(long, default_value = "docker")]
    pub format: String,
}

pub fn run(ctx: &Context, args: SaveArgs) -> Result<()> {
    let format = match args.format.as_str() {
        "docker" | "docker-archive" => Format::Docker,
        "oci" | "oci-archive" => Format::Oci,
        other => bail!("unsupported --format {other:?}: use \"docker\" or \"oci\""),
    };
    if args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to save to a terminal; use the -o flag or redirect");
    }
    let store = ctx.store()?;
    let images = args
        .images
        .iter()
        .map(|i| selection(&store, i))
        .collect::<Result<Vec<_>>>()?;
    let out: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("create {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let out = BufWriter::with_capacity(1 << 20, out);
    match format {
        Format::Docker => docker::save(&store, &images, out)?,
        Format::Oci => oci::save(&store, &images, out)?,
    }
    Ok(())
}

/// An image and the names to record for it: the one asked for, or all its tags for an ID.
fn selection(store: &Store, input: &str) -> Result<(Image, Vec<Reference>)> {
    let image = store.resolve(input)?;
    let names = match Reference::parse(input) {
        Ok(r) if image.repo_tags.contains(&r) => vec![r],
        _ => image.repo_tags.clone(),
    };
    Ok((image, names))
}
