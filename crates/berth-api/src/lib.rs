//! berth-api: the Docker Engine API (`berth system service`), a thin adapter over berth-engine
//! as the `berth` command line is another. It is the one asynchronous part of berth (tokio and
//! hyper) and, as DESIGN.md demands, it never forks and never enters a namespace: every engine
//! call runs on a blocking thread, and containers are started by exec of `berth __monitor`, as
//! the command line starts them, so they never depend on the service.
#![forbid(unsafe_code)]

pub mod error;
pub mod filters;
mod handlers;
pub mod listen;
pub mod respond;
pub mod router;
pub mod server;
pub mod version;

pub use error::ApiError;
pub use server::{serve, ServiceOptions};
