//! `berth import`: a root filesystem tarball (or `-` for stdin) becomes a one-layer image.

use std::fs::File;
use std::io::Read;

use anyhow::{Context as _, Result};
use berth_image::archive::import::Change;
use berth_image::Reference;
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// A tar file (plain, gzip or zstd), or "-" for standard input
    pub file: String,
    /// Name for the image: REPOSITORY[:TAG]
    pub reference: Option<String>,
    /// Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, VOLUME)
    #[arg(short, long = "change")]
    pub changes: Vec<String>,
    /// Commit message recorded in the history
    #[arg(short, long)]
    pub message: Option<String>,
}

/// `--change` instructions and the image's name, as import and commit take them.
pub(super) fn changes_and_name(
    changes: &[String],
    reference: Option<&str>,
) -> Result<(Vec<Change>, Option<Reference>)> {
    let changes = changes
        .iter()
        .map(|c| Change::parse(c))
        .collect::<Result<Vec<_>, _>>()?
        .concat();
    let name = reference.map(Reference::parse).transpose()?;
    Ok((changes, name))
}

pub fn run(ctx: &Context, args: ImportArgs) -> Result<()> {
    let (changes, name) = changes_and_name(&args.changes, args.reference.as_deref())?;
    if args.file.contains("://") {
        anyhow::bail!(
            "import {}: importing from a URL is not supported; download it and give the file",
            args.file
        );
    }
    let input: Box<dyn Read> = if args.file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(File::open(&args.file).with_context(|| format!("open {}", args.file))?)
    };
    let engine = ctx.engine()?;
    let source = args.message.clone().unwrap_or_else(|| args.file.clone());
    let image = berth_engine::images::import(&engine, input, &changes, name.as_ref(), &source)?;
    outln!("{}", image.id());
    Ok(())
}
