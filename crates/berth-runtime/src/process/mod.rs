//! Processes of the container: the runtime's side of create (parent), the init (child), and
//! the protocol between them.

pub mod init;
pub mod parent;
pub mod protocol;
pub mod reaper;
