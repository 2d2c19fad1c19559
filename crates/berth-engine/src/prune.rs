//! `container prune`: every container that is not running, paused or restarting, removed as
//! `rm` removes it.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events::{self, Event, Kind};
use crate::records::Skipped;

/// What a prune did.
#[derive(Debug, Default)]
pub struct Pruned {
    /// The ids removed, oldest first.
    pub removed: Vec<String>,
    /// The bytes their writable layers held.
    pub freed: u64,
    /// Why the others could not be removed; the prune went on.
    pub failed: Vec<Error>,
    /// Containers whose record could not be read (left alone).
    pub skipped: Vec<Skipped>,
}

/// Removes the stopped containers.
pub fn containers(engine: &Engine) -> Result<Pruned> {
    let listing = crate::lifecycle::list(engine)?;
    let mut pruned = Pruned {
        skipped: listing.skipped,
        ..Pruned::default()
    };
    for record in listing.records {
        if record.state.status.is_live() {
            continue;
        }
        let size = crate::volumes::disk_usage(&engine.containers.dir(&record.id).join("upper"));
        match crate::lifecycle::remove(engine, &record.id, false, false) {
            Ok(()) => {
                pruned.freed += size;
                pruned.removed.push(record.id);
            }
            Err(e) => pruned.failed.push(e),
        }
    }
    let event =
        Event::new(Kind::Container, "prune", "").with("reclaimed", pruned.freed.to_string());
    events::record(engine, event);
    Ok(pruned)
}
