//! The engine's handle on a data root: where containers, the runtime state and the image store
//! live, and which binary runs the monitors.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::records::Containers;

#[derive(Debug, Clone)]
pub struct Engine {
    pub root: PathBuf,
    pub containers: Containers,
    /// berth-runtime's state root (`<root>/runtime`).
    pub runtime: berth_runtime::state::Root,
    /// The `berth` binary, run again as `berth __monitor`.
    pub exe: PathBuf,
}

impl Engine {
    pub fn open(root: &Path, exe: &Path) -> Result<Engine> {
        let containers = Containers::open(root)?;
        let runtime_dir = root.join("runtime");
        std::fs::create_dir_all(&runtime_dir).map_err(Error::io("create", &runtime_dir))?;
        Ok(Engine {
            root: root.to_path_buf(),
            containers,
            runtime: berth_runtime::state::Root::new(runtime_dir),
            exe: exe.to_path_buf(),
        })
    }

    pub fn images(&self) -> Result<berth_image::store::Store> {
        Ok(berth_image::store::Store::open(&self.root)?)
    }

    pub fn volumes_dir(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// The cgroup of a container, relative to each hierarchy: `berth/<id>`.
    pub fn cgroups_path(id: &str) -> String {
        format!("berth/{id}")
    }
}
