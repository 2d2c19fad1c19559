//! Container state under the runtime root: `<root>/<id>/state.json`, written atomically, and the
//! status derived from the live process rather than stored, so it cannot go stale.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Process, Spec};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

/// The runtime-spec statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Stopped,
    Paused,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Paused => "paused",
        })
    }
}

/// What berth keeps about a container between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// The init's pid as the host sees it; 0 before it exists.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/PID/stat), so a recycled pid is not mistaken
    /// for the container.
    pub pid_start: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    /// Where the container's cgroup is in each hierarchy (a plain path in state files
    /// written before runc's default was followed, which still read as one).
    pub cgroup_path: crate::cgroup::CgroupPath,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The config as it was at create: hooks and the process template for exec come from here.
    pub spec: Spec,
}

/// What identifies a container's init and its cgroup, read from its state without the spec
/// (most of the file: Docker's seccomp profile alone is 6 KB of it): all a signal needs.
#[derive(Debug, Deserialize)]
pub struct Header {
    pub id: String,
    pub pid: i32,
    pub pid_start: u64,
    pub cgroup_path: crate::cgroup::CgroupPath,
}

/// The state document `state` and `list --format json` print: runc's `containerState`, its
/// fields in the order of that Go struct (tools match the text), `ociVersion` the config's.
#[derive(Debug, Clone, Serialize)]
pub struct StateDoc<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
    pub owner: &'a str,
}

/// The runtime-spec's state (`specs.State`), what hooks read on stdin and a seccomp agent
/// receives: runc sends this shape, in this order, with the runtime's spec version.
#[derive(Debug, Clone, Serialize)]
pub struct SpecState<'a> {
    #[serde(rename = "ociVersion")]
    pub oci_version: &'a str,
    pub id: &'a str,
    pub status: Status,
    #[serde(skip_serializing_if = "is_zero")]
    pub pid: i32,
    pub bundle: &'a Path,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

impl Record {
    /// The init's pid while it lives; 0 once stopped, as runc reports it.
    fn pid_in(&self, status: Status) -> i32 {
        if status == Status::Stopped {
            0
        } else {
            self.pid
        }
    }

    pub fn doc(&self, status: Status) -> StateDoc<'_> {
        StateDoc {
            oci_version: self.spec.version(),
            id: &self.id,
            pid: self.pid_in(status),
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner: "",
        }
    }

    /// The state hooks get on stdin, as JSON.
    pub fn spec_state(&self, status: Status) -> SpecState<'_> {
        SpecState {
            oci_version: oci_spec::runtime::VERSION,
            id: &self.id,
            status,
            pid: self.pid_in(status),
            bundle: &self.bundle,
            annotations: &self.annotations,
        }
    }

    /// [`Record::spec_state`] as JSON, for hooks' stdin.
    pub fn hook_input(&self, status: Status) -> Vec<u8> {
        serde_json::to_vec(&self.spec_state(status)).unwrap_or_default()
    }
}

/// The runtime root (`--root`, default /run/berth-runc) and the per-container directories.
#[derive(Debug, Clone)]
pub struct Root {
    pub path: PathBuf,
    /// Remove the root with its last container (see [`Root::removed_when_empty`]).
    transient: bool,
}

const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// A container id is a single path component of safe characters: it names a directory.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::BadId(id.to_string()))
    }
}

