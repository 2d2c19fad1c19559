//! The container's OCI config.json, built from the image config and a `RunRequest` with
//! Docker's defaults. Pure: no syscalls beyond reading files inside the container's root.
