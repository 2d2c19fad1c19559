//! Containers on disk: one directory per container under `<root>/containers`, its record
//! written atomically, a lock per container for read-modify-write and one for names.
//!
//! ```text
//! <root>/containers/names.lock     exclusive while a name is checked and taken
//! <root>/containers/names/<name>   the id holding the name: one file read finds a container
//!                                  by name, however many there are
//! <root>/containers/userns.lock    exclusive while a user namespace's id range is picked
//! <root>/containers/<id>/record.json, lock, rootfs/ upper/ work/,
//!                       userns (its id range, see `userns`),
//!                       hostname hosts resolv.conf, <id>-json.log, monitor.sock,
//!                       monitor.lock (see `Owner`)
//! ```

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::request::RunRequest;

/// Docker's container statuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Running, paused or restarting: a monitor owns the container.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// The container's life as Docker's `State` shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    pub status: Status,
    /// The container's init as the host sees it; 0 when not running.
    pub pid: i32,
    pub pid_start: u64,
    /// The monitor that owns the running container.
    pub monitor_pid: i32,
    pub monitor_start: u64,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
    pub oom_killed: bool,
    /// Stopped by `stop`/`kill`... so restart policies leave it alone (Docker's
    /// HasBeenManuallyStopped).
    pub manually_stopped: bool,
    pub restart_count: u32,
    /// Docker's `State.Health`, while the container has a health check (the monitor's
    /// probes write it: monitor/health.rs).
    pub health: Option<crate::health::Health>,
}

/// Everything berth keeps about a container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    pub created: String,
    /// The image as asked (`busybox`), and its id (`sha256:...`).
    pub image: String,
    pub image_id: String,
    pub request: RunRequest,
    pub state: State,
    #[serde(default)]
    pub hostname: String,
    /// The network attachment once the container has one.
    #[serde(default)]
    pub network: Option<berth_net::Attachment>,
    /// Networks joined while running (`network connect`): `eth1`...
    #[serde(default)]
    pub networks: Vec<berth_net::Attachment>,
    /// Anonymous volumes made for this container (removed by `rm -v`).
    #[serde(default)]
    pub anonymous_volumes: Vec<String>,
    /// What create left out and says so (limits a rootless container cannot have).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The host ids of its user namespace, its own or the one it joined (`userns::allocate`);
    /// see `userns::of`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userns: Option<crate::userns::IdMap>,
    /// Whether its root stacks its image's init layer above the image's layers, as decided at
    /// create for its whole life (`bundle::init_layer_for`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub init_layer: bool,
}

/// Every container whose record could be read, and why the others were skipped: one
/// unreadable record must not hide all the others (nor stop `ps` or a prune).
#[derive(Debug, Default)]
pub struct Listing {
    /// Oldest first.
    pub records: Vec<Record>,
    pub skipped: Vec<Skipped>,
}

/// A container left out of a [`Listing`].
#[derive(Debug, thiserror::Error)]
#[error("skipping container {}: {error}", crate::error::short(.id))]
pub struct Skipped {
    pub id: String,
    pub error: Error,
}

/// Held while a lock file is locked; dropping it releases the flock.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// Who owns a container: `<dir>/monitor.lock` is held by its monitor for the monitor's whole
/// life, and by `rm` while it removes the container, so that a monitor never runs a container
/// being removed and `rm` never removes what a monitor still works on. The holder writes its
/// pid and start time in the file: that is how `rm` finds the monitor, and waits for its end,
/// when the record is lost.
#[derive(Debug)]
pub enum Owner {
    /// The lock is ours until dropped.
    Us(Lock),
    /// Another process holds it: its pid and start time, once it has written them.
    Other(Option<(i32, u64)>),
}

/// The container directory tree under a data root.
#[derive(Debug, Clone)]
pub struct Containers {
    dir: PathBuf,
}

/// The mode of `containers/`: others may go through (the root of a container with a user
/// namespace reaches its root filesystem as a host id of its range) but not list it.
const CONTAINERS_MODE: u32 = 0o711;

