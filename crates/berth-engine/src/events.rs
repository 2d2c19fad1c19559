//! The engine's event log, Docker's `events`: `<root>/events.log`, one JSON object a line in
//! Docker's shape (`Type`, `Action`, `Actor {ID, Attributes}`, `time`, `timeNano`), appended
//! by the engine and the monitors at each step of a container's, an image's, a volume's or a
//! network's life, and read back, or followed, with Docker's since, until and filters.
//!
//! Each event is one `write` to a file opened with O_APPEND, so writers never interleave.
//! Past [`MAX_LOG`] the log moves to `events.log.1` (the one before is dropped), under
//! `events.lock`; readers follow it there by its inode.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::records::Record;

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Container,
    Image,
    Network,
    Volume,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Container => "container",
            Kind::Image => "image",
            Kind::Network => "network",
            Kind::Volume => "volume",
        }
    }
}

/// The object an event is about: its id (a container's, an image's, a volume's name) and
/// what else identifies it (`name`, `image`, `exitCode`, the container's labels...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Attributes", default)]
    pub attributes: BTreeMap<String, String>,
}

/// One event, as Docker's API streams it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: Kind,
    /// `create`, `start`, `die`, `exec_create: <cmd>`, `pull`, `connect`...
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: String,
    /// Seconds since the epoch.
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
}

/// Past this size the log is moved aside (one older generation is kept).
const MAX_LOG: u64 = 8 << 20;
const LOG: &str = "events.log";
const OLD_LOG: &str = "events.log.1";

impl Event {
    /// An event of now.
    pub fn new(kind: Kind, action: impl Into<String>, id: impl Into<String>) -> Event {
        let nanos = now_nanos();
        Event {
            kind,
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: BTreeMap::new(),
            },
            scope: "local".into(),
            time: nanos / 1_000_000_000,
            time_nano: nanos,
        }
    }

    /// A container's event, with its image, name and labels as Docker gives them.
    pub fn container(record: &Record, action: impl Into<String>) -> Event {
        let mut event = Event::new(Kind::Container, action, &record.id);
        let attributes = &mut event.actor.attributes;
        attributes.extend(record.request.labels.clone());
        attributes.insert("image".into(), record.image.clone());
        attributes.insert("name".into(), record.name.clone());
        event
    }

    pub fn with(mut self, key: &str, value: impl Into<String>) -> Event {
        self.actor.attributes.insert(key.into(), value.into());
        self
    }
}

