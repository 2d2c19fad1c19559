//! Helpers shared by the black-box tests: bundles, the probe, running the binaries.
#![forbid(unsafe_code)]