/// The mode of each container's directory, root's, its group the container's own root where
/// it has a user namespace (see [`Containers::make_dir`]).
const CONTAINER_MODE: u32 = 0o710;

/// `dir` made (with its parents) root's alone, 0700, if it is not there: what containers,
/// images and builds leave under the data root (setuid programs, device nodes among it) is out
/// of local users' reach (see [`Containers::make_dir`]).
pub(crate) fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io("create", dir))
}

impl Containers {
    pub fn open(data_root: &Path) -> Result<Containers> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let containers = Containers {
            dir: data_root.join("containers"),
        };
        // One statx at each open: there, and closed (a data root an older berth made, 0755
        // all through, is closed once; one closed further by hand, 0700, is left as it is).
        match fs::metadata(&containers.dir) {
            Ok(m) if m.is_dir() && m.permissions().mode() & 0o066 == 0 => {}
            Ok(m) if m.is_dir() => containers.close_old_root(data_root),
            _ => fs::DirBuilder::new()
                .recursive(true)
                .mode(CONTAINERS_MODE)
                .create(&containers.dir)
                .map_err(Error::io("create", &containers.dir))?,
        }
        Ok(containers)
    }

    /// Makes container `id`'s directory, or closes it: its upper layer holds whatever the
    /// container wrote, setuid programs and device nodes among them, and its root filesystem
    /// is mounted in it, so no local user but root may go through it (as Docker closed its
    /// own, CVE-2021-41091). `group`: the host id of the container's root, for one with a
    /// user namespace, whose runtime reaches the root filesystem as that id.
    pub fn make_dir(&self, id: &str, group: Option<u32>) -> Result<PathBuf> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = self.dir(id);
        let made = fs::DirBuilder::new().mode(CONTAINER_MODE).create(&dir);
        match made {
            // Made now by root, root's: the mode (less what the umask takes, closing it
            // further) is all a container without a user namespace needs.
            Ok(()) if group.is_none() => return Ok(dir),
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create", &dir)(e)),
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(CONTAINER_MODE))
            .map_err(Error::io("chmod", &dir))?;
        // Rootless, the directory is the user's, as everything in its data root.
        if !berth_sys::rootless::is_rootless() {
            std::os::unix::fs::chown(&dir, Some(0), Some(group.unwrap_or(0)))
                .map_err(Error::io("chown", &dir))?;
        }
        Ok(dir)
    }

    /// A data root an older berth made, closed: every container directory as
    /// [`make_dir`](Self::make_dir) makes them (each with its user namespace's group, from its
    /// record), the image store, volumes and build caches root's alone, then `containers/`
    /// itself, which says it was done. Best effort.
    fn close_old_root(&self, data_root: &Path) {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(entries) = fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(id) = name.to_str().filter(|n| n.len() == 64 && is_hex(n)) else {
                    continue;
                };
                let group = self
                    .load(id)
                    .ok()
                    .and_then(|r| crate::userns::of(&r))
                    .map(|map| map.host_id);
                let _ = self.make_dir(id, group);
            }
        }
        for dir in ["image", "volumes", "build"] {
            let dir = data_root.join(dir);
            if fs::metadata(&dir).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
                let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
            }
        }
        let _ = fs::set_permissions(&self.dir, fs::Permissions::from_mode(CONTAINERS_MODE));
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The lock that makes "is this name free? take it" one step.
    pub fn lock_names(&self) -> Result<Lock> {
        lock(&self.dir.join("names.lock"))
    }

    /// The lock that makes "which id ranges are free? take one" one step (`userns`).
    pub fn lock_userns(&self) -> Result<Lock> {
        lock(&self.dir.join("userns.lock"))
    }

    /// The lock for a read-modify-write of one container's record.
    pub fn lock(&self, id: &str) -> Result<Lock> {
        lock(&self.dir(id).join("lock"))
    }

    /// Takes the container's owner lock if it is free (see [`Owner`]).
    pub fn try_own(&self, id: &str) -> Result<Owner> {
        use std::io::{Read, Seek};
        let path = self.dir(id).join("monitor.lock");
        let mut file = File::options()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::NoSuchContainer(id.to_string()),
                _ => Error::io("open", &path)(e),
            })?;
        match file.try_lock() {
            Ok(()) => {
                let me = std::process::id() as i32;
                let start = berth_runtime::state::process_start_time(me).unwrap_or(0);
                file.set_len(0)
                    .and_then(|()| file.write_all(format!("{me} {start}\n").as_bytes()))
                    .map_err(Error::io("write", &path))?;
                Ok(Owner::Us(Lock { _file: file }))
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
                let mut words = text.split_whitespace().map(str::parse::<u64>);
                let holder = match (words.next(), words.next()) {
                    (Some(Ok(pid)), Some(Ok(start))) => i32::try_from(pid).ok().map(|p| (p, start)),
                    _ => None,
                };
                Ok(Owner::Other(holder))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io("lock", &path)(e)),
        }
    }

    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(Error::io("list", &self.dir))? {
            let entry = entry.map_err(Error::io("list", &self.dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() == 64 && entry.path().join("record.json").exists() {
                ids.push(name);
            }
        }
        Ok(ids)
    }

    pub fn load(&self, id: &str) -> Result<Record> {
        let path = self.dir(id).join("record.json");
        let data = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::NoSuchContainer(id.to_string()),
            _ => Error::Io {
                step: "read",
                path: path.clone(),
                source: e,
            },
        })?;
        serde_json::from_slice(&data).map_err(|e| Error::CorruptRecord {
            id: id.to_string(),
            path,
            reason: e.to_string(),
        })
    }

    pub fn save(&self, record: &Record) -> Result<()> {
        write_atomic(
            &self.dir(&record.id).join("record.json"),
            &serialise(record)?,
        )
    }

    /// Loads, changes and saves a record under its lock.
    pub fn update<T>(&self, id: &str, change: impl FnOnce(&mut Record) -> T) -> Result<T> {
        let _lock = self.lock(id)?;
        let mut record = self.load(id)?;
        let out = change(&mut record);
        self.save(&record)?;
        Ok(out)
    }

    /// [`update`](Self::update) in two halves: the slow one now (the lock, the read, the change,
    /// the new record written beside the old one), the rename when the [`Staged`] is
    /// committed. The monitor stages a start's record while the init sets up its root.
    pub fn stage<T>(&self, id: &str, change: impl FnOnce(&mut Record) -> T) -> Result<(Staged, T)> {
        let lock = self.lock(id)?;
        let mut record = self.load(id)?;
        let out = change(&mut record);
        let data = serialise(&record)?;
        let path = self.dir(id).join("record.json");
        // One name, the lock holder's alone: a stager killed before its rename leaves this
        // file, which the next stage overwrites (and renames or removes), not one more.
        let staged = self.dir(id).join("record.json.staged");
        fs::write(&staged, &data).map_err(Error::io("write", &staged))?;
        Ok((
            Staged {
                staged,
                path,
                committed: false,
                _lock: lock,
            },
            out,
        ))
    }

    /// Every container, oldest first, and those whose record cannot be read.
    pub fn all(&self) -> Result<Listing> {
        let mut listing = Listing::default();
        for id in self.ids()? {
            match self.load(&id) {
                Ok(r) => listing.records.push(r),
                // Removed between the listing and the read.
                Err(Error::NoSuchContainer(_)) => {}
                Err(error) => listing.skipped.push(Skipped { id, error }),
            }
        }
        listing.records.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(listing)
    }

    /// Docker's lookup: a full id, an exact name (with or without the leading '/'), or a
    /// unique id prefix.
    pub fn find(&self, key: &str) -> Result<Record> {
        let key = key.strip_prefix('/').unwrap_or(key);
        if key.is_empty() {
            return Err(Error::NoSuchContainer(key.to_string()));
        }
        if key.len() == 64 && is_hex(key) {
            return self.load(key);
        }
        if let Some(id) = self.name_holder(key) {
            match self.load(&id) {
                Ok(r) if r.name == key => return Ok(r),
                Ok(_) | Err(Error::NoSuchContainer(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let mut matches = self.ids()?.into_iter().filter(|id| id.starts_with(key));
        match (matches.next(), matches.next()) {
            (Some(id), None) => self.load(&id),
            (Some(_), Some(_)) => Err(Error::Invalid(format!(
                "multiple containers match {key:?}: give more of the id or the name"
            ))),
            _ => Err(Error::NoSuchContainer(key.to_string())),
        }
    }

    fn name_file(&self, name: &str) -> PathBuf {
        self.dir.join("names").join(name)
    }

    /// The id the name index gives for `name`, if any (it may be stale: check the record).
    fn name_holder(&self, name: &str) -> Option<String> {
        let id = fs::read_to_string(self.name_file(name)).ok()?;
        let id = id.trim();
        (id.len() == 64 && is_hex(id)).then(|| id.to_string())
    }

    /// Whether a container holds `name` (the names index, checked against the record): one
    /// file read, where `find` would also list every container for an id prefix.
    pub fn name_taken(&self, name: &str) -> bool {
        self.name_holder(name)
            .is_some_and(|id| self.load(&id).is_ok_and(|r| r.name == name))
    }

    /// Takes `name` for `id`; the id already holding it if it is taken. An entry whose
    /// container is gone (or was renamed) is stale and taken over. Call under `lock_names`.
    pub fn reserve_name(&self, name: &str, id: &str) -> Result<Option<String>> {
        if let Some(holder) = self.name_holder(name) {
            if holder != id && self.load(&holder).is_ok_and(|r| r.name == name) {
                return Ok(Some(holder));
            }
        }
        let dir = self.dir.join("names");
        fs::create_dir_all(&dir).map_err(Error::io("create", &dir))?;
        write_atomic(&self.name_file(name), id.as_bytes())?;
        Ok(None)
    }

    /// Removes the temporaries a create or rename killed between writing a name's entry and
    /// renaming it into place left in the names index (`write_atomic`'s `.tmp*`): nothing
    /// reads them, and each has a random name, so nothing else ever would. Under `lock_names`,
    /// which every writer of the index holds, so none is a write in progress.
    pub fn sweep_name_temporaries(&self) {
        let Ok(_names) = self.lock_names() else {
            return;
        };
        let dir = self.dir.join("names");
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().as_encoded_bytes().starts_with(b".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Gives `name` back, if `id` holds it.
    pub fn release_name(&self, name: &str, id: &str) {
        if self.name_holder(name).as_deref() == Some(id) {
            let _ = fs::remove_file(self.name_file(name));
        }
    }

    /// Removes a container's directory (its mounts must be gone already) and its name (found in
    /// the names index when the record cannot give it). Call as the container's owner: the
    /// directory is renamed away first, so that nothing creates a file in it by its path (a
    /// command taking the record's lock, a monitor starting) while it is being removed.
    pub fn remove(&self, id: &str, name: Option<&str>) -> Result<()> {
        match self.hide(id, name)? {
            Some(doomed) => Self::delete_hidden(&doomed),
            None => Ok(()),
        }
    }

    /// The first half of `remove`, all that `ps -a`, a lookup or a new container with the
    /// same name can see: the name given back and the directory renamed to `.removing-<id>`,
    /// whose path is returned (None if there was no directory) for `delete_hidden`. Mounts
    /// may still be under it: a directory holding mount points can be renamed.
    pub fn hide(&self, id: &str, name: Option<&str>) -> Result<Option<PathBuf>> {
        let dir = self.dir(id);
        match name {
            // The name's file moves into the directory, deleted with it: freeing its block
            // here would wait for the disk where the filesystem discards synchronously.
            Some(name) if self.name_holder(name).as_deref() == Some(id) => {
                if fs::rename(self.name_file(name), dir.join("name")).is_err() {
                    self.release_name(name, id);
                }
            }
            Some(_) => {}
            None => self.release_names_of(id),
        }
        let doomed = self.dir.join(format!(".removing-{id}"));
        // Left by a removal that was killed half-way.
        let _ = fs::remove_dir_all(&doomed);
        match fs::rename(&dir, &doomed) {
            Ok(()) => Ok(Some(doomed)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("rename for removal", dir)(e)),
        }
    }

    /// Directories `hide` renamed away whose removal nobody is finishing (the monitor that
    /// hid it was killed before it was done): their ids and paths, each with the owner lock
    /// taken, for the caller to finish.
    pub fn abandoned(&self) -> Vec<(String, PathBuf, Lock)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_prefix(".removing-")) else {
                continue;
            };
            let path = entry.path();
            let Ok(file) = File::options().write(true).open(path.join("monitor.lock")) else {
                continue;
            };
            if file.try_lock().is_ok() {
                found.push((id.to_string(), path, Lock { _file: file }));
            }
        }
        found
    }

    /// The second half of `remove`: the hidden directory's files (its mounts gone already).
    /// A process that began to open a file of the container's by its old path just before the
    /// rename (a monitor a racing `start` spawned: its monitor.log, its lock file) may create
    /// it here after the removal listed the directory: the removal goes over it again then (a
    /// path walk in flight at the rename is over in microseconds; a later one finds no path).
    pub fn delete_hidden(doomed: &Path) -> Result<()> {
        let mut removed = fs::remove_dir_all(doomed);
        for _ in 0..3 {
            match &removed {
                Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                    removed = fs::remove_dir_all(doomed);
                }
                _ => break,
            }
        }
        removed.map_err(Error::io("remove container directory", doomed))
    }

    /// Drops every name the index gives to `id`.
    fn release_names_of(&self, id: &str) {
        let Ok(entries) = fs::read_dir(self.dir.join("names")) else {
            return;
        };
        for entry in entries.flatten() {
            if fs::read_to_string(entry.path()).is_ok_and(|held| held.trim() == id) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

pub fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An exclusive flock on `path` (made if missing), held until the [`Lock`] drops.
pub fn lock(path: &Path) -> Result<Lock> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(Error::io("open lock", path))?;
    file.lock().map_err(Error::io("lock", path))?;
    Ok(Lock { _file: file })
}

/// Writes `data` to a temp file in the same directory, then renames it over `path`.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(Error::io("create temp in", dir))?;
    // No fsync: the rename makes the update atomic for readers, which is what commands
    // racing each other need; durability across a power cut is not worth a flush per start.
    tmp.write_all(data)
        .map_err(Error::io("write", tmp.path().to_path_buf()))?;
    tmp.persist(path).map_err(|e| Error::Io {
        step: "rename into place",
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// A record as record.json holds it.
fn serialise(record: &Record) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(record).map_err(|e| Error::Invalid(format!("serialise record: {e}")))
}

/// A record update written and waiting for its rename, under the record's lock (see
/// [`Containers::stage`]). Dropped uncommitted, the record is as it was: the staged file is
/// removed and the lock released.
pub struct Staged {
    staged: PathBuf,
    path: PathBuf,
    committed: bool,
    _lock: Lock,
}

impl Staged {
    /// Puts the new record in place (then releases the lock).
    pub fn commit(mut self) -> Result<()> {
        fs::rename(&self.staged, &self.path).map_err(|source| Error::Io {
            step: "rename into place",
            path: self.path.clone(),
            source,
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    /// Uncommitted: the staged record goes (under the lock, released after).
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.staged);
        }
    }
}

/// Now, as Docker writes times (RFC 3339 with nanoseconds, UTC).
pub fn now() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// Is `pid` still the process that started at `start` (not a recycled pid)?
pub fn alive(pid: i32, start: u64) -> bool {
    pid > 0 && berth_runtime::state::process_start_time(pid) == Some(start)
}
