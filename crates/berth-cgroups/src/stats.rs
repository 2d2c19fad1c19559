//! Resource usage of a cgroup, read from v1 or v2 files into the shape of the "data" object of
//! `runc events --stats`, so tools that parse runc's output can parse ours.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::fs::{read_keyed, read_numbers, read_optional, read_u64};

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub cpu: CpuStats,
    pub memory: MemoryStats,
    pub pids: PidsStats,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CpuStats {
    pub usage: CpuUsage,
    pub throttling: Throttling,
}

/// CPU time in nanoseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Only v1's cpuacct keeps per-CPU counters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    pub kernel: u64,
    pub user: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Nanoseconds.
    #[serde(skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemoryStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    pub usage: MemoryEntry,
    /// Memory plus swap, as v1 reports it; v2's separate swap figures are added to memory's.
    pub swap: MemoryEntry,
    pub kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// Bytes; a limit of `u64::MAX` means no limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemoryEntry {
    pub limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    pub failcnt: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PidsStats {
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// Zero means no limit.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// The v1 controller directories stats are read from; absent controllers give zeros.
#[derive(Default)]
pub(crate) struct V1Dirs<'a> {
    pub cpu: Option<&'a Path>,
    pub cpuacct: Option<&'a Path>,
    pub memory: Option<&'a Path>,
    pub pids: Option<&'a Path>,
}

pub(crate) fn read_v1(dirs: &V1Dirs<'_>) -> Result<Stats> {
    let mut stats = Stats::default();
    if let Some(dir) = dirs.cpuacct {
        stats.cpu.usage = v1_cpu_usage(dir)?;
    }
    if let Some(dir) = dirs.cpu {
        if let Some(cpu) = read_keyed(dir, "cpu.stat")? {
            stats.cpu.throttling = Throttling {
                periods: field(&cpu, "nr_periods"),
                throttled_periods: field(&cpu, "nr_throttled"),
                throttled_time: field(&cpu, "throttled_time"),
            };
        }
    }
    if let Some(dir) = dirs.memory {
        let memory = &mut stats.memory;
        memory.usage = v1_memory_entry(dir, "memory")?;
        memory.swap = v1_memory_entry(dir, "memory.memsw")?;
        memory.kernel = v1_memory_entry(dir, "memory.kmem")?;
        memory.kernel_tcp = v1_memory_entry(dir, "memory.kmem.tcp")?;
        memory.raw = read_keyed(dir, "memory.stat")?.unwrap_or_default();
        memory.cache = field(&memory.raw, "cache");
    }
    if let Some(dir) = dirs.pids {
        stats.pids = read_pids(dir)?;
    }
    Ok(stats)
}

fn field(map: &BTreeMap<String, u64>, key: &str) -> u64 {
    map.get(key).copied().unwrap_or(0)
}

fn v1_cpu_usage(dir: &Path) -> Result<CpuUsage> {
    let percpu = |file| -> Result<Vec<u64>> {
        match read_optional(dir, file)? {
            Some(_) => read_numbers(dir, file),
            None => Ok(Vec::new()),
        }
    };
    let mut usage = CpuUsage {
        total: read_u64(dir, "cpuacct.usage")?.unwrap_or(0),
        percpu: percpu("cpuacct.usage_percpu")?,
        percpu_kernel: percpu("cpuacct.usage_percpu_sys")?,
        percpu_user: percpu("cpuacct.usage_percpu_user")?,
        ..CpuUsage::default()
    };
    // Since 4.7 the kernel has exact nanosecond counters; cpuacct.stat only has clock ticks.
    match (
        read_u64(dir, "cpuacct.usage_user")?,
        read_u64(dir, "cpuacct.usage_sys")?,
    ) {
        (Some(user), Some(kernel)) => (usage.user, usage.kernel) = (user, kernel),
        _ => {
            if let Some(stat) = read_keyed(dir, "cpuacct.stat")? {
                let ns_per_tick = 1_000_000_000 / clock_ticks_per_second();
                usage.user = field(&stat, "user").saturating_mul(ns_per_tick);
                usage.kernel = field(&stat, "system").saturating_mul(ns_per_tick);
            }
        }
    }
    Ok(usage)
}

