//! `update`: new resource limits and restart policy for a container, kept in its record's run
//! request (so `inspect` and the next start see them) and, while it runs, written to its
//! cgroups through the runtime, with Docker's rules for what may change.

use oci_spec::runtime::{LinuxPids, LinuxResources};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::lifecycle;
use crate::records::{Record, Status};
use crate::request::{RestartPolicy, RunRequest};
use crate::spec;

/// What `update` changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    /// Memory plus swap; -1 for unlimited swap.
    pub memory_swap: Option<i64>,
    pub cpus: Option<f64>,
    pub cpu_shares: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// 0 or -1: unlimited.
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
    pub restart: Option<RestartPolicy>,
}

impl Update {
    fn touches_memory(&self) -> bool {
        self.memory.is_some() || self.memory_reservation.is_some() || self.memory_swap.is_some()
    }

    fn touches_cpu(&self) -> bool {
        self.cpus.is_some()
            || self.cpu_shares.is_some()
            || self.cpu_period.is_some()
            || self.cpu_quota.is_some()
            || self.cpuset_cpus.is_some()
            || self.cpuset_mems.is_some()
    }

    pub fn is_empty(&self) -> bool {
        *self == Update::default()
    }
}

/// What an `update` did: the record as it now is, and Docker's warnings for what the host
/// could not take (discarded, as Docker's daemon discards them).
#[derive(Debug)]
pub struct Updated {
    pub record: Record,
    pub warnings: Vec<String>,
}

/// Changes the container `key` (name, id or id prefix) as `u` says, under its record's lock:
/// the record keeps the new values only once a running container's cgroups took them.
pub fn update(engine: &Engine, key: &str, u: &Update) -> Result<Updated> {
    let mut u = u.clone();
    let warnings = discard_unsupported(&mut u, spec::Knobs::of_host);
    let found = lifecycle::refresh(engine, engine.containers.find(key)?)?;
    if u.is_empty() {
        // Nothing asked (zeros, Docker's "leave as it is"), or all of it discarded: the
        // container exists, nothing changes, as Docker's daemon answers.
        return Ok(Updated {
            record: found,
            warnings,
        });
    }
    let record = engine
        .containers
        .update(&found.id, |r| -> Result<Record> {
            let req = changed(&r.request, &u)?;
            let resources = live_resources(&req, &u)?;
            if matches!(r.state.status, Status::Running | Status::Paused) {
                match berth_runtime::container::update(&engine.runtime, &r.id, &resources) {
                    // It exited since: the record alone takes the change, for its next start.
                    Err(
                        berth_runtime::Error::Status { .. } | berth_runtime::Error::NotFound(_),
                    ) => {}
                    other => other?,
                }
            }
            r.request = req;
            Ok(r.clone())
        })??;
    Ok(Updated { record, warnings })
}

/// Docker's update (verifyPlatformContainerResources, as at create): a block I/O weight the
/// host cannot take is discarded with the daemon's warning, before its range is checked.
/// `knobs` is looked at only when the update sets a weight.
fn discard_unsupported(u: &mut Update, knobs: impl FnOnce() -> spec::Knobs) -> Vec<String> {
    if u.blkio_weight.is_some() && !knobs().blkio_weight {
        u.blkio_weight = None;
        return vec![spec::BLKIO_WEIGHT_DISCARDED.to_string()];
    }
    Vec::new()
}

/// A start's catch-up: the limits of `now`, where they differ from those of `built` (the
/// request the start's spec was built from: an `update` landed since, and the container not
/// running yet, it only recorded them), written to the created container's cgroups.
pub(crate) fn catch_up(
    engine: &Engine,
    id: &str,
    built: &RunRequest,
    now: &RunRequest,
) -> Result<()> {
    // A rootless container without a cgroup ignores its limits (rootless::limit_warning).
    if crate::rootless::without_cgroups() {
        return Ok(());
    }
    let mut res = spec::resource_limits(now)?;
    if res == spec::resource_limits(built)? && built.pids_limit == now.pids_limit {
        return Ok(());
    }
    if now.pids_limit.is_some_and(|l| l <= 0) {
        res.set_pids(Some(unlimited_pids()));
    }
    berth_runtime::container::update(&engine.runtime, id, &res)?;
    Ok(())
}

