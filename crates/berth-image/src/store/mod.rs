//! The image store under the data root: an OCI image layout plus unpacked layer directories.
//!
//! ```text
//! <root>/image/oci-layout, index.json   the layout; index.json lists every image (see records)
//! <root>/image/blobs/sha256/<hex>       manifests, configs, layers: verified, then renamed in
//! <root>/image/layers/<diff-id hex>/    diff/ (an overlay lowerdir) and size, shared by images
//! <root>/image/layers/init-<image-id hex>/  diff/: the mount points the image lacks (init.rs)
//! <root>/image/tmp/                     work in progress; removed by gc when nothing runs
//! <root>/image/gc.lock                  shared by writers, exclusive for garbage collection
//! <root>/image/index.lock               exclusive around each read-modify-write of index.json
//! <root>/image/pins/<owner>/<name>.json  what gc keeps though no image names it (the build cache)
//! ```
//! An image appears in index.json only after all its blobs and layers are in place, so a
//! failed or killed pull leaves no partial image, only verified blobs that the next pull reuses.

mod blobs;
mod gc;
mod init;
mod layers;
mod pins;
mod records;

use std::fs::{self, File};
use std::path::{Path, PathBuf};

pub use blobs::BlobWriter;
pub use gc::GcReport;
pub use init::{InitEntry, InitKind, InitLayer};
pub use layers::TempLayer;
pub use pins::Pin;
pub use records::Image;

use crate::error::{Error, Result};

/// The default data root, like Docker's /var/lib/docker.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";

/// Which containers use an image: the engine knows, the image commands ask (`rmi` refuses an
/// image in use, `image prune -a` keeps it, `system df` counts it as active).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImageUse {
    /// Containers created from the image, in any state.
    pub containers: usize,
    /// How many of them are running (`rmi -f` cannot remove the image from under those).
    pub running: usize,
}

impl ImageUse {
    pub fn in_use(&self) -> bool {
        self.containers > 0
    }
}

/// An open image store.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

/// Held while a lock file is locked; closing the file releases the flock.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

impl Store {
    /// Opens (creating if needed) the store under `data_root`.
    pub fn open(data_root: &Path) -> Result<Store> {
        let dir = data_root.join("image");
        // index.json is made last: there, the store was made whole before (a statx or two,
        // not eight system calls, at each of the two opens of every `run`'s command and
        // monitor). tmp, empty between commands, may have been swept since: made again then.
        if dir.join("index.json").is_file() && dir.join("tmp").is_dir() {
            return Ok(Store { dir });
        }
        // Root's alone: layers hold images' setuid programs and device nodes, which no local
        // user may reach (Docker closed its own so, CVE-2021-41091; only root, which mounts
        // them, reads them). An older store is closed with the rest of its data root
        // (berth-engine's `Containers::open`).
        std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
            .create(&dir)
            .map_err(Error::io("create store directory", &dir))?;
        for sub in ["blobs/sha256", "layers", "tmp"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(Error::io("create store directory", &path))?;
        }
        let store = Store { dir };
        store.write_if_missing("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        store.write_if_missing("index.json", br#"{"schemaVersion":2,"manifests":[]}"#)?;
        Ok(store)
    }

    /// Replaces an error caused by a full disk with the one line users need (where, what to do).
    pub fn explain_no_space(&self, e: Error) -> Error {
        if !e.is_no_space() || matches!(e, Error::NoSpace { .. }) {
            return e;
        }
        Error::NoSpace {
            root: self.dir.parent().unwrap_or(&self.dir).to_path_buf(),
            detail: e.root().to_string(),
        }
    }

    /// The store's own directory (`<root>/image`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write_if_missing(&self, name: &str, content: &[u8]) -> Result<()> {
        let path = self.dir.join(name);
        if path.exists() {
            return Ok(());
        }
        self.write_atomic(&path, content)
    }

    /// Writes `content` to a temp file beside nothing else, then renames it over `path`.
    pub(crate) fn write_atomic(&self, path: &Path, content: &[u8]) -> Result<()> {
        let mut tmp = tempfile::NamedTempFile::new_in(self.tmp_dir())
            .map_err(Error::io("create temp file in", self.tmp_dir()))?;
        std::io::Write::write_all(&mut tmp, content)
            .map_err(Error::io("write", tmp.path().to_path_buf()))?;
        tmp.persist(path).map_err(|e| Error::Io {
            step: "rename into place",
            path: path.into(),
            source: e.error,
        })?;
        Ok(())
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// A shared hold that keeps garbage collection away while blobs and layers are written.
    pub fn lock_shared(&self) -> Result<LockGuard> {
        let file = self.lock_file("gc.lock")?;
        file.lock_shared()
            .map_err(Error::io("lock", self.dir.join("gc.lock")))?;
        Ok(LockGuard { _file: file })
    }

    /// [`Store::lock_shared`], or None while a collection holds the store.
    fn try_lock_shared(&self) -> Result<Option<LockGuard>> {
        self.try_lock_gc(fs::File::try_lock_shared)
    }

    /// The exclusive lock for collection, or None if some command is writing right now.
    fn try_lock_exclusive(&self) -> Result<Option<LockGuard>> {
        self.try_lock_gc(fs::File::try_lock)
    }

    fn try_lock_gc(
        &self,
        lock: fn(&File) -> std::result::Result<(), fs::TryLockError>,
    ) -> Result<Option<LockGuard>> {
        let file = self.lock_file("gc.lock")?;
        match lock(&file) {
            Ok(()) => Ok(Some(LockGuard { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => Err(Error::io("lock", self.dir.join("gc.lock"))(e)),
        }
    }

    fn lock_index(&self) -> Result<LockGuard> {
        let file = self.lock_file("index.lock")?;
        file.lock()
            .map_err(Error::io("lock", self.dir.join("index.lock")))?;
        Ok(LockGuard { _file: file })
    }

    fn lock_file(&self, name: &str) -> Result<File> {
        let path = self.dir.join(name);
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(Error::io("open lock file", &path))
    }
}
