//! system df -v.
