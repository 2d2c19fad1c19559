//! Volumes: directories under `<root>/volumes/<name>/_data`, as Docker's local driver keeps
//! them, with Docker's name rules.

use std::fs;
use std::path::PathBuf;

use crate::engine::Engine;
use crate::error::{Error, Result};

/// Docker's volume name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// The volume's data directory, created if missing.
pub fn ensure(engine: &Engine, name: &str) -> Result<PathBuf> {
    if !valid_name(name) {
        return Err(Error::Invalid(format!(
            "volume name {name:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit"
        )));
    }
    let data = engine.volumes_dir().join(name).join("_data");
    fs::create_dir_all(&data).map_err(Error::io("create volume", &data))?;
    Ok(data)
}
