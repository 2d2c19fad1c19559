//! `export`: a container's filesystem (its overlay root: image layers plus its changes, without
//! volumes or the runtime's mounts) as a tar stream, as `docker export` writes it.

use std::io::Write;
use std::path::Path;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::rootfs::StoppedRoot;

/// Writes the container `key`'s filesystem to `out` as tar. A running container's root is the
/// overlay its monitor mounted (in the host's mount namespace); a stopped one's is mounted for
/// the export and unmounted after.
pub fn export(engine: &Engine, key: &str, out: impl Write) -> Result<()> {
    let record = crate::lifecycle::refresh(engine, engine.containers.find(key)?)?;
    if crate::userns::of(&record).is_some() {
        // Owners as the container sees them, not its range's host ids.
        let root = crate::copy::open_root_alone(engine, key)?;
        return root.archive_as("/", ".", out);
    }
    if record.state.status.is_live() {
        let root = crate::bundle::rootfs(&engine.containers.dir(&record.id));
        return write_tar(&root, out);
    }
    let stopped = StoppedRoot::mount(engine, &record)?;
    write_tar(&stopped.dir, out)
}

/// The tree under `root` as tar, symlinks stored as links (never followed out of the root).
fn write_tar(root: &Path, out: impl Write) -> Result<()> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    tar.append_dir_all(".", root)
        .map_err(Error::io("archive", root))?;
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(Error::io("finish the archive of", root))?;
    Ok(())
}
