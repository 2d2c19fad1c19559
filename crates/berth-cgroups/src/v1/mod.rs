//! The cgroup v1 manager: one directory per mounted controller hierarchy, and on hybrid hosts
//! the cgroup2 directory in `root/unified` for membership, freezing and killing.

mod controllers;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

use berth_sys::signal::SignalNumber;
use oci_spec::runtime::LinuxResources;

use crate::error::{collect, CgroupError, Result};
use crate::fs::{self, levels, make_dir};
use crate::stats::{self, Stats};
use crate::{
    kill_frozen, read_procs, signal_each, v2, CgroupManager, CgroupPath, Created, FreezerState,
};

const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

/// The v1 controllers berth knows, by the name of their directory under the root, and
/// systemd's named hierarchy, which runc joins too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Controller {
    Cpu,
    Cpuacct,
    Cpuset,
    Memory,
    Devices,
    Freezer,
    Blkio,
    Pids,
    Hugetlb,
    NetCls,
    NetPrio,
    PerfEvent,
    Rdma,
    Misc,
    Systemd,
}

impl Controller {
    pub const ALL: [Controller; 15] = [
        Self::Cpu,
        Self::Cpuacct,
        Self::Cpuset,
        Self::Memory,
        Self::Devices,
        Self::Freezer,
        Self::Blkio,
        Self::Pids,
        Self::Hugetlb,
        Self::NetCls,
        Self::NetPrio,
        Self::PerfEvent,
        Self::Rdma,
        Self::Misc,
        Self::Systemd,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cpuacct => "cpuacct",
            Self::Cpuset => "cpuset",
            Self::Memory => "memory",
            Self::Devices => "devices",
            Self::Freezer => "freezer",
            Self::Blkio => "blkio",
            Self::Pids => "pids",
            Self::Hugetlb => "hugetlb",
            Self::NetCls => "net_cls",
            Self::NetPrio => "net_prio",
            Self::PerfEvent => "perf_event",
            Self::Rdma => "rdma",
            Self::Misc => "misc",
            Self::Systemd => "systemd",
        }
    }

    /// How /proc/PID/cgroup names the hierarchy.
    pub fn key(self) -> &'static str {
        match self {
            Self::Systemd => "name=systemd",
            other => other.name(),
        }
    }
}

#[derive(Debug)]
pub struct Manager {
    root: PathBuf,
    path: CgroupPath,
    /// The mounted controllers, found the first time they are needed: what uses the unified
    /// side alone (a hybrid host's freezer state, a signal to the init) never looks.
    mounted: OnceLock<Mounted>,
    /// Hybrid hosts only: the container's directory in `root/unified`.
    unified: Option<PathBuf>,
}

#[derive(Debug)]
struct Mounted {
    /// The container's directory in each mounted controller's hierarchy.
    controllers: Vec<(Controller, PathBuf)>,
    /// The same directories once each, for controllers mounted together (`cpu,cpuacct`
    /// reached through two symlinks) must not be joined or removed twice.
    hierarchies: Vec<PathBuf>,
}

/// A controller's hierarchy root: the identity of its cgroup.procs (device, inode).
type Hierarchy = (Controller, (u64, u64));

/// The hierarchies mounted under `root`, each controller with its hierarchy's identity: one
/// statx per controller. A directory that is not a hierarchy's root (say, left by a failed
/// mount) has no cgroup.procs: using it would write limits into plain files. Co-mounted
/// controllers (cpu and cpuacct as links to `cpu,cpuacct`) show the same cgroup.procs: one
/// stat finds them, where a canonicalize cost a readlink per path component.
fn scan(root: &Path, wanted: impl Fn(Controller) -> bool) -> Vec<Hierarchy> {
    use std::os::unix::fs::MetadataExt;
    Controller::ALL
        .into_iter()
        .filter(|c| wanted(*c))
        .filter_map(|controller| {
            let procs = std::fs::metadata(root.join(controller.name()).join("cgroup.procs"));
            let procs = procs.ok().filter(|m| m.is_file())?;
            Some((controller, (procs.dev(), procs.ino())))
        })
        .collect()
}