pub(crate) fn nanos_since_epoch(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn now_nanos() -> i64 {
    nanos_since_epoch(SystemTime::now())
}

/// [`emit`], for the engine's own steps: an event the log cannot take is dropped, the step
/// stands.
pub(crate) fn record(engine: &Engine, event: Event) {
    let _ = emit(engine, &event);
}

/// Appends `event` to the log. Best effort: the step it reports happened either way, and a
/// log that cannot be written must not undo it; the error is returned for the caller to
/// report if it has somewhere to.
pub fn emit(engine: &Engine, event: &Event) -> Result<()> {
    let path = engine.root.join(LOG);
    let mut line = serde_json::to_vec(event)
        .map_err(|e| Error::Invalid(format!("serialise an event: {e}")))?;
    line.push(b'\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(Error::io("open", &path))?;
    file.write_all(&line)
        .map_err(Error::io("append to", &path))?;
    let size = file.metadata().map_err(Error::io("stat", &path))?.len();
    if size > MAX_LOG {
        rotate(&engine.root, &file)?;
    }
    Ok(())
}

/// Moves the log aside, unless another writer did since `file` was opened.
fn rotate(root: &Path, file: &File) -> Result<()> {
    let _lock = crate::records::lock(&root.join("events.lock"))?;
    let path = root.join(LOG);
    let ours = file.metadata().map_err(Error::io("stat", &path))?.ino();
    if fs::metadata(&path).is_ok_and(|m| m.ino() == ours) {
        fs::rename(&path, root.join(OLD_LOG)).map_err(Error::io("rotate", &path))?;
    }
    Ok(())
}

/// Which events a reader wants: Docker's `--since`, `--until` and `--filter`s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Nanoseconds since the epoch; None: from now on (the past is not read).
    pub since: Option<i64>,
    /// Nanoseconds since the epoch; None: for ever.
    pub until: Option<i64>,
    /// Key -> accepted values: one value of each key must match (`type`, `event`,
    /// `container`, `image`, `label`, `network`, `volume`).
    pub filters: BTreeMap<String, Vec<String>>,
}

const FILTER_KEYS: [&str; 7] = [
    "type",
    "event",
    "container",
    "image",
    "label",
    "network",
    "volume",
];

impl Filter {
    /// Adds a `key=value` filter as `--filter` gives it.
    pub fn add(&mut self, filter: &str) -> Result<()> {
        let Some((key, value)) = filter.split_once('=') else {
            return Err(Error::Invalid(format!(
                "bad format of filter (expected name=value): {filter}"
            )));
        };
        if !FILTER_KEYS.contains(&key) {
            return Err(Error::Invalid(format!(
                "invalid filter '{key}': filter on {}",
                FILTER_KEYS.join(", ")
            )));
        }
        self.filters
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
        Ok(())
    }

    /// Whether `event` passes every filter (the times apart).
    pub fn matches(&self, event: &Event) -> bool {
        let attr = |k: &str| event.actor.attributes.get(k).map(String::as_str);
        let of = |kind: Kind| event.kind == kind;
        self.filters.iter().all(|(key, values)| {
            values.iter().any(|v| match key.as_str() {
                "type" => event.kind.as_str() == v,
                "event" => {
                    event.action == *v
                        || event
                            .action
                            .strip_prefix(v.as_str())
                            .is_some_and(|r| r.starts_with(':'))
                }
                "container" => {
                    (of(Kind::Container)
                        && (event.actor.id.starts_with(v.as_str()) || attr("name") == Some(v)))
                        || attr("container") == Some(v)
                }
                "image" => {
                    (of(Kind::Container) && attr("image") == Some(v))
                        || (of(Kind::Image) && (event.actor.id == *v || attr("name") == Some(v)))
                }
                "label" => match v.split_once('=') {
                    Some((k, val)) => attr(k) == Some(val),
                    None => attr(v).is_some(),
                },
                "network" => of(Kind::Network) && (event.actor.id == *v || attr("name") == Some(v)),
                "volume" => of(Kind::Volume) && event.actor.id == *v,
                _ => false,
            })
        })
    }

    fn in_time(&self, event: &Event) -> bool {
        self.since.is_none_or(|s| event.time_nano >= s)
            && self.until.is_none_or(|u| event.time_nano <= u)
    }
}

/// Docker's `--since`/`--until` value: an RFC 3339 time, seconds since the epoch (with an
/// optional fraction), or a duration before `now` (`10m`, `1h30m`). Nanoseconds since the epoch.
pub fn parse_time(value: &str, now: SystemTime) -> Result<i64> {
    let nanos = nanos_since_epoch;
    if let Ok(t) = humantime::parse_rfc3339_weak(value) {
        return Ok(nanos(t));
    }
    if let Ok(secs) = value.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok((secs * 1e9) as i64);
        }
    }
    match humantime::parse_duration(value) {
        Ok(d) => Ok(nanos(now.checked_sub(d).unwrap_or(SystemTime::UNIX_EPOCH))),
        Err(_) => Err(Error::Invalid(format!(
            "{value:?} is not a time: use 2026-01-02T13:23:37Z, seconds since 1970, or a duration such as 10m"
        ))),
    }
}

/// A reader of the log, from `since` (or from now), that waits for new events until `until`.
pub struct Events {
    root: PathBuf,
    filter: Filter,
    /// The file being read, its inode, and how far.
    file: Option<(File, u64)>,
    /// The old generation is read first when the reader starts in the past.
    old_first: bool,
    partial: Vec<u8>,
}

/// Opens the log for reading as `filter` says.
pub fn follow(engine: &Engine, filter: Filter) -> Result<Events> {
    let mut events = Events {
        root: engine.root.clone(),
        old_first: filter.since.is_some(),
        filter,
        file: None,
        partial: Vec::new(),
    };
    if !events.old_first {
        // Only what happens from now on: from the end of the current log, made if missing so
        // that a rotation before the first read is followed too.
        let path = events.root.join(LOG);
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Error::io("open", &path))?;
        events.open_current()?;
        if let Some((file, _)) = &mut events.file {
            file.seek(SeekFrom::End(0))
                .map_err(Error::io("seek", events.root.join(LOG)))?;
        }
    }
    Ok(events)
}

impl Events {
    /// The next events that match, waiting at most `wait` for one; `None` once `until` has
    /// passed and everything before it was given.
    pub fn next(&mut self, wait: Duration) -> Result<Option<Vec<Event>>> {
        let deadline = Instant::now() + wait;
        loop {
            // Past `until` before this read: whatever it finds is the last.
            let done = self.filter.until.is_some_and(|u| now_nanos() > u);
            let out = self.read_available()?;
            if !out.is_empty() {
                return Ok(Some(out));
            }
            if done {
                return Ok(None);
            }
            if Instant::now() >= deadline {
                return Ok(Some(Vec::new()));
            }
            std::thread::sleep(Duration::from_millis(100).min(deadline - Instant::now()));
        }
    }

