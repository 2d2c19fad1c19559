//! A stopped container's root filesystem, reached from the host: its overlay (the image's
//! layers and the container's changes) mounted at a directory of its own for the time of a
//! copy or an export. A running container's root is its init's (`/proc/<pid>/root`), or the
//! overlay its monitor mounted (`bundle::rootfs`).

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use berth_runtime::rootfs::resolve;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::Mode;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records::Record;

/// The overlay mounted at a private directory in the container's own; unmounted and removed
/// when dropped (the volumes mounted on it with it).
#[derive(Debug)]
pub struct StoppedRoot {
    pub dir: PathBuf,
    /// The volumes [`StoppedRoot::mount_volumes`] acquired for the container (their options
    /// mounted), released at the drop: by the container's id, so that a copy killed before
    /// that leaves nothing the container's removal does not release.
    acquired: Vec<String>,
    id: String,
    volumes_dir: PathBuf,
}

impl StoppedRoot {
    pub fn mount(engine: &Engine, record: &Record) -> Result<StoppedRoot> {
        // One directory per mount: two copies of one container at once (the API serves many
        // clients) must not stack their mounts on one directory and unmount each other's.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let cdir = engine.containers.dir(&record.id);
        let (_, layers) = crate::bundle::image_of(engine, record)?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let root = StoppedRoot {
            dir: cdir.join(format!("cp-root-{}-{n}", std::process::id())),
            acquired: Vec::new(),
            id: record.id.clone(),
            volumes_dir: engine.volumes_dir(),
        };
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

    /// The container's volumes and bind mounts mounted on the root where it has them, as its
    /// processes will see them (Docker's `mountVolumes` before a copy): what a copy writes
    /// under `/data` of `-v vol:/data` goes to the volume, not to the root's directory the
    /// volume hides. A volume is first filled from the image as the container's first start
    /// fills it (Docker fills it at create), its options mounted for the copy's time. Missing
    /// mount points are made inside the root, as the start makes them; `:ro` ones are mounted
    /// read-only. Not for a container with a user namespace of its own, whose volumes are
    /// idmapped for its start only: its copies see its root alone, as before.
    pub fn mount_volumes(&mut self, engine: &Engine, record: &Record) -> Result<()> {
        let mut mounts: Vec<_> = record
            .request
            .mounts
            .iter()
            .filter(|m| m.kind == "bind" || m.kind == "volume")
            .collect();
        // Parents first, as the spec orders them (a volume at /a, a bind at /a/b).
        mounts.sort_by_key(|m| Path::new(&m.target).components().count());
        let root = nix::fcntl::open(
            &self.dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open the container's root", &self.dir)(e.into()))?;
        // Every volume filled from the root before any is mounted on it, as at the start.
        for m in mounts.iter().filter(|m| m.kind == "volume") {
            crate::volumes::local::acquire(engine, &m.source, &self.id)?;
            self.acquired.push(m.source.clone());
            if !m.options.iter().any(|o| o == "nocopy") {
                let data = crate::volumes::data_dir(engine, &m.source);
                crate::copy_up::populate(&self.dir, &m.target, &data)?;
            }
        }
        for m in mounts {
            let source = match m.kind.as_str() {
                "volume" => crate::volumes::data_dir(engine, &m.source),
                _ => PathBuf::from(&m.source),
            };
            bind(&root, &source, &m.target, m.is_read_only())?;
        }
        Ok(())
    }
}

/// `source` (a host path: the volume's data, the bind's source) bound at `target` inside
/// `root`, the mount point resolved inside it and made where missing.
fn bind(root: &OwnedFd, source: &Path, target: &str, read_only: bool) -> Result<()> {
    let leaf = match std::fs::metadata(source) {
        Ok(meta) if meta.is_dir() => resolve::Leaf::Dir,
        Ok(_) => resolve::Leaf::File,
        Err(e) => return Err(Error::io("mount for the copy", source)(e)),
    };
    let at = resolve::create(root.as_fd(), Path::new(target), leaf)
        .map_err(Error::io("make the mount point for the copy", target))?;
    let mount = |at: &OwnedFd, flags: MsFlags| {
        let at = resolve::fd_path(at);
        nix::mount::mount(Some(source), &at, None::<&str>, flags, None::<&str>)
            .map_err(|e| Error::io("mount for the copy", source)(e.into()))
    };
    mount(&at, MsFlags::MS_BIND | MsFlags::MS_REC)?;
    if read_only {
        // The descriptor names the directory under the new mount: the mount itself is reached
        // by a walk to it again.
        let top = resolve::open(root.as_fd(), Path::new(target), OFlag::O_PATH)
            .map_err(Error::io("open the mount for the copy", target))?;
        mount(
            &top,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        )?;
    }
    Ok(())
}

impl Drop for StoppedRoot {
    fn drop(&mut self) {
        // Detached, with what is mounted under it: nothing holds it but this process. Should
        // it fail all the same, `rm` unmounts whatever is left under the container's directory.
        let _ = nix::mount::umount2(&self.dir, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
        for name in &self.acquired {
            let dir = self.volumes_dir.join(name);
            let _ = crate::volumes::local::release_dir(&dir, &self.id);
        }
    }
}