impl Root {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Root {
            path: path.into(),
            transient: false,
        }
    }

    /// A root that exists only while it holds a container: the removal of the last one
    /// removes the root too (the engine's, one per data root, would otherwise pile up in
    /// /run). runc keeps its root, and so does a plain [`Root::new`].
    pub fn removed_when_empty(self) -> Self {
        Root {
            transient: true,
            ..self
        }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Creates the container's directory; fails if it exists (the id is taken). The root is
    /// made only when the directory's mkdir says it is missing.
    pub fn create_dir(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        let dir = self.dir(id);
        // A transient root may go between the two steps, with the removal of its last
        // container (an rmdir, which only an empty root allows): make it again then. Each
        // retry means another container's removal finished meanwhile, so a few suffice.
        let mut retries = 8;
        loop {
            match fs::create_dir(&dir) {
                Ok(()) => return Ok(dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return Err(Error::Exists(id.to_string()))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && retries > 0 => {
                    retries -= 1;
                    fs::create_dir_all(&self.path).at("create runtime root", &self.path)?;
                }
                Err(e) => return Err(e).at("create container directory", dir),
            }
        }
    }

    pub fn save(&self, record: &Record) -> Result<()> {
        let dir = self.dir(&record.id);
        let tmp = dir.join(".state.json.tmp");
        let data = serde_json::to_vec(record)
            .map_err(std::io::Error::other)
            .at("encode state", &tmp)?;
        let mut f = fs::File::create(&tmp).at("write state", &tmp)?;
        f.write_all(&data).at("write state", &tmp)?;
        fs::rename(&tmp, dir.join(STATE_FILE)).at("write state", dir.join(STATE_FILE))
    }

    pub fn load(&self, id: &str) -> Result<Record> {
        self.load_as(id)
    }

    /// The container's [`Header`], the rest of its state skipped unparsed.
    pub fn load_header(&self, id: &str) -> Result<Header> {
        self.load_as(id)
    }

    /// The process of the config the container was created with (what `exec` starts from),
    /// read without the rest of its state: the spec's mounts and seccomp profile are most of
    /// the file.
    pub fn load_process(&self, id: &str) -> Result<Option<Process>> {
        #[derive(Deserialize)]
        struct SpecProcess {
            #[serde(default)]
            process: Option<Process>,
        }
        #[derive(Deserialize)]
        struct StateProcess {
            spec: SpecProcess,
        }
        Ok(self.load_as::<StateProcess>(id)?.spec.process)
    }

    fn load_as<T: serde::de::DeserializeOwned>(&self, id: &str) -> Result<T> {
        validate_id(id)?;
        let path = self.dir(id).join(STATE_FILE);
        let data = match berth_sys::file::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(e).at("read state", path),
        };
        serde_json::from_slice(&data)
            .map_err(std::io::Error::other)
            .at("parse state", path)
    }

    /// Ids of every container under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let entries = match fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(e).at("list runtime root", &self.path),
        };
        for entry in entries.flatten() {
            if entry.path().join(STATE_FILE).exists() {
                ids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Removes the container's directory: the state file and the directory, the usual
    /// content, by name; a walk of the directory only when something else is left in it.
    pub fn remove_dir(&self, id: &str) -> Result<()> {
        let dir = self.dir(id);
        let _ = fs::remove_file(dir.join(STATE_FILE));
        let removed = match fs::remove_dir(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => fs::remove_dir_all(&dir),
            r => r,
        };
        match removed {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at("remove container directory", dir),
        }
        if self.transient {
            // Fails while other containers (or stale state of ones long gone) are there.
            let _ = fs::remove_dir(&self.path);
        }
        Ok(())
    }
}

/// Start time of a process (clock ticks since boot), or None if it does not exist.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    // This process's own is read once: it cannot change while we run (a monitor asks for it
    // for its lock and its record). Kept with the pid it is of, so a child forked since (the
    // runtime's init) reads its own. Any other process's is read each time: the question is
    // whether that pid is still the same process. (A child forked into a pid namespace of its
    // own may have its parent's pid number, but then /proc, until it mounts its own, shows the
    // parent under that number anyway: none of ours asks for its own start time.)
    // Atomics, not a lock: a child forked while another thread held one would wait forever.
    use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
    static OWN_PID: AtomicI32 = AtomicI32::new(0);
    static OWN_START: AtomicU64 = AtomicU64::new(0);
    let me = std::process::id() as i32;
    if pid == me {
        if OWN_PID.load(Ordering::Acquire) == me {
            return Some(OWN_START.load(Ordering::Relaxed));
        }
        let start = read_start_time(pid)?;
        OWN_START.store(start, Ordering::Relaxed);
        OWN_PID.store(me, Ordering::Release);
        return Some(start);
    }
    read_start_time(pid)
}

fn read_start_time(pid: i32) -> Option<u64> {
    let stat = berth_sys::file::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// True while the record's init process is alive and is the same process.
pub fn init_alive(record: &Record) -> bool {
    is_alive(record.pid, record.pid_start)
}

/// True while `pid` is alive and is the process that started at `start`.
pub fn is_alive(pid: i32, start: u64) -> bool {
    process_start_time(pid) == Some(start)
}

/// RFC 3339 time of now, in UTC, with nanoseconds, as runc writes `created`.
pub fn now_rfc3339() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_single_safe_components() {
        assert!(validate_id("abc-1.2_x").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn a_transient_root_goes_with_its_last_container_and_comes_back() {
        let tmp = tempfile::tempdir().unwrap();
        let kept = Root::new(tmp.path().join("kept"));
        kept.create_dir("a").unwrap();
        kept.remove_dir("a").unwrap();
        assert!(kept.path.is_dir(), "a plain root stays, as runc's does");

        let root = Root::new(tmp.path().join("transient")).removed_when_empty();
        root.create_dir("a").unwrap();
        root.create_dir("b").unwrap();
        assert!(matches!(root.create_dir("a"), Err(Error::Exists(_))));
        root.remove_dir("a").unwrap();
        assert!(root.path.is_dir(), "b is still there");
        root.remove_dir("b").unwrap();
        assert!(!root.path.exists(), "gone with its last container");
        root.create_dir("stale").unwrap();
        fs::write(root.dir("stale").join(STATE_FILE), b"{}").unwrap();
        // The state of a container long gone (its data root removed) keeps the root: no error.
        root.create_dir("c").unwrap();
        root.remove_dir("c").unwrap();
        assert!(root.dir("stale").is_dir());
    }

    #[test]
    fn this_process_is_alive_and_pid_zero_is_not() {
        assert!(process_start_time(std::process::id() as i32).is_some());
        assert!(process_start_time(0).is_none());
    }
}
