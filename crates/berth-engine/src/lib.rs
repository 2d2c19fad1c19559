//! berth-engine: Docker's semantics over berth-runtime and berth-image. The `berth` command line
//! (and later an API server) are thin adapters over it; the per-container monitor lives here too.
#![forbid(unsafe_code)]

pub mod request;
pub mod spec;
