//! Writing `LinuxResources` to v1 controller files, with v1's semantics: memory+swap limits,
//! `-1` for unlimited, CFS quota and period, and device rules as allow/deny lines.
//!
//! As in runc, a zero memory limit, pids limit, CPU share, quota or period means "not set".

use std::path::Path;

use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxMemory, LinuxNetwork, LinuxResources,
    LinuxThrottleDevice,
};

use super::{Controller, Manager};
use crate::common::{hugepage_size, rdma_lines};
use crate::devices::parse_rules;
use crate::error::{CgroupError, Result};
use crate::fs::{exists, read_u64, write, write_each};

pub(super) fn apply(m: &Manager, r: &LinuxResources) -> Result<()> {
    if let Some(memory) = r.memory() {
        apply_memory(m, memory)?;
    }
    if let Some(cpu) = r.cpu() {
        apply_cpu(m, cpu)?;
    }
    if let Some(limit) = r.pids().map(|p| p.limit()).filter(|&l| l != 0) {
        let dir = m.require(Controller::Pids, "a pids limit")?;
        write(dir, "pids.max", crate::common::v2_limit(limit))?;
    }
    if let Some(blkio) = r.block_io() {
        apply_blkio(m, blkio)?;
    }
    if let Some(limits) = r.hugepage_limits().as_ref().filter(|l| !l.is_empty()) {
        let dir = m.require(Controller::Hugetlb, "hugepage limits")?;
        for limit in limits {
            let size = hugepage_size(limit)?;
            let value = limit.limit().to_string();
            // OCI asks for reservation limits where the kernel has them (5.11+).
            let rsvd = format!("hugetlb.{size}.rsvd.limit_in_bytes");
            if exists(dir, &rsvd) {
                write(dir, &rsvd, value.clone())?;
            }
            write(dir, &format!("hugetlb.{size}.limit_in_bytes"), value)?;
        }
    }
    if let Some(rules) = r.devices() {
        apply_devices(m.require(Controller::Devices, "device rules")?, rules)?;
    }
    if let Some(network) = r.network() {
        apply_network(m, network)?;
    }
    if let Some(rdma) = r.rdma().as_ref().filter(|r| !r.is_empty()) {
        let dir = m.require(Controller::Rdma, "rdma limits")?;
        for line in rdma_lines(rdma)? {
            write(dir, "rdma.max", line)?;
        }
    }
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(CgroupError::Unsupported {
            what: "unified resources (linux.resources.unified)",
            version: "v1",
        });
    }
    Ok(())
}

fn set(value: Option<i64>) -> Option<i64> {
    value.filter(|&v| v != 0)
}

fn apply_memory(m: &Manager, memory: &LinuxMemory) -> Result<()> {
    let dir = m.require(Controller::Memory, "memory limits")?;
    let limit = set(memory.limit());
    let mut swap = set(memory.swap());
    // An unlimited memory limit with no word on swap means both unlimited, as in runc.
    if limit == Some(-1) && swap.is_none() && exists(dir, "memory.memsw.limit_in_bytes") {
        swap = Some(-1);
    }
    let write_limit = |v: i64| write(dir, "memory.limit_in_bytes", v.to_string());
    let write_swap = |v: i64| write(dir, "memory.memsw.limit_in_bytes", v.to_string());
    match (limit, swap) {
        (Some(limit), Some(swap)) => {
            // The kernel keeps memsw >= memory at every moment, so raising both must raise
            // memsw first and lowering both must lower memory first.
            let current = read_u64(dir, "memory.limit_in_bytes")?.unwrap_or(u64::MAX);
            if swap == -1 || u64::try_from(swap).is_ok_and(|s| current < s) {
                write_swap(swap)?;
                write_limit(limit)?;
            } else {
                write_limit(limit)?;
                write_swap(swap)?;
            }
        }
        (limit, swap) => {
            limit.map(write_limit).transpose()?;
            swap.map(write_swap).transpose()?;
        }
    }
    if let Some(reservation) = set(memory.reservation()) {
        write(dir, "memory.soft_limit_in_bytes", reservation.to_string())?;
    }
    if let Some(tcp) = set(memory.kernel_tcp()) {
        write(dir, "memory.kmem.tcp.limit_in_bytes", tcp.to_string())?;
    }
    if let Some(swappiness) = memory.swappiness() {
        if swappiness > 100 {
            return Err(CgroupError::InvalidResource {
                what: "memory swappiness",
                reason: format!("{swappiness} is above 100"),
            });
        }
        write(dir, "memory.swappiness", swappiness.to_string())?;
    }
    if memory.disable_oom_killer() == Some(true) {
        write(dir, "memory.oom_control", "1")?;
    }
    if let Some(hierarchy) = memory.use_hierarchy() {
        write(
            dir,
            "memory.use_hierarchy",
            if hierarchy { "1" } else { "0" },
        )?;
    }
    Ok(())
}

