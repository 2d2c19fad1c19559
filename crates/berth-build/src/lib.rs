//! berth-build: `berth build` — a Dockerfile and a context into an image in berth's store,
//! each RUN through berth-runtime over an overlay of the layers so far, with a layer cache.
#![forbid(unsafe_code)]

pub mod builder;
pub mod cache;
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

pub use builder::{build, BuildOptions, Built, Progress};
pub use error::{Error, Result};
