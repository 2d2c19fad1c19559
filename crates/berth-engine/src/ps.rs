//! `ps`: which containers a listing shows, newest first (the live ones, or all; Docker's
//! filters; the last n), and Docker's words for a container's status. The command line's `ps`
//! and the API's container list are both this.

use std::time::{Duration, SystemTime};

use regex::Regex;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records::{Listing, Record, Status};

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Every container, not only the live ones.
    pub all: bool,
    /// The newest `n` only (of every state, as Docker's `-n`).
    pub limit: Option<usize>,
    /// Docker's filters as `key=value`: `status`, `name`, `id`, `label`, `ancestor`,
    /// `exited`, `network`, `volume`, `before`, `since`.
    pub filters: Vec<String>,
}

/// The containers `options` ask for, newest first, and those whose record was unreadable.
pub fn list(engine: &Engine, options: &Options) -> Result<Listing> {
    let filter = Filter::parse(engine, &options.filters)?;
    let mut listing = crate::lifecycle::list(engine)?;
    listing.records.reverse();
    // As Docker: a limit, `before` or `since` list every state; so does a status filter.
    let all = options.all
        || options.limit.is_some()
        || !filter.status.is_empty()
        || filter.before.is_some()
        || filter.since.is_some();
    let mut seen_before = filter.before.is_none();
    let mut past_since = false;
    let mut shown = Vec::new();
    for r in listing.records {
        // Newest first: `before` shows what comes after it, `since` what comes before it.
        let (before, since) = (filter.before.as_deref(), filter.since.as_deref());
        if before == Some(r.id.as_str()) {
            seen_before = true;
            continue;
        }
        past_since |= since == Some(r.id.as_str());
        if !seen_before || past_since || (!all && !r.state.status.is_live()) {
            continue;
        }
        if filter.matches(engine, &r) {
            shown.push(r);
        }
    }
    if let Some(n) = options.limit {
        shown.truncate(n);
    }
    listing.records = shown;
    Ok(listing)
}

/// Docker's container filters: the values of one key are alternatives, the keys all apply
/// (and every `label` must match).
#[derive(Debug, Default)]
struct Filter {
    status: Vec<Status>,
    names: Vec<String>,
    ids: Vec<String>,
    labels: Vec<(String, Option<String>)>,
    /// As given, and the image id each resolves to.
    ancestors: Vec<(String, Option<String>)>,
    exited: Vec<i32>,
    networks: Vec<String>,
    volumes: Vec<String>,
    before: Option<String>,
    since: Option<String>,
    /// `starting`, `healthy`, `unhealthy` or `none` (no health check).
    health: Vec<String>,
}

const KEYS: &str =
    "ancestor, before, exited, health, id, label, name, network, since, status and volume";

impl Filter {
    fn parse(engine: &Engine, pairs: &[String]) -> Result<Filter> {
        let mut f = Filter::default();
        for pair in pairs {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| Error::Invalid(format!("invalid filter {pair:?}: use key=value")))?;
            let bad = |why: &str| Error::Invalid(format!("invalid filter '{pair}': {why}"));
            let value = value.to_string();
            match key {
                "status" => f.status.push(status(&value).ok_or_else(|| {
                    bad("use created, restarting, running, paused, exited or dead")
                })?),
                "name" => f.names.push(value),
                "id" => f.ids.push(value),
                "label" => f.labels.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value, None),
                }),
                "ancestor" => {
                    let id = engine
                        .images()?
                        .resolve(&value)
                        .ok()
                        .map(|i| i.id().to_string());
                    f.ancestors.push((value, id));
                }
                "exited" => f.exited.push(
                    value
                        .parse()
                        .map_err(|_| bad("the exit code must be a number"))?,
                ),
                "health" => match value.as_str() {
                    "starting" | "healthy" | "unhealthy" | "none" => f.health.push(value),
                    _ => {
                        return Err(Error::Invalid(format!(
                            "Unrecognised filter value for health: {value}"
                        )))
                    }
                },
                "network" => f.networks.push(value),
                "volume" => f.volumes.push(value),
                "before" => f.before = Some(engine.containers.find(&value)?.id),
                "since" => f.since = Some(engine.containers.find(&value)?.id),
                _ => {
                    return Err(Error::Invalid(format!(
                        "invalid filter '{key}': berth filters containers on {KEYS}"
                    )))
                }
            }
        }
        Ok(f)
    }

    fn matches(&self, engine: &Engine, r: &Record) -> bool {
        let st = &r.state;
        // The image's labels too, as Docker's container has them merged in (read only when a
        // label is asked about).
        let labels = (!self.labels.is_empty()).then(|| {
            crate::spec::process::labels(
                crate::bundle::image_config(engine, r).as_ref(),
                &r.request,
            )
        });
        let any = |values: &[String], test: &dyn Fn(&str) -> bool| {
            values.is_empty() || values.iter().any(|v| test(v))
        };
        (self.status.is_empty() || self.status.contains(&st.status))
            && any(&self.names, &|v| name_match(v, &r.name))
            && any(&self.ids, &|v| docker_match(v, &r.id))
            && self.labels.iter().all(|(k, v)| {
                let label = labels.as_ref().and_then(|l| l.get(k));
                label.is_some() && (v.is_none() || label == v.as_ref())
            })
            && (self.ancestors.is_empty()
                || self.ancestors.iter().any(|(name, id)| {
                    r.image == *name || id.as_deref() == Some(r.image_id.as_str())
                }))
            && (self.exited.is_empty()
                || (!st.status.is_live() && self.exited.contains(&st.exit_code)))
            && any(&self.networks, &|v| on_network(r, v))
            && any(&self.health, &|v| v == health_of(r))
            && any(&self.volumes, &|v| {
                r.request
                    .mounts
                    .iter()
                    .any(|m| m.source == v || m.target == v)
            })
    }
}

