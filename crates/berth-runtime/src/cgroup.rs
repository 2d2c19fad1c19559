//! The runtime's use of berth-cgroups: the host hierarchy root and the manager of a container.

use std::path::Path;

pub use berth_cgroups::{CgroupManager, FreezerState, Manager};

use crate::error::Result;

/// Where the host's cgroup hierarchies are mounted.
pub const ROOT: &str = "/sys/fs/cgroup";

/// The manager of the cgroup at `relative` (under each hierarchy's root).
pub fn open(relative: &Path) -> Result<Manager> {
    let root = Path::new(ROOT);
    Ok(Manager::new(berth_cgroups::detect(root)?, root, relative)?)
}

/// The cgroup path of a new container from its `linux.cgroupsPath`.
pub fn path_for(cgroups_path: Option<&Path>, id: &str) -> Result<std::path::PathBuf> {
    let s = cgroups_path.map(|p| p.to_string_lossy().into_owned());
    Ok(berth_cgroups::parse_cgroups_path(s.as_deref(), id)?)
}
