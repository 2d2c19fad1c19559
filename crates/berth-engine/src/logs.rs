//! `logs`: a container's json-file log read back (monitor/logfile.rs writes it), as Docker's
//! `logs` reads it: the last `tail` entries from `since` to `until`, then with `follow` what
//! the container writes until it stops.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::monitor::logfile;

pub use crate::monitor::logfile::Entry;

/// Which entries `logs` gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// The last n entries of the past (all when None).
    pub tail: Option<usize>,
    /// Nanoseconds since the epoch (see `events::parse_time`).
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Then what the container writes, until it is no longer running.
    pub follow: bool,
}

/// A reader of a container's log.
pub struct Logs {
    path: PathBuf,
    id: String,
    options: LogOptions,
    /// What the log held when it was opened, given first.
    past: Option<Vec<Entry>>,
    /// The live file followed, and how far it was read.
    live: Option<(File, u64)>,
    partial: String,
}

/// Opens the log of container `key`; refused for a container that logs nowhere.
pub fn read(engine: &Engine, key: &str, options: LogOptions) -> Result<Logs> {
    let record = engine.containers.find(key)?;
    if record.request.log_driver == "none" {
        return Err(Error::Invalid(
            "configured logging driver does not support reading: the container logs with --log-driver none".into(),
        ));
    }
    let path = engine
        .containers
        .dir(&record.id)
        .join(format!("{}-json.log", record.id));
    let mut entries = Vec::new();
    for file in logfile::files(&path) {
        let Ok(f) = File::open(&file) else {
            continue;
        };
        for line in BufReader::new(f).lines().map_while(std::io::Result::ok) {
            if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                entries.push(e);
            }
        }
    }
    entries.retain(|e| within(e, &options));
    let skip = options.tail.map_or(0, |n| entries.len().saturating_sub(n));
    entries.drain(..skip);
    // Followed from where the past ends: the live file's end now.
    let live = match (options.follow, File::open(&path)) {
        (true, Ok(mut f)) => {
            let end = f.seek(SeekFrom::End(0)).map_err(Error::io("seek", &path))?;
            Some((f, end))
        }
        _ => None,
    };
    Ok(Logs {
        path,
        id: record.id,
        options,
        past: Some(entries),
        live,
        partial: String::new(),
    })
}

fn within(e: &Entry, options: &LogOptions) -> bool {
    if options.since.is_none() && options.until.is_none() {
        return true;
    }
    let Ok(t) = humantime::parse_rfc3339_weak(&e.time) else {
        return false;
    };
    let nanos = t
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    options.since.is_none_or(|s| nanos >= s) && options.until.is_none_or(|u| nanos <= u)
}

impl Logs {
    /// The next entries: the past first, then (following) what comes, waiting at most `wait`;
    /// `None` once there is nothing more to give.
    pub fn next(&mut self, engine: &Engine, wait: Duration) -> Result<Option<Vec<Entry>>> {
        if let Some(past) = self.past.take() {
            return Ok(Some(past));
        }
        let deadline = Instant::now() + wait;
        loop {
            if self.live.is_none() {
                return Ok(None);
            }
            // Running before this read: whatever it finds after the stop is the last.
            let running = self.running(engine)?;
            let entries = self.read_live()?;
            if !entries.is_empty() {
                return Ok(Some(entries));
            }
            if !running {
                return Ok(None);
            }
            if Instant::now() >= deadline {
                return Ok(Some(Vec::new()));
            }
            std::thread::sleep(Duration::from_millis(100).min(deadline - Instant::now()));
        }
    }

    fn running(&self, engine: &Engine) -> Result<bool> {
        match engine.containers.load(&self.id) {
            Ok(r) => Ok(crate::lifecycle::refresh(engine, r)?.state.status.is_live()),
            // Removed (--rm): it is not running.
            Err(Error::NoSuchContainer(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// What was appended to the live file since the last read; a rotation starts over on
    /// the new file.
    fn read_live(&mut self) -> Result<Vec<Entry>> {
        let Some((file, pos)) = &mut self.live else {
            return Ok(Vec::new());
        };
        let len = std::fs::metadata(&self.path).map_or(0, |m| m.len());
        if len < *pos {
            *file = File::open(&self.path).map_err(Error::io("open", &self.path))?;
            *pos = 0;
        }
        file.seek(SeekFrom::Start(*pos))
            .map_err(Error::io("seek", &self.path))?;
        let mut reader = BufReader::new(&*file);
        let mut line = String::new();
        let mut out = Vec::new();
        while reader
            .read_line(&mut line)
            .map_err(Error::io("read", &self.path))?
            > 0
        {
            *pos += line.len() as u64;
            self.partial.push_str(&line);
            line.clear();
            if self.partial.ends_with('\n') {
                if let Ok(e) = serde_json::from_str::<Entry>(&self.partial) {
                    if within(&e, &self.options) {
                        out.push(e);
                    }
                }
                self.partial.clear();
            }
        }
        Ok(out)
    }
}
