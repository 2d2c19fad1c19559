//! `logs`: the json-file log read back (`--tail`, `-t`, `--since`, `-f` following until the
//! container stops).

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use berth_engine::lifecycle;
use berth_engine::monitor::logfile::{self, Entry};
use clap::Args;

use crate::commands::Context;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since a timestamp (2026-01-02T13:23:37Z) or relative (42m)
    #[arg(long)]
    pub since: Option<String>,
    pub container: String,
}

pub fn run(ctx: &Context, args: LogsArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    let record = engine.containers.find(&args.container)?;
    if record.request.log_driver == "none" {
        bail!("configured logging driver does not support reading: the container logs with --log-driver none");
    }
    let tail: Option<usize> = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .map_err(|_| anyhow::anyhow!("--tail {n:?}: a number or \"all\""))?,
        ),
    };
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let path = engine
        .containers
        .dir(&record.id)
        .join(format!("{}-json.log", record.id));
    let mut entries = Vec::new();
    for file in logfile::files(&path) {
        let Ok(f) = std::fs::File::open(&file) else {
            continue;
        };
        for line in BufReader::new(f).lines().map_while(Result::ok) {
            if let Ok(e) = serde_json::from_str::<Entry>(&line) {
                entries.push(e);
            }
        }
    }
    let entries: Vec<Entry> = entries.into_iter().filter(|e| after(e, since)).collect();
    let skip = tail.map(|n| entries.len().saturating_sub(n)).unwrap_or(0);
    for e in &entries[skip..] {
        print(e, args.timestamps);
    }
    if !args.follow {
        return Ok(0);
    }
    // Follow the live file from its current end until the container is no longer running.
    let mut f = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(_) => return Ok(0),
    };
    let mut pos = f.seek(SeekFrom::End(0))?;
    let mut partial = String::new();
    loop {
        let live = engine
            .containers
            .load(&record.id)
            .ok()
            .map(|r| lifecycle::refresh(&engine, r))
            .transpose()?
            .is_some_and(|r| r.state.status.is_live());
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            // Rotated: start over on the new file.
            f = std::fs::File::open(&path)?;
            pos = 0;
        }
        f.seek(SeekFrom::Start(pos))?;
        let mut reader = BufReader::new(&f);
        let mut line = String::new();
        while reader.read_line(&mut line)? > 0 {
            pos += line.len() as u64;
            partial.push_str(&line);
            line.clear();
            if partial.ends_with('\n') {
                if let Ok(e) = serde_json::from_str::<Entry>(&partial) {
                    print(&e, args.timestamps);
                }
                partial.clear();
            }
        }
        if !live {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn print(e: &Entry, timestamps: bool) {
    let text = if timestamps {
        format!("{} {}", e.time, e.log)
    } else {
        e.log.clone()
    };
    let _ = if e.stream == "stderr" {
        std::io::stderr().write_all(text.as_bytes())
    } else {
        std::io::stdout().write_all(text.as_bytes())
    };
}

fn after(e: &Entry, since: Option<SystemTime>) -> bool {
    let Some(since) = since else { return true };
    humantime::parse_rfc3339_weak(&e.time).is_ok_and(|t| t >= since)
}

fn parse_since(s: &str) -> Result<SystemTime> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
    }
    match humantime::parse_duration(s) {
        Ok(d) => Ok(SystemTime::now() - d),
        Err(_) => bail!("--since {s:?}: use a time (2026-01-02T13:23:37Z), seconds since 1970, or a duration (10m)"),
    }
}
