//! berth-runtime: the OCI runtime. It knows `config.json` and the runtime state directory, not
//! images or container names; `berth-runc` and the engine both drive it.
#![forbid(unsafe_code)]

pub mod capabilities;
pub mod seccomp;
