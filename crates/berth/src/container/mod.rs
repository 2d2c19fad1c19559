//! The container commands: flags, the run flow, the terminal relay, and the commands that
//! manage, list and inspect containers. Each calls berth-engine.

pub mod attach;
pub mod cp;
pub mod exec;
pub mod export;
pub mod flag_values;
pub mod flags;
pub mod inspect;
pub mod logs;
pub mod manage;
pub mod ns;
pub mod port;
pub mod ps;
pub mod relay;
pub mod run;
pub mod stats;
pub mod top;
pub mod update;
pub mod volume;
