//! `update`: new resource limits for a container, from runc's JSON (a file or `-` for stdin;
//! the flags are then ignored, as runc ignores them) or from its flags.

use std::io::Read as _;

use anyhow::{bail, Context, Result};
use berth_runtime::state::Root;
use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use crate::cli::UpdateArgs;

pub fn run(root: &Root, a: &UpdateArgs) -> Result<i32> {
    if a.l3_cache_schema.is_some() || a.mem_bw_schema.is_some() {
        bail!("--l3-cache-schema and --mem-bw-schema need Intel RDT, which berth-runc does not manage: drop them");
    }
    let resources: LinuxResources = match &a.resources {
        Some(path) => {
            let mut data = Vec::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_end(&mut data)
                    .context("read the resources from stdin")?;
            } else {
                data = std::fs::read(path)
                    .with_context(|| format!("read the resources file {}", path.display()))?;
            }
            serde_json::from_slice(&data).context("parse the resources (runc update's JSON)")?
        }
        None => serde_json::from_value(from_flags(a)?).context("the resources of the flags")?,
    };
    berth_runtime::container::update(root, &a.id, &unlimited_memory_frees_swap(resources))?;
    Ok(0)
}

/// As runc's update: an unlimited memory limit with no word on swap sets swap to 0, "not
/// set", which the cgroup code then makes unlimited along with the memory. Kept as it was, a
/// memory+swap limit below an unlimited memory limit is refused by the kernel (EINVAL).
fn unlimited_memory_frees_swap(mut resources: LinuxResources) -> LinuxResources {
    if let Some(mut memory) = *resources.memory() {
        if memory.limit() == Some(-1) && memory.swap().is_none() {
            memory.set_swap(Some(0));
            resources.set_memory(Some(memory));
        }
    }
    resources
}

/// The flags as the resources JSON they stand for; a flag not given is left out.
fn from_flags(a: &UpdateArgs) -> Result<Value> {
    let mut memory = Map::new();
    for (key, flag, value) in [
        ("limit", "--memory", &a.memory),
        ("reservation", "--memory-reservation", &a.memory_reservation),
        ("swap", "--memory-swap", &a.memory_swap),
    ] {
        if let Some(v) = value {
            memory.insert(key.into(), json!(bytes(flag, v)?));
        }
    }
    let mut cpu = Map::new();
    let numbers = [
        ("shares", a.cpu_share.map(|v| json!(v))),
        ("quota", a.cpu_quota.map(|v| json!(v))),
        ("period", a.cpu_period.map(|v| json!(v))),
        ("realtimeRuntime", a.cpu_rt_runtime.map(|v| json!(v))),
        ("realtimePeriod", a.cpu_rt_period.map(|v| json!(v))),
        ("cpus", a.cpuset_cpus.as_ref().map(|v| json!(v))),
        ("mems", a.cpuset_mems.as_ref().map(|v| json!(v))),
    ];
    for (key, value) in numbers {
        if let Some(v) = value {
            cpu.insert(key.into(), v);
        }
    }
    let mut out = Map::new();
    if !memory.is_empty() {
        out.insert("memory".into(), Value::Object(memory));
    }
    if !cpu.is_empty() {
        out.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(w) = a.blkio_weight {
        out.insert("blockIO".into(), json!({ "weight": w }));
    }
    if let Some(limit) = a.pids_limit {
        out.insert("pids".into(), json!({ "limit": limit }));
    }
    if out.is_empty() {
        bail!("nothing to update: give --resources or a limit such as --memory or --pids-limit");
    }
    Ok(Value::Object(out))
}

/// Bytes as runc's flags take them: a number, optionally with a binary unit (64m, 1.5G, 512KiB),
/// or -1 for no limit.
fn bytes(flag: &str, text: &str) -> Result<i64> {
    let t = text.trim();
    if t == "-1" {
        return Ok(-1);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => bail!("{flag} {text:?}: not a size (use bytes or a unit: 64m, 1g)"),
    };
    let value: f64 = number
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .with_context(|| format!("{flag} {text:?}: not a size (use bytes or a unit: 64m, 1g)"))?;
    let bytes = (value * (1u64 << shift) as f64).round();
    if bytes >= i64::MAX as f64 {
        bail!("{flag} {text:?}: too large");
    }
    Ok(bytes as i64)
}

#[cfg(test)]
mod tests {
    use super::{bytes, unlimited_memory_frees_swap};
    use oci_spec::runtime::LinuxResources;

    fn swap_after(memory: serde_json::Value) -> Option<i64> {
        let r: LinuxResources =
            serde_json::from_value(serde_json::json!({ "memory": memory })).expect("resources");
        let r = unlimited_memory_frees_swap(r);
        r.memory().as_ref().and_then(|m| m.swap())
    }

    #[test]
    fn unlimited_memory_without_swap_frees_swap() {
        assert_eq!(swap_after(serde_json::json!({"limit": -1})), Some(0));
        assert_eq!(
            swap_after(serde_json::json!({"limit": -1, "swap": 5})),
            Some(5)
        );
        assert_eq!(swap_after(serde_json::json!({"limit": 5})), None);
    }

    #[test]
    fn sizes_take_runcs_units() {
        assert_eq!(bytes("--memory", "1048576").unwrap(), 1 << 20);
        assert_eq!(bytes("--memory", "64m").unwrap(), 64 << 20);
        assert_eq!(bytes("--memory", "64MB").unwrap(), 64 << 20);
        assert_eq!(bytes("--memory", "1.5GiB").unwrap(), 3 << 29);
        assert_eq!(bytes("--memory", "512k").unwrap(), 512 << 10);
        assert_eq!(bytes("--memory-swap", "-1").unwrap(), -1);
        for bad in ["", "m", "12x", "-5", "1e9", "99999999999p"] {
            assert!(bytes("--memory", bad).is_err(), "{bad:?} was taken");
        }
    }
}
