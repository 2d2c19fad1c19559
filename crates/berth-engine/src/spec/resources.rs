//! Resource limits: memory and swap, CPU, pids, `--device` (cgroup rule and node) and the
//! process's rlimits (`--ulimit`, with the default RLIMIT_NOFILE capped to what the caller may
//! grant).

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use nix::sys::resource::{getrlimit, Resource};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory,
    LinuxPids, LinuxResources, LinuxThrottleDevice, LinuxThrottleDeviceBuilder,
    LinuxWeightDeviceBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
};

use super::defaults::{self, device_rule};
use super::SpecError;
use crate::request::{DeviceLimit, DeviceRequest, RunRequest};

/// The caller's hard rlimits by Docker's name ("nofile", ...); a missing name is unlimited.
/// Without CAP_SYS_RESOURCE nothing above them can be granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostLimits {
    pub hard: BTreeMap<String, u64>,
}

impl HostLimits {
    /// The calling process's hard limits (getrlimit) that [`rlimits`] reads for `req`: nofile's
    /// and those its `--ulimit`s name, not all fifteen (a getrlimit each, twice a `run`).
    pub fn current(req: &RunRequest) -> HostLimits {
        let wanted = |name: &str| name == "nofile" || req.ulimits.iter().any(|u| u.name == name);
        let hard = RLIMITS
            .iter()
            .filter(|(name, _, _)| wanted(name))
            .filter_map(|(name, res, _)| Some((name.to_string(), getrlimit(*res).ok()?.1)))
            .collect();
        HostLimits { hard }
    }

    fn hard(&self, name: &str) -> u64 {
        self.hard.get(name).copied().unwrap_or(u64::MAX)
    }
}

/// Docker's `--ulimit` names, the kernel resource and the OCI type.
const RLIMITS: [(&str, Resource, PosixRlimitType); 15] = [
    ("core", Resource::RLIMIT_CORE, PosixRlimitType::RlimitCore),
    ("cpu", Resource::RLIMIT_CPU, PosixRlimitType::RlimitCpu),
    ("data", Resource::RLIMIT_DATA, PosixRlimitType::RlimitData),
    (
        "fsize",
        Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitFsize,
    ),
    (
        "locks",
        Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitLocks,
    ),
    (
        "memlock",
        Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitMemlock,
    ),
    (
        "msgqueue",
        Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitMsgqueue,
    ),
    ("nice", Resource::RLIMIT_NICE, PosixRlimitType::RlimitNice),
    (
        "nofile",
        Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitNofile,
    ),
    (
        "nproc",
        Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNproc,
    ),
    ("rss", Resource::RLIMIT_RSS, PosixRlimitType::RlimitRss),
    (
        "rtprio",
        Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRtprio,
    ),
    (
        "rttime",
        Resource::RLIMIT_RTTIME,
        PosixRlimitType::RlimitRttime,
    ),
    (
        "sigpending",
        Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitSigpending,
    ),
    (
        "stack",
        Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitStack,
    ),
];

fn rlimit(typ: PosixRlimitType, soft: u64, hard: u64) -> Result<PosixRlimit, SpecError> {
    PosixRlimitBuilder::default()
        .typ(typ)
        .soft(soft)
        .hard(hard)
        .build()
        .map_err(|source| SpecError::Oci {
            what: "rlimits",
            source,
        })
}