fn status(s: &str) -> Option<Status> {
    Some(match s {
        "created" => Status::Created,
        "running" => Status::Running,
        "paused" => Status::Paused,
        "restarting" => Status::Restarting,
        "exited" => Status::Exited,
        "dead" => Status::Dead,
        _ => return None,
    })
}

/// Docker's `filters.Match`: the value as it is, or as a regular expression found in `text`
/// (one that does not compile matches nothing).
fn docker_match(value: &str, text: &str) -> bool {
    value == text || Regex::new(value).is_ok_and(|re| re.is_match(text))
}

/// A name filter, as Docker's daemon matches it: against the name with its leading `/` and
/// without (`name=^/web$` and `name=^web$` both pick `web` alone).
fn name_match(value: &str, name: &str) -> bool {
    docker_match(value, &format!("/{name}")) || docker_match(value, name)
}

/// Whether the container is on the network named (configured to join it, running or not), or
/// whose id (or its prefix) is given.
fn on_network(r: &Record, value: &str) -> bool {
    let joined = r.network.iter().chain(&r.networks);
    let req = &r.request;
    (req.network == value && !req.network_disconnected)
        || req.connected.iter().any(|e| e.network == value)
        || joined
            .into_iter()
            .any(|a| a.network == value || (!value.is_empty() && a.network_id.starts_with(value)))
}

/// The container's health as the `health` filter names it: its status, or `none`.
fn health_of(r: &Record) -> &str {
    r.state
        .health
        .as_ref()
        .map_or("none", |h| h.status.as_str())
}

/// Docker's COMMAND: the process's words, those with a space in single quotes.
pub fn command(engine: &Engine, r: &Record) -> String {
    let words = crate::inspect::command(engine, r);
    let quoted: Vec<String> = words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i > 0 && w.contains(' ') {
                format!("'{w}'")
            } else {
                w.clone()
            }
        })
        .collect();
    quoted.join(" ")
}

/// Docker's STATUS column: `Up 5 minutes`, `Exited (0) 2 hours ago`...
pub fn status_text(r: &Record) -> String {
    let st = &r.state;
    let since = |t: &str| {
        humantime::parse_rfc3339_weak(t)
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .map(human_duration)
            .unwrap_or_else(|| "Less than a second".into())
    };
    match st.status {
        Status::Created => "Created".into(),
        Status::Running => match &st.health {
            Some(h) if h.status == crate::health::STARTING => {
                format!("Up {} (health: starting)", since(&st.started_at))
            }
            Some(h) => format!("Up {} ({})", since(&st.started_at), h.status),
            None => format!("Up {}", since(&st.started_at)),
        },
        Status::Paused => format!("Up {} (Paused)", since(&st.started_at)),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            since(&st.finished_at)
        ),
        Status::Exited => format!("Exited ({}) {} ago", st.exit_code, since(&st.finished_at)),
        Status::Dead => "Dead".into(),
    }
}

/// Docker's (go-units') `HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (m, h) = (s / 60, s / 3600);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if (h as f64 + 0.5) as u64 == 1 && h < 2 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_match_as_dockers_filters_do() {
        assert!(docker_match("web", "/web-1"));
        assert!(docker_match("^/web$", "/web"));
        assert!(!docker_match("^/web$", "/web-1"));
        assert!(docker_match("/web-1", "/web-1"));
        // Not a regular expression: only the exact text.
        assert!(!docker_match("(", "/a(b"));
        assert!(docker_match("abc", "0abc1"));
        assert!(name_match("^web$", "web"));
        assert!(name_match("^/web$", "web"));
        assert!(!name_match("^web$", "web-1"));
    }

    #[test]
    fn durations_read_as_dockers() {
        let d = |s| human_duration(Duration::from_secs(s));
        assert_eq!(d(0), "Less than a second");
        assert_eq!(d(59), "59 seconds");
        assert_eq!(d(90), "About a minute");
        assert_eq!(d(3600), "About an hour");
        assert_eq!(d(3 * 3600), "3 hours");
        assert_eq!(d(3 * 86400), "3 days");
        assert_eq!(d(20 * 86400), "2 weeks");
    }
}
