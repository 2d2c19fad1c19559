//! volumes.