/// The default RLIMIT_NOFILE (1048576, lowered to the caller's hard limit), then each
/// `--ulimit`, which must stay within the caller's hard limit.
pub fn rlimits(req: &RunRequest, host: &HostLimits) -> Result<Vec<PosixRlimit>, SpecError> {
    let mut out: Vec<(&str, PosixRlimit)> = Vec::new();
    if !req.ulimits.iter().any(|u| u.name == "nofile") {
        let n = defaults::NOFILE.min(host.hard("nofile"));
        out.push(("nofile", rlimit(PosixRlimitType::RlimitNofile, n, n)?));
    }
    for u in &req.ulimits {
        let flag = format!("--ulimit {}={}:{}", u.name, u.soft, u.hard);
        let (name, _, typ) = RLIMITS.iter().find(|(n, _, _)| *n == u.name).ok_or_else(|| {
            SpecError::invalid(&flag, format!("invalid ulimit type: {}; use one of core cpu data fsize locks memlock msgqueue nice nofile nproc rss rtprio rttime sigpending stack", u.name))
        })?;
        if u.soft > u.hard {
            return Err(SpecError::invalid(
                flag,
                "the soft limit is above the hard limit; lower it",
            ));
        }
        let limit = host.hard(name);
        if u.hard > limit {
            return Err(SpecError::UlimitAboveHost {
                name: u.name.clone(),
                soft: u.soft,
                hard: u.hard,
                host: limit,
            });
        }
        out.retain(|(n, _)| n != name);
        out.push((name, rlimit(*typ, u.soft, u.hard)?));
    }
    Ok(out.into_iter().map(|(_, r)| r).collect())
}

/// Docker's smallest memory limit.
const MIN_MEMORY: i64 = 6 << 20;

fn memory(req: &RunRequest) -> Result<Option<LinuxMemory>, SpecError> {
    let swap = match (req.memory, req.memory_swap) {
        // Unlimited swap without a memory limit is no limit at all (Docker takes it).
        (None, None | Some(-1 | 0)) => None,
        (None, Some(s)) => {
            return Err(SpecError::invalid(
                format!("--memory-swap {s}"),
                "needs --memory too; set the memory limit as well",
            ))
        }
        (Some(m), _) if m < MIN_MEMORY => {
            return Err(SpecError::invalid(
                format!("--memory {m}"),
                "Minimum memory limit allowed is 6MB; raise it",
            ))
        }
        // Docker's default: as much swap as memory (the limit counts both).
        (Some(m), None | Some(0)) => Some(m.saturating_mul(2)),
        (Some(_), Some(-1)) => Some(-1),
        (Some(m), Some(s)) if s < m => {
            return Err(SpecError::invalid(
                format!("--memory-swap {s}"),
                format!("must be at least --memory ({m}), or -1 for unlimited swap"),
            ))
        }
        (Some(_), Some(s)) => Some(s),
    };
    if let Some(r) = req.memory_reservation {
        let flag = format!("--memory-reservation {r}");
        if r < MIN_MEMORY {
            return Err(SpecError::invalid(
                flag,
                "Minimum memory reservation allowed is 6MB; raise it",
            ));
        }
        if let Some(m) = req.memory.filter(|m| *m < r) {
            return Err(SpecError::invalid(
                flag,
                format!("must not be above --memory ({m}); lower it or raise the memory limit"),
            ));
        }
    }
    let swappiness = req.memory_swappiness.and_then(|s| u64::try_from(s).ok());
    let oom_kill_disable = req.oom_kill_disable.then_some(true);
    if swap.is_none()
        && req.memory_reservation.is_none()
        && swappiness.is_none()
        && oom_kill_disable.is_none()
    {
        return Ok(None);
    }
    let mut mem = LinuxMemory::default();
    mem.set_limit(req.memory)
        .set_swap(swap)
        .set_reservation(req.memory_reservation)
        .set_swappiness(swappiness)
        .set_disable_oom_killer(oom_kill_disable);
    Ok(Some(mem))
}

/// Which of the cgroup knobs Docker keeps only where the host has them this host has (Docker's
/// sysinfo): the memory controller's v1 swappiness and OOM killer switch, block I/O weights
/// (BFQ or CFQ) and throttles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Knobs {
    pub swappiness: bool,
    pub oom_kill_disable: bool,
    pub blkio_weight: bool,
    pub blkio_weight_device: bool,
    pub throttles: [bool; 4],
}

impl Knobs {
    /// Every knob (a host where nothing is discarded).
    pub const ALL: Knobs = Knobs {
        swappiness: true,
        oom_kill_disable: true,
        blkio_weight: true,
        blkio_weight_device: true,
        throttles: [true; 4],
    };