fn clock_ticks_per_second() -> u64 {
    use nix::unistd::{sysconf, SysconfVar};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(n)) if n > 0 => n as u64,
        _ => 100,
    }
}

fn v1_memory_entry(dir: &Path, prefix: &str) -> Result<MemoryEntry> {
    let get = |suffix: &str| -> Result<u64> {
        Ok(read_u64(dir, &format!("{prefix}.{suffix}"))?.unwrap_or(0))
    };
    Ok(MemoryEntry {
        usage: get("usage_in_bytes")?,
        max: get("max_usage_in_bytes")?,
        limit: get("limit_in_bytes")?,
        failcnt: get("failcnt")?,
    })
}

fn read_pids(dir: &Path) -> Result<PidsStats> {
    let limit = match read_u64(dir, "pids.max")? {
        Some(u64::MAX) | None => 0,
        Some(n) => n,
    };
    Ok(PidsStats {
        current: read_u64(dir, "pids.current")?.unwrap_or(0),
        limit,
    })
}

pub(crate) fn read_v2(dir: &Path) -> Result<Stats> {
    let mut stats = Stats::default();
    if let Some(cpu) = read_keyed(dir, "cpu.stat")? {
        let ns = |key| field(&cpu, key).saturating_mul(1000);
        stats.cpu.usage = CpuUsage {
            total: ns("usage_usec"),
            user: ns("user_usec"),
            kernel: ns("system_usec"),
            ..CpuUsage::default()
        };
        stats.cpu.throttling = Throttling {
            periods: field(&cpu, "nr_periods"),
            throttled_periods: field(&cpu, "nr_throttled"),
            throttled_time: ns("throttled_usec"),
        };
    }
    let memory = &mut stats.memory;
    // memory.events counts each time usage hit memory.max: v2's failcnt.
    let events = read_keyed(dir, "memory.events")?.unwrap_or_default();
    memory.usage = MemoryEntry {
        usage: read_u64(dir, "memory.current")?.unwrap_or(0),
        limit: read_u64(dir, "memory.max")?.unwrap_or(0),
        max: read_u64(dir, "memory.peak")?.unwrap_or(0),
        failcnt: field(&events, "max"),
    };
    let swap_only = MemoryEntry {
        usage: read_u64(dir, "memory.swap.current")?.unwrap_or(0),
        limit: read_u64(dir, "memory.swap.max")?.unwrap_or(0),
        ..MemoryEntry::default()
    };
    memory.swap = MemoryEntry {
        usage: swap_only.usage.saturating_add(memory.usage.usage),
        limit: swap_only.limit.saturating_add(memory.usage.limit),
        // The peak of memory plus swap is not the sum of their peaks: leave it out as runc does.
        max: 0,
        failcnt: 0,
    };
    memory.raw = read_keyed(dir, "memory.stat")?.unwrap_or_default();
    memory.cache = field(&memory.raw, "file");
    stats.pids = read_pids(dir)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn files(dir: &Path, files: &[(&str, &str)]) {
        for (name, content) in files {
            fs::write(dir.join(name), content).unwrap();
        }
    }

    #[test]
    fn v1_stats_from_cpuacct_cpu_memory_and_pids() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        files(
            d,
            &[
                ("cpuacct.usage", "3000\n"),
                ("cpuacct.usage_percpu", "1000 2000 \n"),
                ("cpuacct.usage_user", "2500\n"),
                ("cpuacct.usage_sys", "500\n"),
                (
                    "cpu.stat",
                    "nr_periods 4\nnr_throttled 1\nthrottled_time 700\n",
                ),
                ("memory.usage_in_bytes", "4096\n"),
                ("memory.max_usage_in_bytes", "8192\n"),
                ("memory.limit_in_bytes", "1048576\n"),
                ("memory.failcnt", "2\n"),
                ("memory.memsw.usage_in_bytes", "4096\n"),
                ("memory.memsw.limit_in_bytes", "2097152\n"),
                ("memory.stat", "cache 12\nrss 34\n"),
                ("pids.current", "3\n"),
                ("pids.max", "max\n"),
            ],
        );
        let stats = read_v1(&V1Dirs {
            cpu: Some(d),
            cpuacct: Some(d),
            memory: Some(d),
            pids: Some(d),
        })
        .unwrap();
        assert_eq!(stats.cpu.usage.total, 3000);
        assert_eq!(stats.cpu.usage.percpu, [1000, 2000]);
        assert_eq!((stats.cpu.usage.user, stats.cpu.usage.kernel), (2500, 500));
        assert_eq!(stats.cpu.throttling.throttled_time, 700);
        assert_eq!(stats.memory.usage.limit, 1048576);
        assert_eq!(stats.memory.usage.failcnt, 2);
        assert_eq!(stats.memory.swap.limit, 2097152);
        assert_eq!(stats.memory.cache, 12);
        assert_eq!(
            stats.pids,
            PidsStats {
                current: 3,
                limit: 0
            }
        );
    }

    #[test]
    fn v1_user_and_kernel_fall_back_to_clock_ticks() {
        let tmp = tempfile::tempdir().unwrap();
        files(tmp.path(), &[("cpuacct.stat", "user 2\nsystem 1\n")]);
        let usage = v1_cpu_usage(tmp.path()).unwrap();
        let tick = 1_000_000_000 / clock_ticks_per_second();
        assert_eq!((usage.user, usage.kernel), (2 * tick, tick));
    }

    #[test]
    fn v2_stats_convert_usec_and_add_memory_to_swap() {
        let tmp = tempfile::tempdir().unwrap();
        files(
            tmp.path(),
            &[
                (
                    "cpu.stat",
                    "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 9\nnr_throttled 1\nthrottled_usec 4\n",
                ),
                ("memory.current", "100\n"),
                ("memory.max", "1000\n"),
                ("memory.peak", "150\n"),
                ("memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n"),
                ("memory.swap.current", "10\n"),
                ("memory.swap.max", "max\n"),
                ("memory.stat", "anon 1\nfile 2\n"),
                ("pids.current", "1\n"),
                ("pids.max", "64\n"),
            ],
        );
        let stats = read_v2(tmp.path()).unwrap();
        assert_eq!(stats.cpu.usage.total, 5000);
        assert_eq!((stats.cpu.usage.user, stats.cpu.usage.kernel), (3000, 2000));
        assert_eq!(stats.cpu.throttling.throttled_time, 4000);
        assert_eq!(stats.memory.usage.failcnt, 7);
        assert_eq!(stats.memory.usage.max, 150);
        assert_eq!(stats.memory.swap.usage, 110);
        assert_eq!(stats.memory.swap.limit, u64::MAX);
        assert_eq!(stats.memory.cache, 2);
        assert_eq!(
            stats.pids,
            PidsStats {
                current: 1,
                limit: 64
            }
        );
    }

    #[test]
    fn serializes_like_runc_events_data() {
        let mut stats = Stats::default();
        stats.cpu.usage.total = 10;
        stats.cpu.usage.percpu = vec![4, 6];
        stats.cpu.throttling.throttled_periods = 1;
        stats.memory.usage.limit = 100;
        stats.memory.raw.insert("rss".into(), 1);
        stats.pids.current = 2;
        let json = serde_json::to_value(&stats).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "cpu": {
                    "usage": {"total": 10, "percpu": [4, 6], "kernel": 0, "user": 0},
                    "throttling": {"throttledPeriods": 1}
                },
                "memory": {
                    "usage": {"limit": 100, "failcnt": 0},
                    "swap": {"limit": 0, "failcnt": 0},
                    "kernel": {"limit": 0, "failcnt": 0},
                    "kernelTCP": {"limit": 0, "failcnt": 0},
                    "raw": {"rss": 1}
                },
                "pids": {"current": 2}
            })
        );
    }
}
