//! `stats`: a container's CPU, memory, network, block I/O and pids, read from its cgroups (v1
//! or v2, through berth-runtime) and its init's network namespace, as Docker's stats reads
//! them; and which containers `stats` shows.

use crate::engine::Engine;
use crate::error::Result;
use crate::records::Record;

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

/// The containers named (each looked up once, failing on an unknown one), else the running
/// ones, or all with `all`; each refreshed.
pub fn targets(engine: &Engine, names: &[String], all: bool) -> Result<Vec<Record>> {
    if names.is_empty() {
        let listing = crate::lifecycle::list(engine)?;
        let records = listing.records.into_iter();
        return Ok(records
            .filter(|r| all || r.state.status.is_live())
            .collect());
    }
    names
        .iter()
        .map(|key| crate::lifecycle::refresh(engine, engine.containers.find(key)?))
        .collect()
}

/// A reading; a container that is not running reads all zeros, as in Docker.
pub fn sample(engine: &Engine, r: &Record) -> Sample {
    let Some(pid) = crate::ns::live_pid(r) else {
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
    let host_mem = crate::info::mem_total();
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

pub fn online_cpus() -> usize {
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
    let ticks = crate::top::Clock::read().ticks;
    jiffies * (1_000_000_000 / ticks)
}

/// Bytes received and sent by the container's interfaces but loopback; none when it uses the
/// host's network (Docker shows 0B there too).
fn net_io(pid: i32) -> (u64, u64) {
    let host = crate::ns::inodes(None);
    let theirs = crate::ns::inodes(Some(pid));
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