    /// This host's, from the files its cgroup mounts show.
    pub fn of_host() -> Knobs {
        let root = Path::new("/sys/fs/cgroup");
        let has = |dir: &str, files: &[&str]| files.iter().any(|f| root.join(dir).join(f).exists());
        if berth_runtime::cgroup::host_setup().is_ok_and(|s| s == berth_cgroups::Setup::Unified) {
            // cgroup2's io controller has weights and io.max; memory's v1 knobs are gone.
            // Rootless, what the user's own subtree was delegated (systemd gives memory and
            // pids by default, not io).
            let own = berth_sys::rootless::is_rootless()
                .then(|| std::fs::read_to_string("/proc/self/cgroup").ok())
                .flatten()
                .and_then(|c| {
                    c.lines()
                        .find_map(|l| l.strip_prefix("0::").map(String::from))
                });
            let dir = match own {
                Some(path) => root.join(path.trim_start_matches('/')),
                None => root.to_path_buf(),
            };
            let io = std::fs::read_to_string(dir.join("cgroup.controllers"))
                .is_ok_and(|c| c.split_whitespace().any(|c| c == "io"));
            return Knobs {
                swappiness: false,
                oom_kill_disable: false,
                blkio_weight: io,
                blkio_weight_device: io,
                throttles: [io; 4],
            };
        }
        let throttle = |f: &str| has("blkio", &[f]);
        // BFQ's weight files are in child cgroups only, never the root's: a device scheduled
        // by BFQ (or CFQ, before 5.0) says the container's cgroup will have them.
        let weighing = weighing_scheduler();
        Knobs {
            swappiness: has("memory", &["memory.swappiness"]),
            oom_kill_disable: has("memory", &["memory.oom_control"]),
            blkio_weight: weighing || has("blkio", &["blkio.weight"]),
            blkio_weight_device: weighing || has("blkio", &["blkio.weight_device"]),
            throttles: [
                throttle("blkio.throttle.read_bps_device"),
                throttle("blkio.throttle.write_bps_device"),
                throttle("blkio.throttle.read_iops_device"),
                throttle("blkio.throttle.write_iops_device"),
            ],
        }
    }
}

/// Whether some block device of the host is scheduled by BFQ or CFQ, the schedulers that keep
/// block I/O weights (`/sys/block/*/queue/scheduler` names the active one in brackets).
fn weighing_scheduler() -> bool {
    let Ok(devices) = std::fs::read_dir("/sys/block") else {
        return false;
    };
    devices.flatten().any(|d| {
        std::fs::read_to_string(d.path().join("queue/scheduler"))
            .is_ok_and(|s| s.contains("[bfq]") || s.contains("[cfq]"))
    })
}

/// Whether the request sets a knob some hosts lack (see [`Knobs`]).
pub fn asks_host_knobs(req: &RunRequest) -> bool {
    req.memory_swappiness.is_some()
        || req.oom_kill_disable
        || req.blkio_weight.is_some()
        || !req.blkio_weight_device.is_empty()
        || !req.device_read_bps.is_empty()
        || !req.device_write_bps.is_empty()
        || !req.device_read_iops.is_empty()
        || !req.device_write_iops.is_empty()
}

/// Docker's warning for a block I/O weight the host cannot take (no BFQ or CFQ, no io.weight),
/// at create, start and update alike.
pub const BLKIO_WEIGHT_DISCARDED: &str =
    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";

