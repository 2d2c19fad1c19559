//! `export`: a container's filesystem (its overlay root: image layers plus its changes, without
//! volumes or the runtime's mounts) as a tar stream, like `docker export`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use clap::Args;

use crate::commands::Context;
use berth_engine::copy::StoppedRoot;

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
    let record =
        berth_engine::lifecycle::refresh(&engine, engine.containers.find(&args.container)?)?;
    let dir = engine.containers.dir(&record.id);
    // A running container's root is mounted in our (the host's) mount namespace; a stopped
    // one is mounted for the export and unmounted after.
    let stopped;
    let root = if record.state.status.is_live() {
        berth_engine::bundle::rootfs(&dir)
    } else {
        stopped = StoppedRoot::mount(&engine, &record)?;
        stopped.dir.clone()
    };
    match &args.output {
        None => {
            let out = std::io::stdout().lock();
            write_tar(&root, out)?;
        }
        Some(path) => {
            // Into a temp file beside the target, renamed at the end: no partial archive.
            let parent = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(parent)
                .with_context(|| format!("create a temp file in {}", parent.display()))?;
            write_tar(&root, tmp.as_file_mut())?;
            tmp.persist(path)
                .with_context(|| format!("write {}", path.display()))?;
        }
    }
    Ok(0)
}

/// The tree under `root` as tar, symlinks stored as links (never followed out of the root).
fn write_tar(root: &Path, out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    tar.append_dir_all(".", root)
        .with_context(|| format!("archive {}", root.display()))?;
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .context("finish the archive")?;
    Ok(())
}
