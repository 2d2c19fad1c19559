//! berth-probe: a static program run inside a container that reports what it sees as JSON.
#![forbid(unsafe_code)]

fn main() {}
