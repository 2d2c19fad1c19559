//! No cgroup at all: a rootless container where the user has no delegated cgroup2 subtree (a
//! v1 or hybrid host, or no delegation), as runc's and crun's rootless containers run. Nothing
//! is created or joined; limits are refused (the caller drops them with a warning first, as
//! podman does), and so is what only a cgroup can do (freeze, list or kill every process).

use berth_sys::signal::SignalNumber;
use oci_spec::runtime::LinuxResources;

use crate::{CgroupError, CgroupManager, Created, FreezerState, Result, Stats};

const WHY: &str = "rootless without a delegated cgroup";

#[derive(Debug)]
pub struct Manager;

/// True when `resources` asks for a limit (device rules aside: a user namespace has no
/// device it could not open anyway).
pub fn has_limits(r: &LinuxResources) -> bool {
    r.memory().is_some()
        || r.cpu().is_some()
        || r.pids().is_some()
        || r.block_io().is_some()
        || r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())
        || r.network().is_some()
        || r.rdma().as_ref().is_some_and(|m| !m.is_empty())
        || r.unified().as_ref().is_some_and(|m| !m.is_empty())
}

impl CgroupManager for Manager {
    fn create(&self) -> Result<Created> {
        Ok(Created::New)
    }
    fn add_task(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    fn apply(&self, resources: &LinuxResources) -> Result<()> {
        if has_limits(resources) {
            return Err(CgroupError::Unsupported {
                what: "resource limits",
                version: WHY,
            });
        }
        Ok(())
    }
    fn freeze(&self) -> Result<()> {
        Err(CgroupError::Unsupported {
            what: "pause (the freezer)",
            version: WHY,
        })
    }
    fn thaw(&self) -> Result<()> {
        self.freeze()
    }
    fn state(&self) -> Result<FreezerState> {
        Ok(FreezerState::Thawed)
    }
    fn pids(&self) -> Result<Vec<i32>> {
        Ok(Vec::new())
    }
    fn kill_all(&self, _signal: SignalNumber) -> Result<()> {
        Ok(())
    }
    fn stats(&self) -> Result<Stats> {
        Ok(Stats::default())
    }
    fn oom_kills(&self) -> Result<u64> {
        Ok(0)
    }
    fn remove_if_empty(&self) -> Result<bool> {
        Ok(true)
    }
    fn destroy(&self) -> Result<()> {
        Ok(())
    }
}
