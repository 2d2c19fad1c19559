//! A stopped container's root filesystem, reached from the host: its overlay (the image's
//! layers and the container's changes) mounted at a directory of its own for the time of a
//! copy or an export. A running container's root is its init's (`/proc/<pid>/root`), or the
//! overlay its monitor mounted (`bundle::rootfs`).
//!
//! A copy also sees the container's volumes and bind mounts where it has them, as Docker's
//! daemon mounts them for one. Those mounts are made by a helper process in a mount namespace
//! of its own ([`IsolatedRoot`]), nothing propagating in or out: none of them ever shows on
//! the host (where a bind of a host directory mounted over a path the container's links chose
//! would be a mount on the host, and `rm`'s removal could walk into it), and all of them go
//! with the helper, however the copy ends.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
}

/// A directory of its own for each mount: two copies of one container at once (the API
/// serves many clients) must not stack their mounts on one directory and unmount each other's.
fn mount_dir(engine: &Engine, record: &Record) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    engine
        .containers
        .dir(&record.id)
        .join(format!("cp-root-{}-{n}", std::process::id()))
}

impl StoppedRoot {
    pub fn mount(engine: &Engine, record: &Record) -> Result<StoppedRoot> {
        Self::mount_at(engine, record, mount_dir(engine, record))
    }