/// The request with `u`'s changes, refused where Docker refuses them.
pub fn changed(req: &RunRequest, u: &Update) -> Result<RunRequest> {
    let mut new = req.clone();
    if let Some(policy) = &u.restart {
        if req.auto_remove && *policy != RestartPolicy::No {
            return Err(Error::Invalid(
                "Restart policy cannot be updated because AutoRemove is enabled for the container (--rm); only --restart no is allowed".into(),
            ));
        }
        new.restart = policy.clone();
    }
    if let (Some(s), None, None) = (u.memory_swap, u.memory, req.memory) {
        return Err(Error::Invalid(format!(
            "--memory-swap {s}: the container has no memory limit; give --memory too"
        )));
    }
    if let Some(m) = u.memory {
        // The memory+swap limit in force: as asked, else Docker's default of twice the memory.
        let current = match req.memory_swap {
            Some(s) if s != 0 => Some(s),
            _ => req.memory.map(|m| m.saturating_mul(2)),
        };
        if u.memory_swap.is_none() {
            if let Some(cur) = current.filter(|c| *c >= 0 && m > *c) {
                return Err(Error::Invalid(format!(
                    "--memory {m}: above the memory+swap limit already set ({cur}); update --memory-swap at the same time"
                )));
            }
            // The swap limit stays where it was, as in Docker.
            new.memory_swap = current;
        }
        new.memory = Some(m);
    }
    set(&mut new.memory_swap, &u.memory_swap);
    set(&mut new.memory_reservation, &u.memory_reservation);
    set(&mut new.cpus, &u.cpus);
    set(&mut new.cpu_shares, &u.cpu_shares);
    set(&mut new.cpu_period, &u.cpu_period);
    set(&mut new.cpu_quota, &u.cpu_quota);
    set(&mut new.cpuset_cpus, &u.cpuset_cpus);
    set(&mut new.cpuset_mems, &u.cpuset_mems);
    set(&mut new.pids_limit, &u.pids_limit);
    set(&mut new.blkio_weight, &u.blkio_weight);
    Ok(new)
}

fn set<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if value.is_some() {
        slot.clone_from(value);
    }
}

/// The limits of the changed request, as `run` builds them (and so checked as `run` checks
/// them), keeping only the controllers `u` touches: a limit left alone is not written again.
fn live_resources(req: &RunRequest, u: &Update) -> Result<LinuxResources> {
    let mut res = spec::resource_limits(req)?;
    if !u.touches_memory() {
        res.set_memory(None);
    }
    if !u.touches_cpu() {
        res.set_cpu(None);
    }
    if u.blkio_weight.is_none() {
        res.set_block_io(None);
    }
    match u.pids_limit {
        None => {
            res.set_pids(None);
        }
        Some(l) if l <= 0 => {
            res.set_pids(Some(unlimited_pids()));
        }
        Some(_) => {}
    }
    Ok(res)
}