/// Docker's handling of the knobs a host may lack (`knobs`, looked at only when the request
/// sets one): each set but missing is discarded, with the daemon's warning.
pub fn discard_unsupported(req: &mut RunRequest, knobs: impl FnOnce() -> Knobs) -> Vec<String> {
    let mut warnings = Vec::new();
    if req.kernel_memory.take().is_some_and(|k| k != 0) {
        warnings.push(
            "Kernel memory limits are deprecated by the kernel and ignored by runc: --kernel-memory discarded."
                .to_string(),
        );
    }
    if !asks_host_knobs(req) {
        return warnings;
    }
    let knobs = knobs();
    let mut warn = |text: &str| warnings.push(text.to_string());
    if !knobs.swappiness && req.memory_swappiness.take().is_some() {
        warn("Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.");
    }
    if !knobs.oom_kill_disable && std::mem::take(&mut req.oom_kill_disable) {
        warn("Your kernel does not support OomKillDisable. OomKillDisable discarded.");
    }
    if !knobs.blkio_weight && req.blkio_weight.take().is_some() {
        warn(BLKIO_WEIGHT_DISCARDED);
    }
    if !knobs.blkio_weight_device && !std::mem::take(&mut req.blkio_weight_device).is_empty() {
        warn("Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.");
    }
    let throttles = [
        (
            &mut req.device_read_bps,
            "BPS Block I/O read limit",
            "Block I/O BPS read limit",
        ),
        (
            &mut req.device_write_bps,
            "BPS Block I/O write limit",
            "Block I/O BPS write limit",
        ),
        (
            &mut req.device_read_iops,
            "IOPS Block read limit",
            "Block I/O IOPS read limit",
        ),
        (
            &mut req.device_write_iops,
            "IOPS Block write limit",
            "Block I/O IOPS write limit",
        ),
    ];
    for ((limits, what, discarded), supported) in throttles.into_iter().zip(knobs.throttles) {
        if !supported && !std::mem::take(limits).is_empty() {
            warn(&format!(
                "Your kernel does not support {what} or the cgroup is not mounted. {discarded} discarded."
            ));
        }
    }
    warnings
}

/// The CPUs this host has online (/sys/devices/system/cpu/online, e.g. "0-1").
fn online_cpus() -> Vec<u32> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| parse_cpu_list(s.trim()))
        .unwrap_or_default()
}

/// The memory nodes this host has online (/sys/devices/system/node/online); node 0 alone on
/// a kernel built without NUMA, which has no such file.
fn online_nodes() -> Vec<u32> {
    match std::fs::read_to_string("/sys/devices/system/node/online") {
        Ok(s) => parse_cpu_list(s.trim()).unwrap_or_default(),
        Err(_) => vec![0],
    }
}

/// "0-2,4" -> [0, 1, 2, 4]; None when malformed.
fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi): (u32, u32) = (lo.trim().parse().ok()?, hi.trim().parse().ok()?);
        if lo > hi || hi - lo > 4096 {
            return None;
        }
        out.extend(lo..=hi);
    }
    Some(out)
}

