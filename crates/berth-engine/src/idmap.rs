//! The image's layers as a container with a user namespace of its own sees them: owned by the
//! ids of its range (its root owns what the image's root owns), with no copy. The layers'
//! directory is mounted once per container mount, idmapped through a user namespace with the
//! container's map (`mount_setattr(MOUNT_ATTR_IDMAP)`), and the overlay takes its layers from
//! there. Only the lower layers are idmapped: what the container writes goes to its upper
//! directory with the host's ids (its range's), as Docker's userns-remap stores it.
//!
//! Volumes (named and anonymous) are mounted idmapped too (`volume`): on disk their files keep
//! the ids the containers see, whatever range a container has, so one volume serves containers
//! of different ranges and containers without a user namespace alike. Bind mounts are not
//! idmapped, as Docker's userns-remap leaves them: the container sees the host's files with
//! the host's ids (a host root's file is nobody's to it).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::mount::MntFlags;

use crate::error::{Error, Result};
use crate::userns::IdMap;

/// The idmapped view of the layers' directory, at a directory of the container's own while an
/// overlay is mounted from it; unmounted and removed when dropped. The overlay keeps its own
/// reference to each layer (overlayfs clones its layers' mounts), so dropping this as soon as
/// the overlay is mounted is right.
#[derive(Debug)]
pub struct View {
    dir: PathBuf,
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.dir, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Where a container's idmapped views of its volumes are mounted while it runs.
fn volumes_dir(cdir: &Path) -> PathBuf {
    cdir.join("volumes")
}

/// The volume directory `data` idmapped through `map` at `<cdir>/volumes/<name>`, for the
/// container's bind mount of it (a bind of an idmapped mount keeps the idmapping); stays
/// mounted until [`release_volumes`].
pub fn volume(cdir: &Path, name: &str, data: &Path, map: IdMap) -> Result<PathBuf> {
    let view = volumes_dir(cdir).join(name);
    let _ = nix::mount::umount2(&view, MntFlags::MNT_DETACH);
    std::fs::create_dir_all(&view).map_err(Error::io("create", &view))?;
    bind(data, &view, map, "mount the volume idmapped")?;
    Ok(view)
}

/// Unmounts the container's idmapped views of its volumes; what is not mounted is fine.
pub fn release_volumes(cdir: &Path) {
    let dir = volumes_dir(cdir);
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let _ = nix::mount::umount2(&entry.path(), MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(entry.path());
    }
}

/// `source` mounted at `target`, idmapped through a user namespace with `map`.
fn bind(source: &Path, target: &Path, map: IdMap, step: &'static str) -> Result<()> {
    let line = map.proc_line();
    let ns = berth_sys::ns::user_namespace(&line, &line).map_err(|e| Error::Io {
        step: "make a user namespace with the container's ids (clone CLONE_NEWUSER) for",
        path: target.to_path_buf(),
        source: e,
    })?;
    berth_sys::mount::bind_idmapped(source, ns.as_fd(), target).map_err(|e| Error::Io {
        step,
        path: source.to_path_buf(),
        source: e,
    })
}

/// The layers (`<store>/layers/<digest>/diff`, top first) idmapped through `map`, with the
/// view that holds them. The view lives in `cdir` under a short name (the overlay's options
/// must fit one page) that no other mount of this container's root uses at the same time.
pub fn layers(cdir: &Path, layers: &[PathBuf], map: IdMap) -> Result<(Vec<PathBuf>, View)> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = layers
        .first()
        .and_then(|l| l.parent())
        .and_then(Path::parent)
        .ok_or_else(|| Error::Invalid("an image with no layers has no root filesystem".into()))?;
    let mut paths = Vec::new();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let view = View {
        dir: cdir.join(format!("l{}.{n}", std::process::id())),
    };
    for l in layers {
        let rel = l.strip_prefix(base).map_err(|_| {
            Error::Invalid(format!(
                "layer {} is not under {}: cannot idmap the image's layers",
                l.display(),
                base.display()
            ))
        })?;
        paths.push(view.dir.join(rel));
    }
    // A view of a monitor that died before it dropped it, under our (reused) pid.
    let _ = nix::mount::umount2(&view.dir, MntFlags::MNT_DETACH);
    std::fs::create_dir_all(&view.dir).map_err(Error::io("create", &view.dir))?;
    bind(base, &view.dir, map, "mount the image's layers idmapped")?;
    Ok((paths, view))
}