/// An update's unlimited pids (0 or -1): "max" written, where `run` simply writes nothing.
fn unlimited_pids() -> LinuxPids {
    let mut pids = LinuxPids::default();
    pids.set_limit(-1);
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: i64 = 1 << 20;

    #[test]
    fn memory_above_the_swap_limit_needs_a_new_swap_limit() {
        let req = RunRequest {
            memory: Some(64 * MB),
            ..Default::default()
        };
        let up = |memory, memory_swap| Update {
            memory,
            memory_swap,
            ..Default::default()
        };
        // Docker's default swap limit is twice the memory: 128m.
        let new = changed(&req, &up(Some(100 * MB), None)).unwrap();
        assert_eq!(
            (new.memory, new.memory_swap),
            (Some(100 * MB), Some(128 * MB))
        );
        let e = changed(&req, &up(Some(200 * MB), None)).unwrap_err();
        assert!(e.to_string().contains("update --memory-swap"), "{e}");
        let new = changed(&req, &up(Some(200 * MB), Some(400 * MB))).unwrap();
        assert_eq!(new.memory_swap, Some(400 * MB));
        let unlimited = RunRequest {
            memory_swap: Some(-1),
            ..req.clone()
        };
        assert!(changed(&unlimited, &up(Some(1024 * MB), None)).is_ok());
        // No memory limit yet: a memory limit alone is fine, a swap limit alone is not.
        let none = RunRequest::default();
        let new = changed(&none, &up(Some(64 * MB), None)).unwrap();
        assert_eq!((new.memory, new.memory_swap), (Some(64 * MB), None));
        assert!(changed(&none, &up(None, Some(64 * MB))).is_err());
        assert!(changed(&req, &up(None, Some(256 * MB))).is_ok());
    }

    #[test]
    fn a_weight_the_host_cannot_take_is_discarded_before_its_range_is_checked() {
        let no_weights = spec::Knobs {
            blkio_weight: false,
            ..spec::Knobs::ALL
        };
        for weight in [300, 5] {
            let mut u = Update {
                blkio_weight: Some(weight),
                memory: Some(64 * MB),
                ..Default::default()
            };
            let warnings = discard_unsupported(&mut u, || no_weights);
            assert_eq!(warnings, [spec::BLKIO_WEIGHT_DISCARDED]);
            assert_eq!((u.blkio_weight, u.memory), (None, Some(64 * MB)));
        }
        let mut u = Update {
            blkio_weight: Some(300),
            ..Default::default()
        };
        assert!(discard_unsupported(&mut u, || spec::Knobs::ALL).is_empty());
        assert_eq!(u.blkio_weight, Some(300));
        // Not probed when no weight is asked.
        let mut u = Update {
            memory: Some(64 * MB),
            ..Default::default()
        };
        assert!(discard_unsupported(&mut u, || panic!("probed")).is_empty());
    }

    #[test]
    fn restart_policy_and_auto_remove() {
        let rm = RunRequest {
            auto_remove: true,
            ..Default::default()
        };
        let always = Update {
            restart: Some(RestartPolicy::Always),
            ..Default::default()
        };
        let e = changed(&rm, &always).unwrap_err().to_string();
        assert!(e.contains("AutoRemove is enabled"), "{e}");
        let no = Update {
            restart: Some(RestartPolicy::No),
            ..Default::default()
        };
        assert!(changed(&rm, &no).is_ok());
        let new = changed(&RunRequest::default(), &always).unwrap();
        assert_eq!(new.restart, RestartPolicy::Always);
    }

    #[test]
    fn only_the_touched_controllers_are_written() {
        let req = RunRequest {
            memory: Some(64 * MB),
            cpu_shares: Some(512),
            ..Default::default()
        };
        let u = Update {
            pids_limit: Some(-1),
            ..Default::default()
        };
        let res = live_resources(&changed(&req, &u).unwrap(), &u).unwrap();
        assert!(res.memory().is_none() && res.cpu().is_none() && res.devices().is_none());
        assert_eq!(res.pids().as_ref().map(|p| p.limit()), Some(-1));
        let u = Update {
            cpus: Some(0.5),
            ..Default::default()
        };
        let res = live_resources(&changed(&req, &u).unwrap(), &u).unwrap();
        let cpu = res.cpu().clone().unwrap();
        assert_eq!(
            (cpu.quota(), cpu.period(), cpu.shares()),
            (Some(50_000), Some(100_000), Some(512))
        );
        // Checked as run checks: --cpus with a CFS period set is refused.
        let period = RunRequest {
            cpu_period: Some(50_000),
            ..req
        };
        let new = changed(&period, &u).unwrap();
        assert!(live_resources(&new, &u).is_err());
    }
}
