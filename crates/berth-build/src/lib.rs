//! berth-build: `berth build` — a Dockerfile and a context into an image in berth's store,
//! each RUN through berth-runtime over an overlay of the layers so far, with a layer cache.
#![forbid(unsafe_code)]

pub mod builder;
pub mod config;
pub mod container;
pub mod context;
mod copy;
pub mod error;
pub mod events;
mod extract;
pub mod fsops;
pub mod ignore;
pub mod instruction;
pub mod mounts;
pub mod parser;
mod run;
pub mod shell;
pub mod stage;
mod steps;
mod stubs;
mod workdir;

/// The layer cache is the engine's: `system df` and `system prune` measure and empty it.
pub use berth_engine::build_cache as cache;
pub use builder::{build, BuildOptions, Built, Progress, StepLimits, StepOptions};
pub use error::{Error, Result};