fn cpu(req: &RunRequest) -> Result<Option<LinuxCpu>, SpecError> {
    if req.cpus.is_none()
        && req.cpu_shares.is_none()
        && req.cpuset_cpus.is_none()
        && req.cpuset_mems.is_none()
        && req.cpu_period.is_none()
        && req.cpu_quota.is_none()
    {
        return Ok(None);
    }
    let online = online_cpus();
    let mut cpu = LinuxCpu::default();
    cpu.set_period(req.cpu_period).set_quota(req.cpu_quota);
    if let Some(cpus) = req.cpus {
        if req.cpu_period.is_some() || req.cpu_quota.is_some() {
            return Err(SpecError::invalid(
                format!("--cpus {cpus}"),
                "conflicts with --cpu-period and --cpu-quota, which it sets itself; use one or the other",
            ));
        }
        let n = online.len().max(1);
        if !(cpus >= 0.01 && cpus <= n as f64) {
            return Err(SpecError::invalid(
                format!("--cpus {cpus}"),
                format!(
                    "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
                ),
            ));
        }
        cpu.set_quota(Some((cpus * 100_000.0).round() as i64))
            .set_period(Some(100_000));
    }
    if let Some(p) = req.cpu_period.filter(|p| !(1000..=1_000_000).contains(p)) {
        return Err(SpecError::invalid(
            format!("--cpu-period {p}"),
            "must be from 1000 (1ms) to 1000000 (1s) microseconds",
        ));
    }
    if let Some(q) = req.cpu_quota.filter(|q| (0..1000).contains(q)) {
        return Err(SpecError::invalid(
            format!("--cpu-quota {q}"),
            "must be at least 1000 (1ms) microseconds, or -1 for no quota",
        ));
    }
    cpu.set_shares(req.cpu_shares);
    if let Some(set) = &req.cpuset_cpus {
        let flag = format!("--cpuset-cpus {set}");
        let wanted = parse_cpu_list(set)
            .ok_or_else(|| SpecError::invalid(&flag, "not a CPU list such as 0-1,3; fix it"))?;
        if let Some(bad) = wanted.iter().find(|c| !online.contains(c)) {
            return Err(SpecError::invalid(
                flag,
                format!("CPU {bad} is not available on this host; use CPUs from /sys/devices/system/cpu/online"),
            ));
        }
        cpu.set_cpus(Some(set.clone()));
    }
    if let Some(set) = &req.cpuset_mems {
        let flag = format!("--cpuset-mems {set}");
        let wanted = parse_cpu_list(set).ok_or_else(|| {
            SpecError::invalid(&flag, "not a list of memory nodes such as 0-1,3; fix it")
        })?;
        // At create, as Docker refuses it, rather than when the cgroup refuses it at start.
        if let Some(bad) = wanted.iter().find(|n| !online_nodes().contains(n)) {
            return Err(SpecError::invalid(
                flag,
                format!(
                    "memory node {bad} is not available on this host; use nodes from \
                     /sys/devices/system/node/online"
                ),
            ));
        }
        cpu.set_mems(Some(set.clone()));
    }
    Ok(Some(cpu))
}

/// Block I/O: `--blkio-weight`, and per device `--blkio-weight-device` and the
/// `--device-{read,write}-{bps,iops}` throttles, each device's numbers read from its node.
fn block_io(req: &RunRequest) -> Result<Option<LinuxBlockIo>, SpecError> {
    let throttled = [
        ("--device-read-bps", &req.device_read_bps),
        ("--device-write-bps", &req.device_write_bps),
        ("--device-read-iops", &req.device_read_iops),
        ("--device-write-iops", &req.device_write_iops),
    ];
    if req.blkio_weight.is_none()
        && req.blkio_weight_device.is_empty()
        && throttled.iter().all(|(_, limits)| limits.is_empty())
    {
        return Ok(None);
    }
    let weight = |flag: String, weight: u64| {
        u16::try_from(weight)
            .ok()
            .filter(|w| (10..=1000).contains(w))
            .ok_or_else(|| {
                SpecError::invalid(flag, "the range of block I/O weights is from 10 to 1000")
            })
    };
    let mut blkio = LinuxBlockIo::default();
    if let Some(w) = req.blkio_weight {
        blkio.set_weight(Some(weight(format!("--blkio-weight {w}"), w.into())?));
    }
    let mut weights = Vec::new();
    // A weight of 0 sets none for the device (the docker CLI takes it).
    for limit in req.blkio_weight_device.iter().filter(|l| l.value != 0) {
        let flag = format!("--blkio-weight-device {}:{}", limit.path, limit.value);
        let (major, minor) = block_device(&flag, limit)?;
        let device = LinuxWeightDeviceBuilder::default()
            .major(major)
            .minor(minor)
            .weight(weight(flag.clone(), limit.value)?)
            .build()
            .map_err(|e| SpecError::invalid(&flag, e.to_string()))?;
        weights.push(device);
    }
    if !weights.is_empty() {
        blkio.set_weight_device(Some(weights));
    }
    let [read_bps, write_bps, read_iops, write_iops] = throttled;
    blkio
        .set_throttle_read_bps_device(throttles(read_bps)?)
        .set_throttle_write_bps_device(throttles(write_bps)?)
        .set_throttle_read_iops_device(throttles(read_iops)?)
        .set_throttle_write_iops_device(throttles(write_iops)?);
    Ok(Some(blkio))
}