/// The host's hierarchies under /sys/fs/cgroup, scanned once per process: a monitor asks at
/// its container's start, stop, kill and exit (17 syscalls each time), and the host's cgroup
/// mounts do not change under its containers. Any other root (a test's tree) is scanned at
/// each use.
fn host_hierarchies(root: &Path) -> Option<&'static [Hierarchy]> {
    static HOST: OnceLock<Vec<Hierarchy>> = OnceLock::new();
    (root == Path::new("/sys/fs/cgroup"))
        .then(|| HOST.get_or_init(|| scan(root, |_| true)).as_slice())
}

/// Finds the host's hierarchies now (see [`host_hierarchies`]), for a process that has time
/// to spare before its first use of them.
pub fn find_host_hierarchies(root: &Path) {
    let _ = host_hierarchies(root);
}

impl Mounted {
    fn find(root: &Path, path: &CgroupPath) -> Self {
        // One statx fewer for each controller the host has no v1 hierarchy of.
        let wanted = |c: Controller| path.may_have_hierarchy(c.key());
        let found: Vec<Hierarchy> = match host_hierarchies(root) {
            Some(host) => host.iter().copied().filter(|(c, _)| wanted(*c)).collect(),
            None => scan(root, wanted),
        };
        let mut controllers = Vec::new();
        let mut mounts: Vec<(u64, u64)> = Vec::new();
        let mut hierarchies = Vec::new();
        for (controller, id) in found {
            let dir = root
                .join(controller.name())
                .join(path.in_hierarchy(controller.key()));
            if !mounts.contains(&id) {
                mounts.push(id);
                hierarchies.push(dir.clone());
            }
            controllers.push((controller, dir));
        }
        Self {
            controllers,
            hierarchies,
        }
    }
}

impl Manager {
    /// A manager for `path`; `hybrid` adds the `root/unified` side. The mounted controllers
    /// are found when first needed.
    pub fn new(root: &Path, path: &CgroupPath, hybrid: bool) -> Self {
        Self {
            root: root.to_owned(),
            path: path.clone(),
            mounted: OnceLock::new(),
            unified: hybrid.then(|| root.join("unified").join(path.in_hierarchy(""))),
        }
    }

    fn mounted(&self) -> &Mounted {
        self.mounted
            .get_or_init(|| Mounted::find(&self.root, &self.path))
    }

    fn hierarchies(&self) -> &[PathBuf] {
        &self.mounted().hierarchies
    }

