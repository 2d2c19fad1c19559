//! Writing `LinuxResources` to v2 interface files, converting v1-shaped OCI values the way runc
//! does: memory+swap to swap alone, CPU shares to weight, blkio weight to io weight.
//!
//! As in runc, a zero memory limit, pids limit, CPU share, quota or period means "not set", and
//! the v1-only knobs (swappiness, OOM killer, kernel TCP memory, leaf weights) are ignored.

use std::path::Path;

use oci_spec::runtime::{LinuxBlockIo, LinuxCpu, LinuxMemory, LinuxResources};

use crate::common::{hugepage_size, rdma_lines, v2_limit};
use crate::error::{CgroupError, Result};
use crate::fs::{self, exists, write};

pub(super) fn apply(dir: &Path, r: &LinuxResources) -> Result<()> {
    if let Some(memory) = r.memory() {
        apply_memory(dir, memory)?;
    }
    if let Some(cpu) = r.cpu() {
        apply_cpu(dir, cpu)?;
    }
    if let Some(limit) = r.pids().map(|p| p.limit()).filter(|&l| l != 0) {
        write(dir, "pids.max", v2_limit(limit))?;
    }
    if let Some(blkio) = r.block_io() {
        apply_io(dir, blkio)?;
    }
    for limit in r.hugepage_limits().iter().flatten() {
        let size = hugepage_size(limit)?;
        let value = v2_limit(limit.limit());
        let rsvd = format!("hugetlb.{size}.rsvd.max");
        if exists(dir, &rsvd) {
            write(dir, &rsvd, value.clone())?;
        }
        write(dir, &format!("hugetlb.{size}.max"), value)?;
    }
    if let Some(rules) = r.devices() {
        super::devices::apply(dir, rules)?;
    }
    if let Some(network) = r.network() {
        if network.class_id().is_some() || network.priorities().iter().flatten().next().is_some() {
            return Err(CgroupError::Unsupported {
                what: "network class ids and priorities (net_cls, net_prio)",
                version: "v2",
            });
        }
    }
    if let Some(rdma) = r.rdma() {
        for line in rdma_lines(rdma)? {
            write(dir, "rdma.max", line)?;
        }
    }
    if let Some(unified) = r.unified() {
        apply_unified(dir, unified)?;
    }
    Ok(())
}

/// OCI's `swap` is v1's memory+swap limit; v2's `memory.swap.max` is swap alone.
pub(crate) fn swap_to_v2(swap: i64, memory: i64) -> Result<Option<i64>> {
    let invalid = |reason: &str| CgroupError::InvalidResource {
        what: "memory swap limit",
        reason: reason.to_owned(),
    };
    match (swap, memory) {
        // Unlimited memory with no word on swap means both unlimited, as on v1.
        (0, -1) | (-1, _) => Ok(Some(-1)),
        (0, _) => Ok(None),
        (_, 0 | -1) => Err(invalid("a swap limit needs a memory limit")),
        (_, m) if m < 0 => Err(invalid("the memory limit is negative")),
        (s, m) if s < m => Err(invalid("memory+swap must be at least the memory limit")),
        (s, m) => Ok(Some(s - m)),
    }
}

fn apply_memory(dir: &Path, memory: &LinuxMemory) -> Result<()> {
    let limit = memory.limit().unwrap_or(0);
    if let Some(swap) = swap_to_v2(memory.swap().unwrap_or(0), limit)? {
        // Without swap accounting there is no file, and no swap (0) or "unlimited" is what
        // we have anyway: runc writes neither then.
        if swap > 0 || exists(dir, "memory.swap.max") {
            write(dir, "memory.swap.max", v2_limit(swap))?;
        }
    }
    if limit != 0 {
        write(dir, "memory.max", v2_limit(limit))?;
    }
    if let Some(reservation) = memory.reservation().filter(|&r| r != 0) {
        write(dir, "memory.low", v2_limit(reservation))?;
    }
    Ok(())
}

/// v1 shares (2..=262144, default 1024) onto v2 weight (1..=10000, default 100), as runc.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