/// One throttle flag's devices (`--device-read-bps` and its kin), each by its node's numbers;
/// none when the flag was not given.
fn throttles(
    (name, limits): (&str, &Vec<DeviceLimit>),
) -> Result<Option<Vec<LinuxThrottleDevice>>, SpecError> {
    let mut list = Vec::new();
    for limit in limits {
        let flag = format!("{name} {}:{}", limit.path, limit.value);
        let (major, minor) = block_device(&flag, limit)?;
        let device = LinuxThrottleDeviceBuilder::default()
            .major(major)
            .minor(minor)
            .rate(limit.value)
            .build()
            .map_err(|e| SpecError::invalid(&flag, e.to_string()))?;
        list.push(device);
    }
    Ok((!list.is_empty()).then_some(list))
}

/// The numbers of the block device node at `limit.path` (a link to one is followed).
fn block_device(flag: &str, limit: &DeviceLimit) -> Result<(i64, i64), SpecError> {
    let meta = std::fs::metadata(&limit.path).map_err(|source| SpecError::Device {
        flag: flag.to_string(),
        path: limit.path.clone(),
        source,
    })?;
    if !meta.file_type().is_block_device() {
        return Err(SpecError::invalid(
            flag,
            "not a block device node; give one such as /dev/sda",
        ));
    }
    let rdev = meta.rdev();
    let number = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Ok((
        number(nix::sys::stat::major(rdev)),
        number(nix::sys::stat::minor(rdev)),
    ))
}

/// A `--device-cgroup-rule` in Docker's syntax: `type major:minor access`, the type `a`, `b`
/// or `c`, each number or `*` for any, the access of `r`, `w` and `m`.
pub fn device_cgroup_rule(rule: &str) -> Result<LinuxDeviceCgroup, SpecError> {
    let bad = || {
        SpecError::invalid(
            format!("--device-cgroup-rule {rule:?}"),
            "use 'type major:minor access', e.g. 'c 1:3 mr': type a, b or c, * for any number, access of r, w and m",
        )
    };
    let words: Vec<&str> = rule.split(' ').collect();
    let [typ, numbers, access] = words[..] else {
        return Err(bad());
    };
    let typ = match typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    // A device number as the kernel's devices cgroup takes it (32 bits), or * for any.
    let number = |n: &str| -> Result<Option<i64>, SpecError> {
        if n == "*" {
            return Ok(None);
        }
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        n.parse::<u32>().map(|n| Some(n.into())).map_err(|_| bad())
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let (major, minor) = (number(major)?, number(minor)?);
    if access.is_empty() || access.len() > 3 || !access.bytes().all(|b| b"rwm".contains(&b)) {
        return Err(bad());
    }
    // The devices cgroup's "all" rule is all or nothing: what the runtime would refuse at
    // every start is refused here, at create.
    let all_access = ['r', 'w', 'm'].iter().all(|c| access.contains(*c));
    if typ == LinuxDeviceType::A && (major.is_some() || minor.is_some() || !all_access) {
        return Err(SpecError::invalid(
            format!("--device-cgroup-rule {rule:?}"),
            "a rule of type a must be 'a *:* rwm'; name the type (b or c) to narrow it",
        ));
    }
    Ok(device_rule(true, Some(typ), major, minor, access))
}

/// The cgroup limits asked for (memory, CPU, pids, block I/O), without device rules: what
/// `run` puts in the spec and `update` applies to a live container. Every error names its flag.
pub fn limits(req: &RunRequest) -> Result<LinuxResources, SpecError> {
    let mut res = LinuxResources::default();
    res.set_memory(memory(req)?)
        .set_cpu(cpu(req)?)
        .set_block_io(block_io(req)?);
    let pids = req.pids_limit.filter(|l| *l > 0).map(|limit| {
        let mut p = LinuxPids::default();
        p.set_limit(limit);
        p
    });
    res.set_pids(pids);
    Ok(res)
}

/// The cgroup limits. `device_rules` are Docker's defaults, or allow-all when privileged, plus
/// one rule per `--device`.
pub fn resources(
    req: &RunRequest,
    device_rules: Vec<LinuxDeviceCgroup>,
) -> Result<LinuxResources, SpecError> {
    let mut res = limits(req)?;
    res.set_devices(Some(device_rules));
    Ok(res)
}

/// Docker's rules for a container: deny all plus the defaults, or allow all when privileged.
pub fn base_device_rules(privileged: bool) -> Vec<LinuxDeviceCgroup> {
    if privileged {
        vec![device_rule(true, None, None, None, "rwm")]
    } else {
        defaults::device_rules()
    }
}

/// A `--device`: the node from the host (type, numbers, mode, owner) at its container path,
/// and its cgroup rule with the given permissions.
pub fn device(d: &DeviceRequest) -> Result<(LinuxDevice, LinuxDeviceCgroup), SpecError> {
    let flag = format!("--device {}", d.host_path);
    let meta = std::fs::metadata(&d.host_path).map_err(|source| SpecError::Device {
        flag: flag.clone(),
        path: d.host_path.clone(),
        source,
    })?;
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Err(SpecError::invalid(
            flag,
            "not a character or block device; give a device node such as /dev/fuse",
        ));
    };
    let perms = if d.permissions.is_empty() {
        "rwm"
    } else {
        d.permissions.as_str()
    };
    if !perms.chars().all(|c| "rwm".contains(c)) {
        return Err(SpecError::invalid(
            flag,
            format!("permissions {perms:?}: use a combination of r, w and m"),
        ));
    }
    let target = if d.container_path.is_empty() {
        &d.host_path
    } else {
        &d.container_path
    };
    if !target.starts_with("/dev/") {
        return Err(SpecError::invalid(
            flag,
            format!("container path {target} must be under /dev/"),
        ));
    }
    let rdev = meta.rdev();
    let (major, minor) = (
        nix::sys::stat::major(rdev) as i64,
        nix::sys::stat::minor(rdev) as i64,
    );
    let mut node = LinuxDevice::default();
    node.set_path(target.into())
        .set_typ(typ)
        .set_major(major)
        .set_minor(minor)
        .set_file_mode(Some(meta.mode() & 0o777))
        .set_uid(Some(meta.uid()))
        .set_gid(Some(meta.gid()));
    Ok((
        node,
        device_rule(true, Some(typ), Some(major), Some(minor), perms),
    ))
}

