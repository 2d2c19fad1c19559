//! berth-image: image references, the content-addressed store, the registry client, archives and
//! layer unpacking. No privileged code lives here.
#![forbid(unsafe_code)]

pub mod archive;
pub mod commit;
pub mod compress;
pub mod diff;
pub mod digest;
pub mod error;
pub mod inspect;
mod pipe;
pub mod platform;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod snapshot;
pub mod store;
pub mod unpack;
mod xattr;

pub use error::{Error, Result};
pub use platform::Platform;
pub use reference::Reference;
pub use store::{Image, Store};
