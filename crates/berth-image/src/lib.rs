//! berth-image: image references, the content-addressed store, the registry client, archives and
//! layer unpacking. No privileged code lives here.
#![forbid(unsafe_code)]