/// Every device node under the host's /dev, for `--privileged` (moby `HostDevices`: the
/// pseudo-filesystems' directories and /dev/console are left out).
pub fn host_devices() -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    walk_dev(std::path::Path::new("/dev"), &mut out, 0);
    out.sort_by(|a, b| a.path().cmp(b.path()));
    out
}

fn walk_dev(dir: &std::path::Path, out: &mut Vec<LinuxDevice>, depth: usize) {
    const SKIP: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            let skip = SKIP.iter().any(|s| entry.file_name() == *s);
            if !skip && depth < 8 {
                walk_dev(&path, out, depth + 1);
            }
        } else if (ft.is_char_device() || ft.is_block_device())
            && path != std::path::Path::new("/dev/console")
        {
            let req = DeviceRequest {
                host_path: path.to_string_lossy().into_owned(),
                container_path: String::new(),
                permissions: String::new(),
            };
            if let Ok((node, _)) = device(&req) {
                out.push(node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Ulimit;

    #[test]
    fn knobs_reach_the_spec_or_are_discarded_where_the_host_lacks_them() {
        let mut req = RunRequest {
            memory_swappiness: Some(0),
            oom_kill_disable: true,
            ..RunRequest::default()
        };
        let m = memory(&req).unwrap().unwrap();
        assert_eq!(
            (m.swappiness(), m.disable_oom_killer()),
            (Some(0), Some(true))
        );
        assert_eq!(m.limit(), None, "no limit asked, none set");
        assert!(discard_unsupported(&mut req.clone(), || Knobs::ALL).is_empty());
        let v2 = Knobs {
            swappiness: false,
            oom_kill_disable: false,
            ..Knobs::ALL
        };
        let warnings = discard_unsupported(&mut req, || v2);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].ends_with("Memory swappiness discarded."));
        assert_eq!((req.memory_swappiness, req.oom_kill_disable), (None, false));
        assert_eq!(memory(&req).unwrap(), None);
        // Nothing asked: the host is not looked at.
        let untouched = discard_unsupported(&mut RunRequest::default(), || panic!("probed"));
        assert!(untouched.is_empty());
    }

    #[test]
    fn swap_defaults_to_twice_memory_and_is_checked() {
        let mut req = RunRequest {
            memory: Some(64 << 20),
            ..Default::default()
        };
        let m = memory(&req).unwrap().unwrap();
        assert_eq!((m.limit(), m.swap()), (Some(64 << 20), Some(128 << 20)));
        req.memory_swap = Some(-1);
        assert_eq!(memory(&req).unwrap().unwrap().swap(), Some(-1));
        let unlimited = RunRequest {
            memory_swap: Some(-1),
            ..RunRequest::default()
        };
        assert_eq!(
            memory(&unlimited).unwrap(),
            None,
            "-1 alone: no limit, as Docker"
        );
        req.memory_swap = Some(1 << 20);
        assert!(memory(&req).is_err());
        req.memory = Some(1 << 20);
        assert!(memory(&req).unwrap_err().to_string().contains("6MB"));
        req.memory = None;
        assert!(memory(&req).is_err());
    }

    #[test]
    fn nofile_default_is_capped_and_explicit_ulimits_are_not() {
        let host = HostLimits {
            hard: BTreeMap::from([("nofile".into(), 524288)]),
        };
        let r = rlimits(&RunRequest::default(), &host).unwrap();
        assert_eq!(
            (r[0].typ(), r[0].soft(), r[0].hard()),
            (PosixRlimitType::RlimitNofile, 524288, 524288)
        );
        let mut req = RunRequest::default();
        req.ulimits.push(Ulimit {
            name: "nofile".into(),
            soft: 99_999_999,
            hard: 99_999_999,
        });
        let e = rlimits(&req, &host).unwrap_err().to_string();
        assert!(
            e.starts_with("--ulimit nofile=99999999:99999999: above the host's hard limit 524288"),
            "{e}"
        );
        req.ulimits = vec![Ulimit {
            name: "nproc".into(),
            soft: 10,
            hard: 20,
        }];
        let r = rlimits(&req, &host).unwrap();
        assert_eq!(r.len(), 2);
        req.ulimits = vec![Ulimit {
            name: "nproc".into(),
            soft: 30,
            hard: 20,
        }];
        assert!(rlimits(&req, &host).is_err());
        req.ulimits = vec![Ulimit {
            name: "bogus".into(),
            soft: 1,
            hard: 1,
        }];
        assert!(rlimits(&req, &host).is_err());
    }

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-2,4"), Some(vec![0, 1, 2, 4]));
        assert_eq!(parse_cpu_list("2-1"), None);
        assert_eq!(parse_cpu_list("a"), None);
    }

    #[test]
    fn devices_come_from_the_host_node() {
        let req = DeviceRequest {
            host_path: "/dev/null".into(),
            container_path: "/dev/mynull".into(),
            permissions: "rw".into(),
        };
        let (node, rule) = device(&req).unwrap();
        assert_eq!(
            (node.typ(), node.major(), node.minor()),
            (LinuxDeviceType::C, 1, 3)
        );
        assert_eq!(node.path(), std::path::Path::new("/dev/mynull"));
        assert_eq!(rule.access().as_deref(), Some("rw"));
        let missing = DeviceRequest {
            host_path: "/dev/berth-nope".into(),
            ..req.clone()
        };
        assert!(device(&missing)
            .unwrap_err()
            .to_string()
            .starts_with("--device /dev/berth-nope: /dev/berth-nope: No such file"));
        let dir = DeviceRequest {
            host_path: "/dev".into(),
            ..req
        };
        assert!(device(&dir).is_err());
    }
}
