//! `berth save`: write images to a docker-archive (default) or an oci-archive.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use berth_image::archive::Format;
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
    let engine = ctx.engine()?;
    let out: Box<dyn Write> = match &args.output {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("create {}", path.display()))?)
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let out = BufWriter::with_capacity(1 << 20, out);
    berth_engine::images::save(&engine, &args.images, format, out)?;
    Ok(())
}