fn apply_cpu(dir: &Path, cpu: &LinuxCpu) -> Result<()> {
    if cpu.realtime_period().is_some_and(|p| p != 0)
        || cpu.realtime_runtime().is_some_and(|r| r != 0)
    {
        return Err(CgroupError::Unsupported {
            what: "realtime CPU period and runtime",
            version: "v2",
        });
    }
    if let Some(shares) = cpu.shares().filter(|&s| s != 0) {
        write(dir, "cpu.weight", shares_to_weight(shares).to_string())?;
    }
    if let Some(max) = cpu_max(dir, cpu.quota().filter(|&q| q != 0), cpu.period())? {
        write(dir, "cpu.max", max)?;
    }
    if let Some(burst) = cpu.burst() {
        write(dir, "cpu.max.burst", burst.to_string())?;
    }
    if let Some(idle) = cpu.idle() {
        write(dir, "cpu.idle", idle.to_string())?;
    }
    if let Some(cpus) = cpu.cpus().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.cpus", cpus)?;
    }
    if let Some(mems) = cpu.mems().as_deref().filter(|s| !s.is_empty()) {
        write(dir, "cpuset.mems", mems)?;
    }
    Ok(())
}

/// `cpu.max` is "$QUOTA $PERIOD" in one file. A period given alone keeps the current quota
/// (runc would write "max", silently dropping a quota set earlier).
fn cpu_max(dir: &Path, quota: Option<i64>, period: Option<u64>) -> Result<Option<String>> {
    let period = period.filter(|&p| p != 0);
    let quota = match (quota, period) {
        (None, None) => return Ok(None),
        (Some(q), _) if q > 0 => q.to_string(),
        (Some(_), _) => "max".to_owned(),
        (None, Some(_)) => {
            let current = fs::read(dir, "cpu.max")?;
            current
                .split_whitespace()
                .next()
                .unwrap_or("max")
                .to_owned()
        }
    };
    Ok(Some(match period {
        Some(period) => format!("{quota} {period}"),
        None => quota,
    }))
}

/// blkio weight (10..=1000) onto io.weight (1..=10000), as runc.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    let weight = u64::from(weight.clamp(10, 1000));
    1 + (weight - 10) * 9999 / 990
}

fn apply_io(dir: &Path, blkio: &LinuxBlockIo) -> Result<()> {
    // BFQ takes blkio's weight range unchanged; io.weight (the cost model) needs converting.
    let bfq = exists(dir, "io.bfq.weight");
    let (file, convert): (&str, fn(u16) -> u64) = if bfq {
        ("io.bfq.weight", u64::from)
    } else {
        ("io.weight", blkio_weight_to_io_weight)
    };
    if let Some(weight) = blkio.weight() {
        write(dir, file, convert(weight).to_string())?;
    }
    for device in blkio.weight_device().iter().flatten() {
        if let Some(weight) = device.weight() {
            let (major, minor) = (device.major(), device.minor());
            write(dir, file, format!("{major}:{minor} {}", convert(weight)))?;
        }
    }
    let throttles = [
        (blkio.throttle_read_bps_device(), "rbps"),
        (blkio.throttle_write_bps_device(), "wbps"),
        (blkio.throttle_read_iops_device(), "riops"),
        (blkio.throttle_write_iops_device(), "wiops"),
    ];
    for (devices, key) in throttles {
        for d in devices.iter().flatten() {
            let line = format!("{}:{} {key}={}", d.major(), d.minor(), d.rate());
            write(dir, "io.max", line)?;
        }
    }
    Ok(())
}

/// Raw interface files, written last so that they override the typed fields, as in runc.
fn apply_unified(dir: &Path, unified: &std::collections::HashMap<String, String>) -> Result<()> {
    let mut keys: Vec<&String> = unified.keys().collect();
    keys.sort();
    for key in keys {
        let plain_file = !key.contains('/') && key.contains('.') && key != "." && key != "..";
        if !plain_file {
            return Err(CgroupError::InvalidResource {
                what: "unified resource key",
                reason: format!("{key:?} is not a cgroup interface file name"),
            });
        }
        write(dir, key, unified[key].as_str())?;
    }
    Ok(())
}
