//! berth-engine: Docker's semantics over berth-runtime and berth-image. The `berth` command line
//! (and later an API server) are thin adapters over it; the per-container monitor lives here too.
#![forbid(unsafe_code)]
#![recursion_limit = "256"]

pub mod attach;
pub mod build_cache;
pub mod bundle;
pub mod commit;
pub mod config;
pub mod copy;
pub mod copy_up;
pub mod df;
pub mod engine;
pub mod error;
pub mod events;
pub mod exec;
pub mod export;
pub mod filters;
pub mod health;
pub mod idmap;
pub mod images;
pub mod info;
pub mod init_layer;
pub mod inspect;
pub mod leftovers;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod names;
pub mod network;
pub mod ns;
pub mod options;
pub mod ports;
pub mod prune;
pub mod ps;
pub mod records;
pub mod request;
pub mod rootfs;
pub mod rootless;
pub mod spec;
pub mod stats;
pub mod top;
pub mod update;
pub mod userns;
pub mod version;
pub mod volumes;
pub mod wait;

pub use engine::Engine;
pub use error::{Error, Result};
