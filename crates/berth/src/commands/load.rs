//! `berth load`: load images from a docker-archive or oci-archive.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use berth_image::progress::Silent;
use clap::Args;

use super::Context;

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from a file instead of standard input
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

/// Loads; any failure is one line and exit status 1, as `docker load` exits for a bad archive
/// (125 is for the errors of commands that run containers).
pub fn run(ctx: &Context, args: LoadArgs) -> Result<i32> {
    match load(ctx, args) {
        Ok(()) => Ok(0),
        Err(e) => {
            eprintln!("berth: {}", crate::error_line(&e));
            Ok(1)
        }
    }
}

fn load(ctx: &Context, args: LoadArgs) -> Result<()> {
    let input: Box<dyn Read> = match &args.input {
        Some(path) => {
            Box::new(File::open(path).with_context(|| format!("open {}", path.display()))?)
        }
        None if std::io::stdin().is_terminal() => {
            bail!("requested load from stdin, but stdin is empty; use -i or redirect")
        }
        None => Box::new(std::io::stdin().lock()),
    };
    let engine = ctx.engine()?;
    let input = BufReader::with_capacity(1 << 20, input);
    let loaded = berth_engine::images::load(&engine, input, &Silent)?;
    for image in loaded {
        if image.names.is_empty() {
            outln!("Loaded image ID: {}", image.id);
        }
        for name in &image.names {
            outln!("Loaded image: {}", name.familiar());
        }
    }
    Ok(())
}