fn apply_cpu(m: &Manager, cpu: &LinuxCpu) -> Result<()> {
    let shares = cpu.shares().filter(|&s| s != 0);
    let quota = set(cpu.quota());
    let period = cpu.period().filter(|&p| p != 0);
    let needs_cpu = shares.is_some()
        || quota.is_some()
        || period.is_some()
        || cpu.burst().is_some()
        || cpu.idle().is_some()
        || cpu.realtime_period().is_some()
        || cpu.realtime_runtime().is_some();
    if needs_cpu {
        let dir = m.require(Controller::Cpu, "cpu shares, quota or period")?;
        if let Some(shares) = shares {
            write(dir, "cpu.shares", shares.to_string())?;
        }
        apply_cfs(dir, quota, period)?;
        if let Some(burst) = cpu.burst() {
            write(dir, "cpu.cfs_burst_us", burst.to_string())?;
        }
        // The runtime can only grow within the period, so the period goes first.
        if let Some(period) = cpu.realtime_period() {
            write(dir, "cpu.rt_period_us", period.to_string())?;
        }
        if let Some(runtime) = cpu.realtime_runtime() {
            write(dir, "cpu.rt_runtime_us", runtime.to_string())?;
        }
        if let Some(idle) = cpu.idle() {
            write(dir, "cpu.idle", idle.to_string())?;
        }
    }
    let cpus = cpu.cpus().as_deref().filter(|s| !s.is_empty());
    let mems = cpu.mems().as_deref().filter(|s| !s.is_empty());
    if cpus.is_some() || mems.is_some() {
        let dir = m.require(Controller::Cpuset, "cpuset cpus or mems")?;
        if let Some(cpus) = cpus {
            write(dir, "cpuset.cpus", cpus)?;
        }
        if let Some(mems) = mems {
            write(dir, "cpuset.mems", mems)?;
        }
    }
    Ok(())
}

/// A shorter period can be refused (EINVAL) while the old quota would exceed the parent's
/// bandwidth; as runc does, retry it once the new quota is in.
fn apply_cfs(dir: &Path, quota: Option<i64>, period: Option<u64>) -> Result<()> {
    let mut pending_period = None;
    if let Some(period) = period {
        match write(dir, "cpu.cfs_period_us", period.to_string()) {
            Ok(()) => {}
            Err(CgroupError::Write { source, .. })
                if quota.is_some() && source.raw_os_error() == Some(nix::libc::EINVAL) =>
            {
                pending_period = Some(period);
            }
            Err(err) => return Err(err),
        }
    }
    if let Some(quota) = quota {
        write(dir, "cpu.cfs_quota_us", quota.to_string())?;
    }
    if let Some(period) = pending_period {
        write(dir, "cpu.cfs_period_us", period.to_string())?;
    }
    Ok(())
}

