//! A stopped container's root filesystem, reached from the host: its overlay (the image's
//! layers and the container's changes) mounted at a directory of its own for the time of a
//! copy or an export. A running container's root is its init's (`/proc/<pid>/root`), or the
//! overlay its monitor mounted (`bundle::rootfs`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::engine::Engine;
use crate::error::Result;
use crate::records::Record;

/// The overlay mounted at a private directory in the container's own; unmounted and removed
/// when dropped.
#[derive(Debug)]
pub struct StoppedRoot {
    pub dir: PathBuf,
}

impl StoppedRoot {
    pub fn mount(engine: &Engine, record: &Record) -> Result<StoppedRoot> {
        // One directory per mount: two copies of one container at once (the API serves many
        // clients) must not stack their mounts on one directory and unmount each other's.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let cdir = engine.containers.dir(&record.id);
        let (_, layers) = crate::bundle::image_of(engine, record)?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = cdir.join(format!("cp-root-{}-{n}", std::process::id()));
        let root = StoppedRoot { dir };
        // `cp` into a stopped container writes its root: synced, as any container's.
        crate::bundle::mount_overlay(
            &cdir,
            &root.dir,
            &layers,
            crate::userns::of(record),
            crate::bundle::Durability::Synced,
        )?;
        Ok(root)
    }
}

impl Drop for StoppedRoot {
    fn drop(&mut self) {
        // Detached: nothing holds it but this process. Should it fail all the same, `rm`
        // unmounts whatever is left under the container's directory.
        let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}
