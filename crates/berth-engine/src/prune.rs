//! `container prune`: every container that is not running, paused or restarting (and that
//! Docker's prune filters keep: `until`, `label`, `label!`), removed as `rm` removes it.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events::{self, Event, Kind};
use crate::filters::Filters;
use crate::records::{Record, Skipped};

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

/// The filters `container prune` takes.
pub const PRUNE_FILTERS: &[&str] = &["until", "label", "label!"];

/// Docker's container prune filters, each `key=value`: `until` (created before a time or a
/// duration ago), `label=k[=v]` (every one must match) and `label!=k[=v]` (none may).
#[derive(Debug, Default)]
pub struct Filter {
    until: Option<i64>,
    filters: Filters,
}

impl Filter {
    pub fn parse(pairs: &[String]) -> Result<Filter> {
        let filters = Filters::parse(pairs, PRUNE_FILTERS)?;
        Ok(Filter {
            until: filters.until()?,
            filters,
        })
    }

    fn keeps(&self, r: &Record) -> bool {
        let created =
            humantime::parse_rfc3339_weak(&r.created).map_or(0, events::nanos_since_epoch);
        self.until.is_some_and(|until| created >= until)
            || !self.filters.labels_match(&r.request.labels)
    }
}

/// Removes the stopped containers that `filter` does not keep.
pub fn containers(engine: &Engine, filter: &Filter) -> Result<Pruned> {
    // Removals a killed monitor left half-done (`--rm`, `rm -f`): no listing shows them.
    for (id, path, _owner) in engine.containers.abandoned() {
        let _ = crate::lifecycle::finish_removal(engine, &id, Some(&path));
    }
    engine.containers.sweep_name_temporaries();
    let listing = crate::lifecycle::list(engine)?;
    let mut pruned = Pruned {
        skipped: listing.skipped,
        ..Pruned::default()
    };
    for record in listing.records {
        if record.state.status.is_live() || filter.keeps(&record) {
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
