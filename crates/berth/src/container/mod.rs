//! The container commands: flags, the run flow, the terminal relay, and the commands that
//! manage, list and inspect containers. Each calls berth-engine.

pub mod exec;
pub mod flags;
pub mod inspect;
pub mod logs;
pub mod manage;
pub mod port;
pub mod ps;
pub mod relay;
pub mod run;
