//! `export`: a container's filesystem as a tar stream, like `docker export`: the engine's
//! export, to stdout or into a file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::Args;

use crate::commands::Context;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    pub container: String,
}

pub fn run(ctx: &Context, args: ExportArgs) -> Result<i32> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to write a tar archive to a terminal: use -o FILE or redirect");
    }
    let engine = ctx.engine()?;
    let export =
        |out: &mut dyn std::io::Write| berth_engine::export::export(&engine, &args.container, out);
    match &args.output {
        None => export(&mut std::io::stdout().lock())?,
        Some(path) => {
            // Into a temp file beside the target, renamed at the end: no partial archive.
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(parent)
                .with_context(|| format!("create a temp file in {}", parent.display()))?;
            export(tmp.as_file_mut())?;
            tmp.persist(path)
                .with_context(|| format!("write {}", path.display()))?;
        }
    }
    Ok(0)
}