    /// The container's directory for `controller`, if that controller is mounted.
    pub fn dir(&self, controller: Controller) -> Option<&Path> {
        self.mounted()
            .controllers
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, dir)| dir.as_path())
    }

    pub fn unified_dir(&self) -> Option<&Path> {
        self.unified.as_deref()
    }

    /// Moves the calling thread into every v1 hierarchy by writing 0 to its `tasks`: for a
    /// single-threaded process, the whole process. A thread moving itself is the one migration
    /// the kernel does without taking its threadgroup lock for writing, so unlike a pid written
    /// to `cgroup.procs` it does not wait for an RCU grace period. The unified side, if any, is
    /// not joined here (cgroup2 has no such write: clone into it instead).
    ///
    /// Every `tasks` file is opened first and all are closed together at the end (one
    /// close_range for consecutive descriptors): a close each was a third of the joining.
    pub fn join_self(&self) -> Result<()> {
        let files = self
            .hierarchies()
            .iter()
            .map(|dir| fs::open_write(dir, "tasks", "0"))
            .collect::<Result<Vec<_>>>()?;
        let joined = self
            .hierarchies()
            .iter()
            .zip(&files)
            .try_for_each(|(dir, file)| fs::write_to(file, dir, "tasks", "0"));
        berth_sys::fd::close_all(files.into_iter().map(Into::into).collect());
        joined
    }

    /// The directory of a controller that a requested resource cannot do without.
    fn require(&self, controller: Controller, what: &'static str) -> Result<&Path> {
        self.dir(controller)
            .ok_or_else(|| CgroupError::MissingController {
                controller: controller.name(),
                what,
                root: self.root.clone(),
            })
    }

    /// A new cpuset cgroup starts with empty `cpuset.cpus` and `cpuset.mems`, and no task can
    /// join it until they are set: copy them down from the parent at each new level (at one
    /// made now, without reading what it has: nothing, or the parent's with clone_children).
    /// Whether the last level is new.
    fn create_cpuset(&self) -> Result<Created> {
        let mut parent = self.root.join(Controller::Cpuset.name());
        let relative = self.path.in_hierarchy(Controller::Cpuset.key());
        let mut created = Created::Existing;
        // What the level above holds, once read or written here: the next level's parent.
        let mut above: [Option<String>; 2] = [None, None];
        for dir in levels(&parent, &relative) {
            created = make_dir(&dir)?;
            for (file, above) in ["cpuset.cpus", "cpuset.mems"].into_iter().zip(&mut above) {
                let own = match created {
                    Created::New => None,
                    Created::Existing => Some(fs::read(&dir, file)?),
                };
                let value = match own.filter(|v| !v.trim().is_empty()) {
                    Some(v) => v,
                    None => {
                        let value = match above.take() {
                            Some(v) => v,
                            None => fs::read(&parent, file)?,
                        };
                        fs::write(&dir, file, value.trim())?;
                        value
                    }
                };
                *above = Some(value);
            }
            parent = dir;
        }
        Ok(created)
    }

    fn set_freezer(&self, want: FreezerState) -> Result<()> {
        let dir = self.require(Controller::Freezer, "freezing")?;
        let (value, step) = match want {
            FreezerState::Frozen => ("FROZEN", "freeze"),
            FreezerState::Thawed => ("THAWED", "thaw"),
        };
        let start = Instant::now();
        // Writing FROZEN again while the state is FREEZING retries the tasks that were busy.
        loop {
            fs::write(dir, "freezer.state", value)?;
            if fs::read(dir, "freezer.state")?.trim() == value {
                return Ok(());
            }
            if start.elapsed() > FREEZE_TIMEOUT {
                return Err(CgroupError::FreezeTimeout {
                    step,
                    path: dir.join("freezer.state"),
                    want: value,
                    waited_ms: start.elapsed().as_millis(),
                });
            }
            sleep(Duration::from_millis(10));
        }
    }
}

impl Manager {
    /// The file that says the cgroup is frozen already, if it exists and is: the v1 freezer
    /// (FREEZING too: a task placed there stops) or, on a hybrid host, the cgroup2 side,
    /// which is where berth freezes.
    pub(crate) fn frozen_already(&self) -> Result<Option<PathBuf>> {
        if let Some(dir) = self.dir(Controller::Freezer) {
            let state = fs::read_optional(dir, "freezer.state")?;
            if state.is_some_and(|s| matches!(s.trim(), "FROZEN" | "FREEZING")) {
                return Ok(Some(dir.join("freezer.state")));
            }
        }
        match &self.unified {
            Some(dir) => v2::frozen_already(dir),
            None => Ok(None),
        }
    }
}

fn v1_freezer_state(dir: &Path) -> Result<FreezerState> {
    let content = fs::read(dir, "freezer.state")?;
    match content.trim() {
        "FROZEN" => Ok(FreezerState::Frozen),
        "THAWED" | "FREEZING" => Ok(FreezerState::Thawed),
        _ => Err(CgroupError::Parse {
            path: dir.join("freezer.state"),
            content,
        }),
    }
}

