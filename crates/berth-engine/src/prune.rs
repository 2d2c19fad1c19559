//! `container prune`: every container that is not running, paused or restarting (and that
//! Docker's prune filters keep: `until`, `label`, `label!`), removed as `rm` removes it.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::events::{self, Event, Kind};
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

/// Docker's prune filters, each `key=value`: `until` (created before a time or a duration
/// ago), `label=k[=v]` (every one must match) and `label!=k[=v]` (none may).
#[derive(Debug, Default)]
pub struct Filter {
    until: Option<i64>,
    labels: Vec<(bool, String, Option<String>)>,
}

impl Filter {
    pub fn parse(pairs: &[String]) -> Result<Filter> {
        let mut f = Filter::default();
        let now = std::time::SystemTime::now();
        for pair in pairs {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let label = || match value.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (value.to_string(), None),
            };
            match key {
                "until" => f.until = Some(events::parse_time(value, now)?),
                "label" => f.labels.push((true, label().0, label().1)),
                "label!" => f.labels.push((false, label().0, label().1)),
                _ => {
                    return Err(Error::Invalid(format!(
                        "invalid filter '{key}': a prune filters on until, label and label!"
                    )))
                }
            }
        }
        Ok(f)
    }

    fn keeps(&self, r: &Record) -> bool {
        let created =
            humantime::parse_rfc3339_weak(&r.created).map_or(0, events::nanos_since_epoch);
        let labelled = |k: &String, v: &Option<String>| {
            let label = r.request.labels.get(k);
            label.is_some() && (v.is_none() || label == v.as_ref())
        };
        self.until.is_some_and(|until| created >= until)
            || self
                .labels
                .iter()
                .any(|(want, k, v)| labelled(k, v) != *want)
    }
}

/// Removes the stopped containers that `filter` does not keep.
pub fn containers(engine: &Engine, filter: &Filter) -> Result<Pruned> {
    // Removals a killed monitor left half-done (`--rm`, `rm -f`): no listing shows them.
    for (id, path, _owner) in engine.containers.abandoned() {
        let _ = crate::lifecycle::finish_removal(engine, &id, Some(&path));
    }
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
