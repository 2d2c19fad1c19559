//! `stats`: a live table of each container's CPU, memory, network, block I/O and pids, from its
//! cgroups (v1 or v2, through berth-runtime) and its init's network namespace; refreshed every
//! second, or printed once with `--no-stream`.

use std::time::Duration;

use anyhow::Result;
use berth_engine::records::Record;
use berth_engine::{lifecycle, Engine};
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

/// One reading of a container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Container CPU time, ns.
    pub cpu: u64,
    /// Host CPU time over all CPUs, ns (Docker's system_cpu_usage).
    pub system: u64,
    pub mem: u64,
    pub mem_limit: u64,
    pub net: (u64, u64),
    pub block: (u64, u64),
    pub pids: u64,
}

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
        let records = targets(&engine, &args)?;
        let now: Vec<(Record, Sample)> = records
            .into_iter()
            .map(|r| {
                let s = sample(&engine, &r);
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

/// The containers named (each looked up once, failing on an unknown one), else the running
/// ones, or all with `-a`.
fn targets(engine: &Engine, args: &StatsArgs) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    if args.containers.is_empty() {
        for r in crate::commands::listed(lifecycle::list(engine)?) {
            if args.all || r.state.status.is_live() {
                out.push(r);
            }
        }
    } else {
        for key in &args.containers {
            out.push(lifecycle::refresh(engine, engine.containers.find(key)?)?);
        }
    }
    Ok(out)
}

/// A reading; a container that is not running reads all zeros, as in Docker.
pub fn sample(engine: &Engine, r: &Record) -> Sample {
    let Some(pid) = berth_engine::ns::live_pid(r) else {
        return Sample::default();
    };
    let Ok(stats) = berth_runtime::container::stats(&engine.runtime, &r.id) else {
        return Sample::default();
    };
    let m = &stats.memory;
    // Docker's usage leaves out the inactive page cache the kernel can drop.
    let inactive = ["total_inactive_file", "inactive_file"]
        .iter()
        .find_map(|k| m.raw.get(*k))
        .copied()
        .unwrap_or(0);
    let host_mem = host_memory();
    Sample {
        cpu: stats.cpu.usage.total,
        system: system_cpu_ns(),
        mem: m.usage.usage.saturating_sub(inactive),
        mem_limit: if m.usage.limit == 0 || m.usage.limit > host_mem {
            host_mem
        } else {
            m.usage.limit
        },
        net: net_io(pid),
        block: block_io(&Engine::cgroups_path(&r.id)),
        pids: stats.pids.current,
    }
}

/// Docker's CPU %: the container's share of the host's CPU time since the last reading, times
/// the number of CPUs (100% is one CPU busy).
pub fn cpu_percent(now: &Sample, before: Option<&Sample>) -> f64 {
    let Some(b) = before else { return 0.0 };
    let cpu = now.cpu.saturating_sub(b.cpu) as f64;
    let system = now.system.saturating_sub(b.system) as f64;
    if system <= 0.0 || cpu <= 0.0 {
        return 0.0;
    }
    cpu / system * online_cpus() as f64 * 100.0
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
        "CPUPerc": format!("{:.2}%", cpu_percent(s, before)),
        "MemUsage": format!("{} / {}", bytes_size(s.mem), bytes_size(s.mem_limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", human_size(s.net.0), human_size(s.net.1)),
        "BlockIO": format!("{} / {}", human_size(s.block.0), human_size(s.block.1)),
        "PIDs": s.pids.to_string(),
    })
}

fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The `cpu` line of /proc/stat, all CPUs' jiffies summed, in ns.
fn system_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let jiffies: u64 = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|n| n.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let ticks = crate::container::top::Clock::read().ticks;
    jiffies * (1_000_000_000 / ticks)
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Bytes received and sent by the container's interfaces but loopback; none when it uses the
/// host's network (Docker shows 0B there too).
fn net_io(pid: i32) -> (u64, u64) {
    let host = berth_engine::ns::inodes(None);
    let theirs = berth_engine::ns::inodes(Some(pid));
    if host.contains_key("net") && host.get("net") == theirs.get("net") {
        return (0, 0);
    }
    let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    parse_net_dev(&dev)
}

/// Sums `/proc/net/dev`'s receive and transmit bytes over every interface but `lo`.
pub fn parse_net_dev(text: &str) -> (u64, u64) {
    let mut total = (0, 0);
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        if f.len() >= 9 {
            total.0 += f[0];
            total.1 += f[8];
        }
    }
    total
}

/// Bytes read and written by the cgroup: v1's blkio or v2's io.stat (on a hybrid host the
/// unified hierarchy is under /sys/fs/cgroup/unified).
fn block_io(rel: &str) -> (u64, u64) {
    let root = berth_runtime::cgroup::ROOT;
    let v1 = format!("{root}/blkio/{rel}/blkio.throttle.io_service_bytes_recursive");
    if let Ok(text) = std::fs::read_to_string(&v1) {
        return parse_blkio_v1(&text);
    }
    for dir in [format!("{root}/{rel}"), format!("{root}/unified/{rel}")] {
        if let Ok(text) = std::fs::read_to_string(format!("{dir}/io.stat")) {
            return parse_io_stat(&text);
        }
    }
    (0, 0)
}

/// v1: lines `8:0 Read 4096`; the per-device Read and Write lines summed.
pub fn parse_blkio_v1(text: &str) -> (u64, u64) {
    let mut total = (0, 0);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if let [_, op, n] = f.as_slice() {
            let n: u64 = n.parse().unwrap_or(0);
            match *op {
                "Read" => total.0 += n,
                "Write" => total.1 += n,
                _ => {}
            }
        }
    }
    total
}

/// v2: lines `8:0 rbytes=4096 wbytes=0 ...`.
pub fn parse_io_stat(text: &str) -> (u64, u64) {
    let mut total = (0, 0);
    for kv in text.split_whitespace() {
        if let Some(n) = kv.strip_prefix("rbytes=") {
            total.0 += n.parse::<u64>().unwrap_or(0);
        } else if let Some(n) = kv.strip_prefix("wbytes=") {
            total.1 += n.parse::<u64>().unwrap_or(0);
        }
    }
    total
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

    #[test]
    fn io_files_parse() {
        let dev = "Inter-|   Receive\n face |bytes packets errs drop fifo frame compressed multicast|bytes\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 648 8 0 0 0 0 0 0 1200 10 0 0 0 0 0 0\n";
        assert_eq!(parse_net_dev(dev), (648, 1200));
        let v1 = "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:0 Total 4608\nTotal 4608\n";
        assert_eq!(parse_blkio_v1(v1), (4096, 512));
        assert_eq!(
            parse_io_stat("8:0 rbytes=10 wbytes=20 rios=1\n8:16 rbytes=1 wbytes=2\n"),
            (11, 22)
        );
    }

    #[test]
    fn cpu_percent_is_a_share_of_all_cpus() {
        let b = Sample {
            cpu: 0,
            system: 0,
            ..Sample::default()
        };
        let n = Sample {
            cpu: 500,
            system: 1000 * online_cpus() as u64,
            ..Sample::default()
        };
        assert!((cpu_percent(&n, Some(&b)) - 50.0).abs() < 1e-9);
        assert_eq!(cpu_percent(&n, None), 0.0);
    }
}
