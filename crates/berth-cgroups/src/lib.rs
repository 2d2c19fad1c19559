//! berth-cgroups: create, limit, freeze, inspect and remove a container's cgroup on v1, v2 and
//! hybrid hosts, rooted at a caller-given path so that it can be tested on plain directories.
//!
//! ```no_run
//! use berth_cgroups::{detect, parse_cgroups_path, CgroupManager, CgroupPath, Manager};
//! # fn main() -> Result<(), berth_cgroups::CgroupError> {
//! let root = std::path::Path::new("/sys/fs/cgroup");
//! let path = CgroupPath::Rooted(parse_cgroups_path("machine.slice:libpod:abc")?);
//! let cgroup = Manager::new(detect(root)?, root, &path)?;
//! cgroup.create()?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub mod absent;
mod common;
mod devices;
mod error;
mod fs;
mod path;
mod stats;
pub mod v1;
pub mod v2;

use std::io;
use std::path::Path;

use berth_sys::signal::SignalNumber;
use nix::errno::Errno;
use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC};
use oci_spec::runtime::LinuxResources;

pub use error::{CgroupError, Result};
pub use path::{parse_cgroups_path, CgroupPath};
pub use stats::{CpuStats, CpuUsage, MemoryEntry, MemoryStats, PidsStats, Stats, Throttling};

/// How cgroups are mounted under the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// v1 only: one hierarchy per controller (or group of controllers) in `root/<name>`.
    Legacy,
    /// v1 controllers plus a controller-less cgroup2 in `root/unified`, which we use for
    /// membership, freezing and killing.
    Hybrid,
    /// cgroup2 at the root.
    Unified,
}

/// What a path is mounted as, as far as detection cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    Cgroup2,
    Cgroup1,
    Tmpfs,
    Other,
}

/// Finds the setup of the cgroup mounts under `root` (usually /sys/fs/cgroup) from statfs.
pub fn detect(root: &Path) -> Result<Setup> {
    detect_with(root, fs_kind)
}

/// `detect` with the filesystem probe passed in, e.g. `fs_kind_by_layout` for a fake tree.
pub fn detect_with(root: &Path, probe: impl Fn(&Path) -> io::Result<FsKind>) -> Result<Setup> {
    let statfs_error = |path: &Path| {
        let path = path.to_owned();
        move |source| CgroupError::Statfs { path, source }
    };
    match probe(root).map_err(statfs_error(root))? {
        FsKind::Cgroup2 => Ok(Setup::Unified),
        FsKind::Tmpfs => {
            let unified = root.join("unified");
            match probe(&unified) {
                Ok(FsKind::Cgroup2) => Ok(Setup::Hybrid),
                Ok(_) => Ok(Setup::Legacy),
                Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Setup::Legacy),
                Err(err) => Err(statfs_error(&unified)(err)),
            }
        }
        FsKind::Cgroup1 | FsKind::Other => Err(CgroupError::UnknownSetup {
            path: root.to_owned(),
        }),
    }
}

/// The real probe: the statfs magic of `path`.
pub fn fs_kind(path: &Path) -> io::Result<FsKind> {
    let fs_type = statfs(path).map_err(io::Error::from)?.filesystem_type();
    Ok(match fs_type {
        t if t == CGROUP2_SUPER_MAGIC => FsKind::Cgroup2,
        t if t == CGROUP_SUPER_MAGIC => FsKind::Cgroup1,
        t if t == TMPFS_MAGIC => FsKind::Tmpfs,
        _ => FsKind::Other,
    })
}

/// A probe for trees laid out like cgroupfs in plain directories: a directory holding
/// `cgroup.controllers` is a cgroup2 mount, any other directory a tmpfs of v1 hierarchies.
pub fn fs_kind_by_layout(path: &Path) -> io::Result<FsKind> {
    if path.join("cgroup.controllers").is_file() {
        Ok(FsKind::Cgroup2)
    } else if std::fs::metadata(path)?.is_dir() {
        Ok(FsKind::Tmpfs)
    } else {
        Ok(FsKind::Other)
    }
}

/// Whether the cgroup's processes are frozen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreezerState {
    Frozen,
    /// Running, or on v1 still `FREEZING` (not every task stopped yet).
    Thawed,
}

/// Whether `create` made a cgroup or found it there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// Made now in every hierarchy: no process can be in it yet.
    New,
    /// There already in some hierarchy, maybe with processes.
    Existing,
}

impl Created {
    /// New only if both are.
    pub fn and(self, other: Created) -> Created {
        if self == Created::New {
            other
        } else {
            Created::Existing
        }
    }
}

/// What a runtime does with a container's cgroup, on any backend.
pub trait CgroupManager {
    /// Makes the cgroup in every hierarchy, ready for tasks to join.
    fn create(&self) -> Result<Created>;
    /// Moves the process `pid` (and its threads) into the cgroup.
    fn add_task(&self, pid: i32) -> Result<()>;
    /// Writes the limits of `resources`; a value the host cannot take is an error naming the file.
    fn apply(&self, resources: &LinuxResources) -> Result<()>;
    /// Stops every process, returning once the kernel reports them stopped.
    fn freeze(&self) -> Result<()>;
    fn thaw(&self) -> Result<()>;
    fn state(&self) -> Result<FreezerState>;
    /// The processes in the cgroup, as seen from our pid namespace.
    fn pids(&self) -> Result<Vec<i32>>;
    /// Sends `signal` to every process in the cgroup, without letting a fork escape a SIGKILL.
    fn kill_all(&self, signal: SignalNumber) -> Result<()>;
    fn stats(&self) -> Result<Stats>;
    /// How many processes the kernel's OOM killer killed in the cgroup (0 without a memory
    /// controller).
    fn oom_kills(&self) -> Result<u64>;
    /// Removes the cgroup when it has neither processes nor cgroups below it, with one rmdir
    /// per hierarchy and no retry: false as soon as a hierarchy's is refused as busy (what
    /// was removed before stays removed), where [`CgroupManager::destroy`] would wait and
    /// retry. A cgroup already gone counts as removed.
    fn remove_if_empty(&self) -> Result<bool>;
    /// Removes the cgroup (and any cgroups below it) in every hierarchy; keeps going past
    /// errors and reports them all.
    fn destroy(&self) -> Result<()>;
}

