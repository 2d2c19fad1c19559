//! Issue 13's engine items, each through both command lines: `--expose`, `-P` and port ranges
//! as the docker CLI sends them to `berth system service` and as `berth` asks for them; the
//! local volume driver's options (tmpfs and bind volumes, mounted while containers use them);
//! `volume ls --filter`; `system df -v`, whose tables the docker CLI draws from the service's
//! answer and `berth` must draw alike.
#![forbid(unsafe_code)]

#[path = "ports_volumes/df.rs"]
mod df;
#[path = "ports_volumes/ports.rs"]
mod ports;
#[path = "ports_volumes/volumes.rs"]
mod volumes;

pub(crate) use berth_harness::need_root;
