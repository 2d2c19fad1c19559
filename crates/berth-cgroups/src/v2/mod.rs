//! The cgroup v2 manager: one directory in the unified hierarchy, controllers enabled from the
//! root down (never on hybrid hosts' controller-less side), freezing through `cgroup.freeze` and
//! killing through `cgroup.kill`.

mod controllers;
pub mod devices;

use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use berth_sys::signal::SignalNumber;
use oci_spec::runtime::LinuxResources;

use crate::error::{collect, CgroupError, Result};
use crate::fs::{self, levels, make_dir, read_keyed};
use crate::stats::{self, Stats};
use crate::{kill_frozen, read_procs, signal_each, CgroupManager, Created, FreezerState};

const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct Manager {
    root: PathBuf,
    relative: PathBuf,
    dir: PathBuf,
    /// False on a hybrid host's `unified` mount: enabling a controller there pins it to v2, so
    /// that it can never again be mounted as v1 (crun, for one, then refuses to run).
    enable_controllers: bool,
}

impl Manager {
    /// A manager for a cgroup2 mount that owns the controllers (a unified host).
    pub fn new(root: &Path, relative: &Path) -> Self {
        Self {
            root: root.to_owned(),
            relative: relative.to_owned(),
            dir: root.join(relative),
            enable_controllers: true,
        }
    }

    /// A manager that only makes directories, for membership, freezing and killing: what a
    /// hybrid host's `unified` mount is for. It never writes `cgroup.subtree_control`.
    pub fn membership_only(root: &Path, relative: &Path) -> Self {
        Self {
            enable_controllers: false,
            ..Self::new(root, relative)
        }
    }

    /// The container's cgroup directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Enables in `dir`'s `cgroup.subtree_control` every controller it offers, so that its
/// children get them. All at once first; when the kernel refuses that (a controller can be
/// held back, e.g. by a threaded subtree), one by one, skipping the refused: a limit that then
/// needs a missing controller fails in `apply`, naming its file.
fn enable_controllers(dir: &Path) -> Result<()> {
    let available = fs::read(dir, "cgroup.controllers")?;
    let enabled = fs::read(dir, "cgroup.subtree_control")?;
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    let missing: Vec<String> = available
        .split_whitespace()
        .filter(|c| !enabled.contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() || fs::write(dir, "cgroup.subtree_control", missing.join(" ")).is_ok() {
        return Ok(());
    }
    for controller in missing {
        let _refused = fs::write(dir, "cgroup.subtree_control", controller);
    }
    Ok(())
}

/// Writes `cgroup.freeze` and waits for `cgroup.events` to say it is done, since the write
/// returns before every task has stopped. Shared with hybrid hosts' unified side.
pub(crate) fn set_frozen(dir: &Path, want: FreezerState) -> Result<()> {
    set_frozen_within(dir, want, FREEZE_TIMEOUT)
}

fn set_frozen_within(dir: &Path, want: FreezerState, timeout: Duration) -> Result<()> {
    let (value, step, name) = match want {
        FreezerState::Frozen => ("1", "freeze", "frozen"),
        FreezerState::Thawed => ("0", "thaw", "thawed"),
    };
    fs::write(dir, "cgroup.freeze", value)?;
    let start = Instant::now();
    let mut delay = Duration::from_millis(1);
    while frozen_state(dir)? != want {
        if start.elapsed() > timeout {
            return Err(CgroupError::FreezeTimeout {
                step,
                path: dir.join("cgroup.events"),
                want: name,
                waited_ms: start.elapsed().as_millis(),
            });
        }
        sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(20));
    }
    Ok(())
}

/// The file that says `dir` is frozen already, if it exists and is: `cgroup.freeze` set on it,
/// or `cgroup.events` frozen through an ancestor.
pub(crate) fn frozen_already(dir: &Path) -> Result<Option<PathBuf>> {
    match fs::read_optional(dir, "cgroup.freeze")? {
        Some(v) if v.trim() == "1" => return Ok(Some(dir.join("cgroup.freeze"))),
        // No cgroup there (the usual case: create checks before it makes one), or a kernel
        // before 5.2, whose cgroup.events has no `frozen`: nothing more to read.
        None => return Ok(None),
        Some(_) => {}
    }
    let events = read_keyed(dir, "cgroup.events")?;
    Ok(events
        .filter(|e| e.get("frozen") == Some(&1))
        .map(|_| dir.join("cgroup.events")))
}

/// The `frozen` key of `cgroup.events`; kernels before 5.2 have none and cannot freeze.
pub(crate) fn frozen_state(dir: &Path) -> Result<FreezerState> {
    let events = read_keyed(dir, "cgroup.events")?.ok_or_else(|| CgroupError::Read {
        path: dir.join("cgroup.events"),
        source: std::io::ErrorKind::NotFound.into(),
    })?;
    Ok(match events.get("frozen") {
        Some(1) => FreezerState::Frozen,
        _ => FreezerState::Thawed,
    })
}

impl CgroupManager for Manager {
    fn create(&self) -> Result<Created> {
        let mut parent = self.root.clone();
        let mut created = Created::Existing;
        for dir in levels(&self.root, &self.relative) {
            if self.enable_controllers {
                enable_controllers(&parent)?;
            }
            created = make_dir(&dir)?;
            parent = dir;
        }
        Ok(created)
    }

    fn add_task(&self, pid: i32) -> Result<()> {
        fs::write(&self.dir, "cgroup.procs", pid.to_string())
    }

    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        controllers::apply(&self.dir, resources)
    }

    fn freeze(&self) -> Result<()> {
        set_frozen(&self.dir, FreezerState::Frozen)
    }

    fn thaw(&self) -> Result<()> {
        set_frozen(&self.dir, FreezerState::Thawed)
    }

    fn state(&self) -> Result<FreezerState> {
        frozen_state(&self.dir)
    }

    fn pids(&self) -> Result<Vec<i32>> {
        read_procs(&self.dir)
    }

    /// `cgroup.kill` (5.14+) kills the whole subtree atomically; older kernels freeze first.
    fn kill_all(&self, signal: SignalNumber) -> Result<()> {
        if signal == SignalNumber::KILL {
            if fs::exists(&self.dir, "cgroup.kill") {
                return fs::write(&self.dir, "cgroup.kill", "1");
            }
            if fs::exists(&self.dir, "cgroup.freeze") {
                return kill_frozen(self, signal, &self.dir);
            }
        }
        signal_each(&self.pids()?, signal, &self.dir)
    }

    fn stats(&self) -> Result<Stats> {
        stats::read_v2(&self.dir)
    }

    fn oom_kills(&self) -> Result<u64> {
        let keys = fs::read_keyed(&self.dir, "memory.events")?;
        Ok(keys.and_then(|k| k.get("oom_kill").copied()).unwrap_or(0))
    }

    fn remove_if_empty(&self) -> Result<bool> {
        fs::remove_if_empty(&self.dir)
    }

    fn destroy(&self) -> Result<()> {
        let mut errors = Vec::new();
        fs::remove_tree(&self.dir, &mut errors);
        collect(errors)
    }
}

#[cfg(test)]
mod tests;