    fn mount_at(engine: &Engine, record: &Record, dir: PathBuf) -> Result<StoppedRoot> {
        let cdir = engine.containers.dir(&record.id);
        let (_, layers) = crate::bundle::image_of(engine, record)?;
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

    /// The container's volumes and bind mounts mounted on the root where it has them, as its
    /// processes will see them (Docker's `mountVolumes` before a copy). A volume (acquired
    /// by [`Held`]) is first filled from the image as the container's first start would fill
    /// it (Docker fills it at create). Each mount point is resolved inside the root (its
    /// links followed there, as the start follows them) and made where missing; one that
    /// leads to the root itself is refused. `:ro` ones are read-only from their first moment.
    /// A bind whose source is missing is left out (the start makes it). Only in [`serve`]'s
    /// mount namespace.
    fn mount_volumes(&self, engine: &Engine, record: &Record) -> Result<()> {
        let mut mounts: Vec<_> = record
            .request
            .mounts
            .iter()
            .filter(|m| m.is_host_path())
            .collect();
        // Parents first, as the spec orders them (a volume at /a, a bind at /a/b).
        mounts.sort_by_key(|m| Path::new(&m.target).components().count());
        let root = nix::fcntl::open(
            &self.dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open the container's root", &self.dir)(e.into()))?;
        let root_id = ids(&root, &self.dir)?;
        // Every volume filled from the root before any is mounted on it, as at the start.
        for m in mounts.iter().filter(|m| m.kind == "volume") {
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
            let leaf = match std::fs::metadata(&source) {
                Ok(meta) if meta.is_dir() => resolve::Leaf::Dir,
                Ok(_) => resolve::Leaf::File,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && m.kind == "bind" => continue,
                Err(e) => return Err(Error::io("mount for the copy", source)(e)),
            };
            let at = resolve::create(root.as_fd(), Path::new(&m.target), leaf)
                .map_err(Error::io("make the mount point for the copy", &m.target))?;
            if ids(&at, Path::new(&m.target))? == root_id {
                return Err(Error::Invalid(format!(
                    "the container's mount point {} leads to its root: remove the link there",
                    m.target
                )));
            }
            berth_sys::mount::bind_tree(&source, at.as_fd(), m.is_read_only())
                .map_err(Error::io("mount for the copy", source))?;
        }
        Ok(())
    }
}

/// A file's device and inode.
fn ids(fd: &OwnedFd, path: &Path) -> Result<(u64, u64)> {
    let st = nix::sys::stat::fstat(fd).map_err(|e| Error::io("stat", path)(e.into()))?;
    Ok((st.st_dev, st.st_ino))
}

impl Drop for StoppedRoot {
    fn drop(&mut self) {
        // Detached: nothing holds it but this process. Should it fail all the same, `rm`
        // unmounts whatever is left under the container's directory.
        let _ = nix::mount::umount2(&self.dir, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The volumes of a copy's container, acquired in the host's mount namespace (a volume's
/// options are mounted there, where its users count), under a name of the copy's own; released
/// there when dropped, back in that namespace.
struct Held {
    host_ns: std::fs::File,
    holder: String,
    dirs: Vec<PathBuf>,
}

impl Held {
    fn acquire(engine: &Engine, record: &Record) -> Result<Held> {
        let ns = "/proc/self/ns/mnt";
        let mut held = Held {
            host_ns: std::fs::File::open(ns).map_err(Error::io("open", ns))?,
            holder: crate::volumes::local::copy_holder(&record.id, std::process::id()),
            dirs: Vec::new(),
        };
        for m in record.request.mounts.iter().filter(|m| m.kind == "volume") {
            crate::volumes::local::acquire(engine, &m.source, &held.holder)?;
            held.dirs.push(engine.volumes_dir().join(&m.source));
        }
        Ok(held)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if nix::sched::setns(self.host_ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNS).is_err() {
            // Not back in the host's namespace: a release here could unmount only in ours. The
            // next release of each volume drops this holder, its process gone.
            return;
        }
        for dir in &self.dirs {
            let _ = crate::volumes::local::release_dir(dir, &self.holder);
        }
    }
}

/// A stopped container's root with its volumes, mounted by a helper (`berth __stopped-root`)
/// in its own mount namespace and reached through `/proc/<helper>/root`; the helper ends,
/// and its mounts with it, when this is dropped or this process dies.
#[derive(Debug)]
pub struct IsolatedRoot {
    child: Child,
    dir: PathBuf,
}

impl IsolatedRoot {
    pub fn mount(engine: &Engine, record: &Record) -> Result<IsolatedRoot> {
        let dir = mount_dir(engine, record);
        let child = Command::new(&engine.exe)
            .arg("--root")
            .arg(&engine.root)
            .arg("__stopped-root")
            .arg(&record.id)
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own: the terminal's ^C and a signal to the caller's group end the
            // copy, and the helper with it by its stdin's end, after it released the volumes.
            .process_group(0)
            .spawn()
            .map_err(Error::io("spawn the copy's mount helper", &engine.exe))?;
        let mut root = IsolatedRoot { child, dir };
        let mut line = String::new();
        if let Some(out) = root.child.stdout.as_mut() {
            let _ = BufReader::new(out).read_line(&mut line);
        }
        if line.trim() != READY {
            let mut why = String::new();
            if let Some(err) = root.child.stderr.as_mut() {
                let _ = err.take(4096).read_to_string(&mut why);
            }
            let why = why.trim();
            let why = why.strip_prefix("berth: ").unwrap_or(why);
            return Err(Error::Invalid(if why.is_empty() {
                "the copy's mount helper ended before it mounted the container's root".into()
            } else {
                why.to_string()
            }));
        }
        Ok(root)
    }

    /// The root's directory as the helper's mounts show it.
    pub fn open(&self) -> Result<OwnedFd> {
        let path = Path::new(&format!("/proc/{}/root", self.child.id()))
            .join(self.dir.strip_prefix("/").unwrap_or(&self.dir));
        nix::fcntl::open(
            &path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::io("open the container's root", &path)(e.into()))
    }
}

impl Drop for IsolatedRoot {
    fn drop(&mut self) {
        // Its end of file: the helper releases what it acquired and ends.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
        // Made in the host's filesystem, a mount point only in the helper's namespace.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

const READY: &str = "mounted";

/// `berth __stopped-root ID DIR`: [`IsolatedRoot`]'s helper. In a mount namespace of its own
/// where nothing propagates, it mounts container `id`'s overlay at `dir` (in the container's
/// directory) and its volumes on it, says so on stdout, and holds them until its stdin ends.
pub fn serve(engine: &Engine, id: &str, dir: &Path) -> Result<()> {
    let record = engine.containers.load(id)?;
    let named = dir
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("cp-root-"));
    if !named || dir.parent() != Some(engine.containers.dir(&record.id).as_path()) {
        return Err(Error::Invalid(format!(
            "{} is not a copy's directory of container {id}",
            dir.display()
        )));
    }
    // Declared first, dropped last: released after the mounts are gone, in the host's namespace.
    let _held = Held::acquire(engine, &record)?;
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| Error::io("unshare the mount namespace (CLONE_NEWNS) for", dir)(e.into()))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| Error::io("make the copy's mounts private (MS_PRIVATE) at", "/")(e.into()))?;
    let root = StoppedRoot::mount_at(engine, &record, dir.to_path_buf())?;
    root.mount_volumes(engine, &record)?;
    let mut out = std::io::stdout();
    writeln!(out, "{READY}")
        .and_then(|()| out.flush())
        .map_err(Error::io("tell the copy its root is mounted at", dir))?;
    // Until the copy is over, or its process gone.
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    drop(root);
    Ok(())
}