    /// Everything written since the last read, across a rotation.
    fn read_available(&mut self) -> Result<Vec<Event>> {
        let mut out = Vec::new();
        if self.old_first {
            self.old_first = false;
            let old = self.root.join(OLD_LOG);
            if let Ok(data) = fs::read(&old) {
                self.take_lines(&data, &mut out);
                self.partial.clear();
            }
        }
        loop {
            if self.file.is_none() {
                self.open_current()?;
            }
            let Some((file, ino)) = &mut self.file else {
                return Ok(out);
            };
            let mut data = Vec::new();
            file.read_to_end(&mut data)
                .map_err(Error::io("read", self.root.join(LOG)))?;
            let ino = *ino;
            self.take_lines(&data, &mut out);
            // Moved aside: what it held is read; go on with the new one.
            let current = fs::metadata(self.root.join(LOG)).map(|m| m.ino()).ok();
            if current.is_some_and(|c| c != ino) {
                self.file = None;
                self.partial.clear();
                continue;
            }
            return Ok(out);
        }
    }

    fn open_current(&mut self) -> Result<()> {
        let path = self.root.join(LOG);
        self.file = match File::open(&path) {
            Ok(f) => {
                let ino = f.metadata().map_err(Error::io("stat", &path))?.ino();
                Some((f, ino))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io("open", &path)(e)),
        };
        Ok(())
    }

    /// The whole lines of `data` (after what was left of the last read) that match.
    fn take_lines(&mut self, data: &[u8], out: &mut Vec<Event>) {
        self.partial.extend_from_slice(data);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let rest = self.partial.split_off(end + 1);
        let whole = std::mem::replace(&mut self.partial, rest);
        for line in whole.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            // A line that does not read (a torn write after a crash) is skipped.
            if let Ok(event) = serde_json::from_slice::<Event>(line) {
                if self.filter.in_time(&event) && self.filter.matches(&event) {
                    out.push(event);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), Path::new("/bin/true")).unwrap();
        (dir, engine)
    }

    #[test]
    fn events_are_read_back_filtered_and_followed() {
        let (_dir, engine) = engine();
        let start = Event::new(Kind::Container, "start", "abc").with("name", "web");
        emit(&engine, &start).unwrap();
        emit(&engine, &Event::new(Kind::Volume, "create", "data")).unwrap();
        let mut past = Filter {
            since: Some(0),
            ..Filter::default()
        };
        past.add("type=container").unwrap();
        let mut reader = follow(&engine, past.clone()).unwrap();
        let got = reader.next(Duration::ZERO).unwrap().unwrap();
        assert_eq!(got, vec![start.clone()]);
        let die = Event::new(Kind::Container, "die", "abc").with("exitCode", "3");
        emit(&engine, &die).unwrap();
        assert_eq!(reader.next(Duration::ZERO).unwrap().unwrap(), vec![die]);
        let mut by_name = past.clone();
        by_name.add("container=web").unwrap();
        by_name.add("event=start").unwrap();
        let got = follow(&engine, by_name)
            .unwrap()
            .next(Duration::ZERO)
            .unwrap();
        assert_eq!(got.unwrap(), vec![start]);
        assert!(past.clone().add("bogus=1").is_err());
        let ended = Filter {
            since: Some(0),
            until: Some(1),
            ..Filter::default()
        };
        assert_eq!(
            follow(&engine, ended)
                .unwrap()
                .next(Duration::ZERO)
                .unwrap(),
            None
        );
    }

    #[test]
    fn a_rotated_log_is_followed_into_its_successor() {
        let (dir, engine) = engine();
        let mut reader = follow(&engine, Filter::default()).unwrap();
        emit(&engine, &Event::new(Kind::Image, "pull", "one")).unwrap();
        fs::rename(dir.path().join(LOG), dir.path().join(OLD_LOG)).unwrap();
        emit(&engine, &Event::new(Kind::Image, "pull", "two")).unwrap();
        let got: Vec<String> = reader
            .next(Duration::ZERO)
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|e| e.actor.id)
            .collect();
        assert_eq!(got, ["one", "two"]);
    }

    #[test]
    fn exec_actions_match_their_event_filter() {
        let mut f = Filter::default();
        f.add("event=exec_start").unwrap();
        assert!(f.matches(&Event::new(Kind::Container, "exec_start: sh -c x", "a")));
        assert!(!f.matches(&Event::new(Kind::Container, "exec_start_x", "a")));
    }

    #[test]
    fn times_as_docker_takes_them() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(parse_time("10", now).unwrap(), 10_000_000_000);
        assert_eq!(parse_time("1m", now).unwrap(), 940_000_000_000);
        assert_eq!(
            parse_time("1970-01-01T00:00:05Z", now).unwrap(),
            5_000_000_000
        );
        assert!(parse_time("soon", now).is_err());
    }
}
