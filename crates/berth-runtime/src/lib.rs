//! berth-runtime: the OCI runtime. It knows `config.json` and the runtime state directory, not
//! images or container names; `berth-runc` and the engine both drive it.
#![forbid(unsafe_code)]

pub mod capabilities;
pub mod cgroup;
pub mod container;
pub mod criu;
pub mod error;
pub mod events;
pub mod exec;
pub mod hooks;
pub mod log;
pub mod namespaces;
pub mod plan;
pub mod process;
pub mod protect;
pub mod rootfs;
pub mod sched;
pub mod seccomp;
pub mod state;
pub mod step;
pub mod tty;

pub use error::{Error, Result};
