//! berth-runc: runc's command line over berth-runtime.
#![forbid(unsafe_code)]

fn main() {}
