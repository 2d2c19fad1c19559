//! `logs`: the engine's reading of a container's json-file log (`--tail`, `--since`,
//! `--until`, `-f` following until the container stops), each entry on the stream it came
//! from, with `-t` its time.

use std::io::Write;
use std::time::{Duration, SystemTime};

use anyhow::Result;
use berth_engine::events::parse_time;
use berth_engine::logs::{self, Entry, LogOptions};
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
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// Show logs since a timestamp (2026-01-02T13:23:37Z) or relative (42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp (2026-01-02T13:23:37Z) or relative (42m)
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

pub fn run(ctx: &Context, args: LogsArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        n => Some(
            n.parse()
                .map_err(|_| anyhow::anyhow!("--tail {n:?}: a number or \"all\""))?,
        ),
    };
    let now = SystemTime::now();
    let time = |flag: &str, t: &Option<String>| {
        t.as_deref()
            .map(|t| parse_time(t, now).map_err(|e| anyhow::anyhow!("--{flag} {e}")))
            .transpose()
    };
    let options = LogOptions {
        tail,
        since: time("since", &args.since)?,
        until: time("until", &args.until)?,
        follow: args.follow,
    };
    let mut log = logs::read(&engine, &args.container, options)?;
    while let Some(entries) = log.next(&engine, Duration::from_secs(1))? {
        entries
            .iter()
            .for_each(|e| print(e, args.timestamps, args.details));
    }
    Ok(0)
}

fn print(e: &Entry, timestamps: bool, details: bool) {
    let text = e.shown(timestamps, details);
    let _ = if e.stream == "stderr" {
        std::io::stderr().write_all(text.as_bytes())
    } else {
        std::io::stdout().write_all(text.as_bytes())
    };
}
