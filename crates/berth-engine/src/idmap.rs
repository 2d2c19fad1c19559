//! The image's layers as a container with a user namespace of its own sees them: owned by the
//! ids of its range (its root owns what the image's root owns), with no copy. The layers'
//! directory is mounted once per container mount, idmapped through a user namespace with the
//! container's map (`mount_setattr(MOUNT_ATTR_IDMAP)`), and the overlay takes its layers from
//! there. Only the lower layers are idmapped: what the container writes goes to its upper
//! directory with the host's ids (its range's), as Docker's userns-remap stores it.
//!
//! Where the kernel or the data root's filesystem cannot idmap a mount (or the container was
//! made with `userns::COPY_ENV`), each layer is copied instead with its owners shifted into the
//! range, once per layer and range: `<layer>/diff-<first id>-<count>` beside the layer's
//! `diff`, kept for the next start and the next container given that range, and removed with
//! the layer.
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
/// mounted until [`release_volumes`]. `None` where the layers are copied rather than idmapped
/// or the volume's filesystem cannot be idmapped: then the container gets the volume as it is,
/// with the host's ids, as a bind mount.
pub fn volume(cdir: &Path, name: &str, data: &Path, map: IdMap) -> Result<Option<PathBuf>> {
    if map.copied {
        return Ok(None);
    }
    let view = volumes_dir(cdir).join(name);
    let _ = nix::mount::umount2(&view, MntFlags::MNT_DETACH);
    std::fs::create_dir_all(&view).map_err(Error::io("create", &view))?;
    match bind(data, &view, map, "mount the volume idmapped") {
        Ok(()) => Ok(Some(view)),
        Err(e) if cannot_idmap(&e) => {
            let _ = std::fs::remove_dir(&view);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Whether mounting idmapped failed because this kernel or filesystem cannot, rather than for
/// a fault of ours: EINVAL from mount_setattr (a filesystem without idmapped mounts), ENOSYS
/// (before Linux 5.12), EOPNOTSUPP.
fn cannot_idmap(e: &Error) -> bool {
    let Error::Io { source, .. } = e else {
        return false;
    };
    matches!(
        source.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    )
}

/// Unmounts the container's idmapped views of its volumes; what is not mounted is fine.
pub fn release_volumes(cdir: &Path) {
    let dir = volumes_dir(cdir);
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let _ = nix::mount::umount2(&entry.path(), MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(entry.path());
    }
}

/// The container's changes (its upper directory, `upper`, stored with the host ids of its
/// range) as the container sees them, with its own ids, mounted in `cdir` until the view is
/// dropped: what a commit archives. (The overlay itself cannot be idmapped.)
pub fn unshifted(cdir: &Path, upper: &Path, map: IdMap) -> Result<(PathBuf, View)> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let view = View {
        dir: cdir.join(format!("u{}.{n}", std::process::id())),
    };
    let _ = nix::mount::umount2(&view.dir, MntFlags::MNT_DETACH);
    std::fs::create_dir_all(&view.dir).map_err(Error::io("create", &view.dir))?;
    // The range's ids are the namespace's, and the host's 0.. are what they map to.
    let line = format!("{} 0 {}\n", map.host_id, map.size);
    bind_line(
        upper,
        &view.dir,
        &line,
        "mount the container's changes with its own ids",
    )?;
    Ok((view.dir.clone(), view))
}

/// `source` mounted at `target`, idmapped through a user namespace with `map`.
fn bind(source: &Path, target: &Path, map: IdMap, step: &'static str) -> Result<()> {
    bind_line(source, target, &map.proc_line(), step)
}

/// `source` mounted at `target`, idmapped through a user namespace whose uid and gid maps are
/// `line`.
fn bind_line(source: &Path, target: &Path, line: &str, step: &'static str) -> Result<()> {
    let ns = berth_sys::ns::user_namespace(line, line).map_err(|e| Error::Io {
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
/// view that holds them, or their copies for the range (`copied`) where they cannot be
/// idmapped. The view lives in `cdir` under a short name (the overlay's options must fit one
/// page) that no other mount of this container's root uses at the same time.
pub fn layers(cdir: &Path, layers: &[PathBuf], map: IdMap) -> Result<(Vec<PathBuf>, Option<View>)> {
    if map.copied {
        return Ok((copied(layers, map)?, None));
    }
    match idmapped(cdir, layers, map) {
        Ok((paths, view)) => Ok((paths, Some(view))),
        Err(e) if cannot_idmap(&e) => Ok((copied(layers, map)?, None)),
        Err(e) => Err(e),
    }
}

/// Each layer's copy for the range, made if missing: `<layer>/../diff-<first>-<count>`, made
/// at a temporary name and renamed into place, so a copy is whole or absent.
fn copied(layers: &[PathBuf], map: IdMap) -> Result<Vec<PathBuf>> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // An id the range lacks is nobody's (the host's overflow id), never another range's.
    let shift = |id: u32| map.host(id).unwrap_or(65_534);
    let mut out = Vec::new();
    for layer in layers {
        let dir = layer.parent().unwrap_or(layer);
        let copy = dir.join(format!("diff-{}-{}", map.host_id, map.size));
        if !copy.is_dir() {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let tmp = dir.join(format!(".diff-{}-{}.{n}", map.host_id, std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            let made = berth_image::snapshot::copy_layer_shifted(layer, &tmp, &shift);
            let placed = made.map_err(Error::from).and_then(|()| {
                match std::fs::rename(&tmp, &copy) {
                    // Another start made it first: theirs is as good.
                    Err(_) if copy.is_dir() => Ok(()),
                    r => r.map_err(Error::io("rename the layer's copy to", &copy)),
                }
            });
            let _ = std::fs::remove_dir_all(&tmp);
            placed?;
        }
        out.push(copy);
    }
    Ok(out)
}

fn idmapped(cdir: &Path, layers: &[PathBuf], map: IdMap) -> Result<(Vec<PathBuf>, View)> {
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
