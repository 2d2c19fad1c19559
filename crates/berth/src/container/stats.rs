//! `stats`: a live table of each container's CPU, memory, network, block I/O and pids, as the
//! engine reads them; refreshed every second, or printed once with `--no-stream`.

use std::time::Duration;

use anyhow::Result;
use berth_engine::records::Record;
use berth_engine::stats::{self, Sample};
use clap::Args;
use serde_json::{json, Value};

use crate::commands::Context;
use crate::format::{bytes_size, human_size};

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Format output using a Go template, or "json"
    #[arg(long)]
    pub format: Option<String>,
    pub containers: Vec<String>,
}

const TITLES: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

const DEFAULT_FORMAT: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

pub fn run(ctx: &Context, args: StatsArgs) -> Result<i32> {
    let engine = ctx.engine()?;
    let template = match args.format.as_deref() {
        Some("json") | None => None,
        Some(f) => Some(crate::template::parse(f)?),
    };
    let default = crate::template::parse(DEFAULT_FORMAT)?;
    let template = template.as_ref().unwrap_or(&default);
    let mut before = Vec::new();
    loop {
        let records = stats::targets(&engine, &args.containers, args.all)?;
        let now: Vec<(Record, Sample)> = records
            .into_iter()
            .map(|r| {
                let s = stats::sample(&engine, &r);
                (r, s)
            })
            .collect();
        // The first round has nothing to diff the CPU against: take a second reading.
        if before.is_empty() && !now.is_empty() {
            before = now;
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        let items: Vec<Value> = now
            .iter()
            .map(|(r, s)| {
                let prev = before.iter().find(|(b, _)| b.id == r.id).map(|(_, p)| p);
                item(r, s, prev, args.no_trunc)
            })
            .collect();
        if !args.no_stream {
            // Docker's way: clear the screen and draw the table again.
            crate::format::print_raw("\x1b[2J\x1b[H");
        }
        if args.format.as_deref() == Some("json") {
            for i in &items {
                outln!("{i}");
            }
        } else {
            crate::format::print_raw(&crate::format::render_list(template, TITLES, &items)?);
        }
        if args.no_stream {
            return Ok(0);
        }
        before = now;
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn item(r: &Record, s: &Sample, before: Option<&Sample>, no_trunc: bool) -> Value {
    let mem_pct = if s.mem_limit > 0 {
        s.mem as f64 / s.mem_limit as f64 * 100.0
    } else {
        0.0
    };
    let id = if no_trunc { &r.id[..] } else { &r.id[..12] };
    json!({
        "ID": id,
        "Container": id,
        "Name": r.name,
        "CPUPerc": format!("{:.2}%", stats::cpu_percent(s, before)),
        "MemUsage": format!("{} / {}", bytes_size(s.mem), bytes_size(s.mem_limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", human_size(s.net.0), human_size(s.net.1)),
        "BlockIO": format!("{} / {}", human_size(s.block.0), human_size(s.block.1)),
        "PIDs": s.pids.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_prints_them() {
        assert_eq!(bytes_size(0), "0B");
        assert_eq!(bytes_size(1536 * 1024), "1.5MiB");
        assert_eq!(bytes_size(1_536_000), "1.465MiB");
        assert_eq!(bytes_size(8 * 1024 * 1024 * 1024), "8GiB");
    }
}