/// A container's cgroup on whichever setup the host has.
#[derive(Debug)]
pub enum Manager {
    V1(v1::Manager),
    V2(v2::Manager),
    /// No cgroup: rootless without delegation ([`absent`]).
    Absent(absent::Manager),
}

impl Manager {
    /// A manager for the cgroup at `path` under `root`. Nothing is created until `create`.
    pub fn new(setup: Setup, root: &Path, path: &CgroupPath) -> Result<Self> {
        path.check()?;
        Ok(match setup {
            Setup::Legacy => Self::V1(v1::Manager::new(root, path, false)),
            Setup::Hybrid => Self::V1(v1::Manager::new(root, path, true)),
            Setup::Unified => Self::V2(v2::Manager::new(root, &path.in_unified_host())),
        })
    }

    /// Refuses a cgroup that is there already and frozen (runc's check before it creates a
    /// container): a process placed in it would stop at once, and so would its create.
    pub fn check_not_frozen(&self) -> Result<()> {
        let frozen = match self {
            Self::V1(m) => m.frozen_already()?,
            Self::V2(m) => v2::frozen_already(m.dir())?,
            Self::Absent(_) => None,
        };
        match frozen {
            Some(path) => Err(CgroupError::Frozen { path }),
            None => Ok(()),
        }
    }

    /// The cgroup2 directory of the container, if there is one (v2, or hybrid's unified side):
    /// for `clone3(CLONE_INTO_CGROUP)` and for the container's cgroup namespace.
    pub fn unified_dir(&self) -> Option<&Path> {
        match self {
            Self::V1(m) => m.unified_dir(),
            Self::V2(m) => Some(m.dir()),
            Self::Absent(_) => None,
        }
    }

    /// Moves the calling single-threaded process into the v1 hierarchies without the RCU
    /// grace period a `cgroup.procs` write waits for (see [`v1::Manager::join_self`]); a no-op
    /// on v2. Together with a clone into [`Manager::unified_dir`] this replaces `add_task` for
    /// a child that is still the runtime's own code.
    pub fn join_self_v1(&self) -> Result<()> {
        match self {
            Self::V1(m) => m.join_self(),
            Self::V2(_) | Self::Absent(_) => Ok(()),
        }
    }

    fn inner(&self) -> &dyn CgroupManager {
        match self {
            Self::V1(m) => m,
            Self::V2(m) => m,
            Self::Absent(m) => m,
        }
    }
}

impl CgroupManager for Manager {
    fn create(&self) -> Result<Created> {
        self.inner().create()
    }
    fn add_task(&self, pid: i32) -> Result<()> {
        self.inner().add_task(pid)
    }
    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        self.inner().apply(resources)
    }
    fn freeze(&self) -> Result<()> {
        self.inner().freeze()
    }
    fn thaw(&self) -> Result<()> {
        self.inner().thaw()
    }
    fn state(&self) -> Result<FreezerState> {
        self.inner().state()
    }
    fn pids(&self) -> Result<Vec<i32>> {
        self.inner().pids()
    }
    fn kill_all(&self, signal: SignalNumber) -> Result<()> {
        self.inner().kill_all(signal)
    }
    fn stats(&self) -> Result<Stats> {
        self.inner().stats()
    }
    fn oom_kills(&self) -> Result<u64> {
        self.inner().oom_kills()
    }
    fn remove_if_empty(&self) -> Result<bool> {
        self.inner().remove_if_empty()
    }
    fn destroy(&self) -> Result<()> {
        self.inner().destroy()
    }
}

/// Signals each process; one that exited meanwhile is not an error.
pub(crate) fn signal_each(pids: &[i32], signal: SignalNumber, path: &Path) -> Result<()> {
    for &pid in pids {
        match berth_sys::signal::kill(pid, signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(source) => {
                return Err(CgroupError::Signal {
                    signal,
                    pid,
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    Ok(())
}

/// SIGKILL without `cgroup.kill`: freeze first so no process can fork a child we miss, signal
/// each process, then thaw so the signal is delivered. The cgroup is thawed even on error.
pub(crate) fn kill_frozen(m: &dyn CgroupManager, signal: SignalNumber, path: &Path) -> Result<()> {
    m.freeze()?;
    let killed = m.pids().and_then(|pids| signal_each(&pids, signal, path));
    let thawed = m.thaw();
    killed.and(thawed)
}

/// Parses cgroup.procs. A process outside our pid namespace reads as 0, which must never reach
/// kill(2) (it would mean our own process group), so it is dropped.
pub(crate) fn read_procs(dir: &Path) -> Result<Vec<i32>> {
    let mut pids: Vec<i32> = fs::read_numbers(dir, "cgroup.procs")?;
    pids.retain(|&p| p > 0);
    Ok(pids)
}

#[cfg(test)]
mod tests;