impl CgroupManager for Manager {
    fn create(&self) -> Result<Created> {
        let mut all = Created::New;
        for (controller, dir) in &self.mounted().controllers {
            // Once per hierarchy: a co-mounted controller's directory is there by now.
            let created = if *controller == Controller::Cpuset {
                self.create_cpuset()?
            } else if self.hierarchies().contains(dir) {
                make_dir(dir)?
            } else {
                continue;
            };
            all = all.and(created);
        }
        if let Some(dir) = &self.unified {
            all = all.and(make_dir(dir)?);
        }
        Ok(all)
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        for dir in self.hierarchies().iter().chain(&self.unified) {
            fs::write(dir, "cgroup.procs", pid.to_string())?;
        }
        Ok(())
    }

    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        controllers::apply(self, resources)
    }

    fn freeze(&self) -> Result<()> {
        match &self.unified {
            Some(dir) => v2::set_frozen(dir, FreezerState::Frozen),
            None => self.set_freezer(FreezerState::Frozen),
        }
    }

    fn thaw(&self) -> Result<()> {
        match &self.unified {
            Some(dir) => v2::set_frozen(dir, FreezerState::Thawed),
            None => self.set_freezer(FreezerState::Thawed),
        }
    }

    fn state(&self) -> Result<FreezerState> {
        match &self.unified {
            Some(dir) => v2::frozen_state(dir),
            None => v1_freezer_state(self.require(Controller::Freezer, "freezer state")?),
        }
    }

    /// Every process in any of the hierarchies, so that a half-joined one is not missed.
    fn pids(&self) -> Result<Vec<i32>> {
        let mut pids = Vec::new();
        for dir in self.hierarchies().iter().chain(&self.unified) {
            pids.extend(read_procs(dir)?);
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    fn kill_all(&self, signal: SignalNumber) -> Result<()> {
        let path = self
            .unified
            .as_deref()
            .or(self.hierarchies().first().map(PathBuf::as_path));
        let path = path.unwrap_or(&self.root);
        if signal != SignalNumber::KILL {
            return signal_each(&self.pids()?, signal, path);
        }
        if let Some(dir) = self
            .unified
            .as_deref()
            .filter(|d| fs::exists(d, "cgroup.kill"))
        {
            fs::write(dir, "cgroup.kill", "1")?;
            // cgroup.kill only reaches the unified side; a task that joined only v1 would
            // survive it, so the v1 hierarchies are swept as well.
            return signal_each(&self.pids()?, signal, path);
        }
        let can_freeze = self.unified.is_some() || self.dir(Controller::Freezer).is_some();
        if can_freeze {
            kill_frozen(self, signal, path)
        } else {
            signal_each(&self.pids()?, signal, path)
        }
    }

    fn stats(&self) -> Result<Stats> {
        stats::read_v1(&stats::V1Dirs {
            cpu: self.dir(Controller::Cpu),
            cpuacct: self.dir(Controller::Cpuacct),
            memory: self.dir(Controller::Memory),
            pids: self.dir(Controller::Pids),
        })
    }

    fn oom_kills(&self) -> Result<u64> {
        let Some(memory) = self.dir(Controller::Memory) else {
            return Ok(0);
        };
        let keys = fs::read_keyed(memory, "memory.oom_control")?;
        Ok(keys.and_then(|k| k.get("oom_kill").copied()).unwrap_or(0))
    }

    /// The unified side first: a process is there from its birth (cloned into it) and joins
    /// the v1 hierarchies after, so a busy cgroup is found before any of it is removed.
    fn remove_if_empty(&self) -> Result<bool> {
        for dir in self.unified.iter().chain(self.hierarchies()) {
            if !fs::remove_if_empty(dir)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn destroy(&self) -> Result<()> {
        let mut errors = Vec::new();
        for dir in self.hierarchies().iter().chain(&self.unified) {
            fs::remove_tree(dir, &mut errors);
        }
        collect(errors)
    }
}

#[cfg(test)]
mod tests;