/// `blkio.weight` belongs to CFQ, gone since 5.0; BFQ's files take the same values.
fn weight_file<'a>(dir: &Path, cfq: &'a str, bfq: &'a str) -> &'a str {
    if !exists(dir, cfq) && exists(dir, bfq) {
        bfq
    } else {
        cfq
    }
}

fn apply_blkio(m: &Manager, blkio: &LinuxBlockIo) -> Result<()> {
    let dir = m.require(Controller::Blkio, "block I/O limits")?;
    if let Some(weight) = blkio.weight() {
        write(
            dir,
            weight_file(dir, "blkio.weight", "blkio.bfq.weight"),
            weight.to_string(),
        )?;
    }
    if let Some(weight) = blkio.leaf_weight() {
        write(dir, "blkio.leaf_weight", weight.to_string())?;
    }
    let weight_device = weight_file(dir, "blkio.weight_device", "blkio.bfq.weight_device");
    for device in blkio.weight_device().iter().flatten() {
        let (major, minor) = (device.major(), device.minor());
        if let Some(weight) = device.weight() {
            write(dir, weight_device, format!("{major}:{minor} {weight}"))?;
        }
        if let Some(weight) = device.leaf_weight() {
            write(
                dir,
                "blkio.leaf_weight_device",
                format!("{major}:{minor} {weight}"),
            )?;
        }
    }
    let throttles: [(&Option<Vec<LinuxThrottleDevice>>, &str); 4] = [
        (
            blkio.throttle_read_bps_device(),
            "blkio.throttle.read_bps_device",
        ),
        (
            blkio.throttle_write_bps_device(),
            "blkio.throttle.write_bps_device",
        ),
        (
            blkio.throttle_read_iops_device(),
            "blkio.throttle.read_iops_device",
        ),
        (
            blkio.throttle_write_iops_device(),
            "blkio.throttle.write_iops_device",
        ),
    ];
    for (devices, file) in throttles {
        for d in devices.iter().flatten() {
            write(
                dir,
                file,
                format!("{}:{} {}", d.major(), d.minor(), d.rate()),
            )?;
        }
    }
    Ok(())
}

/// The writes for `rules`: deny everything first, then the rules in order, so the result is
/// the rules alone whatever the cgroup allowed before. A line repeated within a run of writes
/// to the same file changes nothing (allows add up, denies too) and is written once: specs
/// list the default devices that the runtime adds again.
pub(super) fn device_writes(rules: &[LinuxDeviceCgroup]) -> Result<Vec<(&'static str, String)>> {
    let mut writes: Vec<(&'static str, String)> = vec![("devices.deny", "a".to_owned())];
    let mut run_start = 0;
    for rule in parse_rules(rules)? {
        let file = if rule.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        let line = rule.v1_line();
        if writes.last().is_some_and(|(last, _)| *last != file) {
            run_start = writes.len();
        }
        if !writes[run_start..].iter().any(|(_, l)| *l == line) {
            writes.push((file, line));
        }
    }
    Ok(writes)
}

/// Each run of lines to the same file through one open of it.
fn apply_devices(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    let writes = device_writes(rules)?;
    for run in writes.chunk_by(|a, b| a.0 == b.0) {
        let lines: Vec<String> = run.iter().map(|(_, line)| line.clone()).collect();
        write_each(dir, run[0].0, &lines)?;
    }
    Ok(())
}

fn apply_network(m: &Manager, network: &LinuxNetwork) -> Result<()> {
    if let Some(class_id) = network.class_id() {
        let dir = m.require(Controller::NetCls, "a network class id")?;
        write(dir, "net_cls.classid", class_id.to_string())?;
    }
    for priority in network.priorities().iter().flatten() {
        let dir = m.require(Controller::NetPrio, "network priorities")?;
        let name = priority.name();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(CgroupError::InvalidResource {
                what: "network priority",
                reason: format!("{name:?} is not an interface name"),
            });
        }
        write(
            dir,
            "net_prio.ifpriomap",
            format!("{name} {}", priority.priority()),
        )?;
    }
    Ok(())
}
