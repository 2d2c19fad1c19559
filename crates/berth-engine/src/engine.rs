//! The engine's handle on a data root: where containers, the runtime state and the image store
//! live, and which binary runs the monitors.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::records::Containers;

#[derive(Debug, Clone)]
pub struct Engine {
    pub root: PathBuf,
    pub containers: Containers,
    /// berth-runtime's state root: `/run/berth/runtime/<hash of the data root>` (the user's
    /// runtime directory for rootless berth; a tmpfs on a
    /// normal system), there only while a container of this root runs.
    pub runtime: berth_runtime::state::Root,
    /// The exec records, one directory per container: `/run/berth/execs/<hash of the data
    /// root>` (beside the runtime's state, on a tmpfs on a normal system). They describe
    /// processes, which a reboot ends, and one is written at each step of every exec: on the
    /// data root each would be a new inode, and a freed block discarded synchronously.
    pub execs: PathBuf,
    /// The `berth` binary, run again as `berth __monitor`.
    pub exe: PathBuf,
    /// Monitors are spawned detached, nobody's child (`berth_sys::process::spawn_detached`), for
    /// a caller that outlives them (the API service), which would otherwise keep each exited
    /// one as a zombie. A command, which exits at once, leaves them to init without the extra
    /// fork.
    pub detach_monitors: bool,
    /// The configuration files' settings, as the front end read them (once, with its flags):
    /// `create` takes a container's defaults from here. Empty unless the front end sets it.
    pub config: crate::config::Config,
}

impl Engine {
    pub fn open(root: &Path, exe: &Path) -> Result<Engine> {
        // Resolved once, as dockerd resolves its data root: the runtime refuses a container's
        // root filesystem reached through a symbolic link, as runc does.
        std::fs::create_dir_all(root).map_err(Error::io("create", root))?;
        let root = &std::fs::canonicalize(root).map_err(Error::io("resolve", root))?;
        let containers = Containers::open(root)?;
        // Made by the runtime's create, removed by its delete of the last container: a
        // command that runs no container (images, import, ps) leaves nothing in /run.
        let runtime =
            berth_runtime::state::Root::new(run_dir(root, "runtime")).removed_when_empty();
        Ok(Engine {
            root: root.to_path_buf(),
            containers,
            runtime,
            execs: run_dir(root, "execs"),
            exe: exe.to_path_buf(),
            detach_monitors: false,
            config: crate::config::Config::default(),
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

/// The runtime's state lives under /run (a tmpfs on a normal system), like Docker's
/// /run/docker/runtime-runc: it describes processes, which a reboot ends, and it is written and
/// removed on every start (on ext4 each new inode costs a scan for recently deleted ones). So do
/// the exec records (`what`: "runtime", "execs"). One directory per data root, so that two roots
/// never share container state.
fn run_dir(root: &Path, what: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    berth_sys::rootless::run_dir().join(what).join(hex)
}
