//! Capabilities: the five sets of the process, from the spec to the kernel.
//!
//! [`plan`] runs in the parent and validates everything the kernel would refuse later, with an
//! error that names the capability; the apply functions run in the container's init, in this
//! order: [`drop_bounding`] (needs CAP_SETPCAP, before the user switch),
//! [`keep_caps_across_setuid`]`(true)`, the setuid/setgid, then [`apply_sets`].

use std::collections::HashSet;
use std::str::FromStr;

use caps::errors::CapsError;
use caps::{CapSet, Capability as KernelCap, CapsHashSet};
use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities};

const CAP_LAST_CAP: &str = "/proc/sys/kernel/cap_last_cap";

/// The five capability sets of the container's process, as kernel capabilities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapabilityPlan {
    pub bounding: CapsHashSet,
    pub effective: CapsHashSet,
    pub permitted: CapsHashSet,
    pub inheritable: CapsHashSet,
    pub ambient: CapsHashSet,
    /// The highest capability number this kernel knows (`/proc/sys/kernel/cap_last_cap`):
    /// [`drop_bounding`] drops every one up to it that is not in `bounding`.
    pub last_cap: u8,
}

impl CapabilityPlan {
    /// True when `cap` is in any of the process's sets.
    pub fn has(&self, cap: KernelCap) -> bool {
        [
            &self.bounding,
            &self.effective,
            &self.permitted,
            &self.inheritable,
            &self.ambient,
        ]
        .iter()
        .any(|set| set.contains(&cap))
    }
}

/// Why the capability sets could not be planned or applied.
#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    #[error("unknown capability \"{name}\": berth does not know it; drop it from the config")]
    Unknown { name: String },
    #[error(
        "capability {name} is not supported by this kernel (number {number}, but \
         {CAP_LAST_CAP} is {last_cap}); drop it from the config"
    )]
    AboveLastCap {
        name: KernelCap,
        number: u8,
        last_cap: u8,
    },
    #[error(
        "capability {name} is not in the host's bounding set: berth cannot grant it; drop it \
         from the config"
    )]
    NotInHostBounding { name: KernelCap },
    #[error(
        "effective capability {name} is not in the permitted set: the kernel refuses it \
         (capset); add it to permitted or drop it from effective"
    )]
    EffectiveNotPermitted { name: KernelCap },
    #[error(
        "inheritable capability {name} is not in the bounding set: the kernel refuses it \
         (capset); add it to bounding or drop it from inheritable"
    )]
    InheritableNotBounded { name: KernelCap },
    #[error(
        "ambient capability {name} is not in both the permitted and the inheritable sets: the \
         kernel refuses to raise it (PR_CAP_AMBIENT_RAISE); add it to both or drop it from \
         ambient"
    )]
    AmbientNotAllowed { name: KernelCap },
    #[error("reading {CAP_LAST_CAP}: {reason}")]
    ReadLastCap { reason: String },
    #[error("dropping {name} from the bounding set (prctl PR_CAPBSET_DROP): {source}; init needs CAP_SETPCAP here")]
    DropBounding { name: KernelCap, source: CapsError },
    #[error("setting keep-capabilities to {keep} (prctl PR_SET_KEEPCAPS): {source}")]
    KeepCaps { keep: bool, source: CapsError },
    #[error(
        "setting the effective set to [{effective}], permitted to [{permitted}] and inheritable \
         to [{inheritable}] (capset): {source}"
    )]
    SetSets {
        effective: String,
        permitted: String,
        inheritable: String,
        source: std::io::Error,
    },
    #[error("clearing the ambient set (prctl PR_CAP_AMBIENT_CLEAR_ALL): {source}")]
    ClearAmbient { source: CapsError },
    #[error("raising {name} in the ambient set (prctl PR_CAP_AMBIENT_RAISE): {source}")]
    RaiseAmbient { name: KernelCap, source: CapsError },
}

/// What the plan is checked against: this host's kernel and the caller's own bounding set.
#[derive(Clone, Debug)]
pub(crate) struct Host {
    pub(crate) bounding: CapsHashSet,
    pub(crate) last_cap: u8,
}

impl Host {
    /// `status` is the runtime's /proc/self/status, if it could be read; `spec`, the
    /// capabilities asked for. The kernel's last capability is read from
    /// /proc/sys/kernel/cap_last_cap only when one asked for is above every one of our bounding
    /// set (to tell "unknown to this kernel" from "not ours to grant"): else the highest of the
    /// bounding set serves as well, for the drops too, since a capability above it is not in
    /// the bounding set to drop.
    fn read(
        status: Option<&str>,
        spec: Option<&LinuxCapabilities>,
    ) -> Result<Host, CapabilityError> {
        let bounding = bounding_of(status);
        let top = bounding.iter().map(|c| c.index()).max();
        let asked_above = |top: u8| {
            let sets = spec.into_iter().flat_map(|s| {
                [
                    s.bounding(),
                    s.effective(),
                    s.permitted(),
                    s.inheritable(),
                    s.ambient(),
                ]
            });
            sets.flatten().flatten().any(|cap| {
                KernelCap::from_str(&format!("CAP_{cap}")).map_or(true, |k| k.index() > top)
            })
        };
        let last_cap = match top {
            Some(top) if !asked_above(top) => top,
            _ => Self::read_last_cap()?,
        };
        Ok(Host { bounding, last_cap })
    }

    fn read_last_cap() -> Result<u8, CapabilityError> {
        let text = berth_sys::file::read_to_string(CAP_LAST_CAP).map_err(|e| {
            CapabilityError::ReadLastCap {
                reason: e.to_string(),
            }
        })?;
        let last_cap = text
            .trim()
            .parse()
            .map_err(|_| CapabilityError::ReadLastCap {
                reason: format!("not a number: {:?}", text.trim()),
            })?;
        Ok(last_cap)
    }
}

/// The capabilities berth can grant on this host: its bounding set. What "all capabilities"
/// (e.g. `--privileged`) should mean here. Read from the CapBnd line of /proc/self/status, one
/// file where PR_CAPBSET_READ takes a prctl per capability; those prctls where /proc cannot
/// be read. Either way, only the capabilities the caps crate knows.
pub fn host_bounding() -> CapsHashSet {
    let status = berth_sys::file::read_to_string("/proc/self/status");
    bounding_of(status.ok().as_deref())
}

/// The bounding set from the CapBnd line of `status` (/proc/self/status), or one prctl per
/// capability without it.
fn bounding_of(status: Option<&str>) -> CapsHashSet {
    match status.and_then(|s| berth_sys::process::status_mask(s, "CapBnd:")) {
        Some(mask) => caps::all()
            .into_iter()
            .filter(|c| mask & c.bitmask() != 0)
            .collect(),
        None => caps::read(None, CapSet::Bounding).unwrap_or_default(),
    }
}

/// Maps the spec's capabilities to kernel ones and validates them against this host (the
/// bounding set from `status`, the runtime's /proc/self/status, when the caller read it).
/// Missing sets are empty.
pub fn plan(
    spec: Option<&LinuxCapabilities>,
    status: Option<&str>,
) -> Result<CapabilityPlan, CapabilityError> {
    plan_for(spec, &Host::read(status, spec)?)
}

pub(crate) fn plan_for(
    spec: Option<&LinuxCapabilities>,
    host: &Host,
) -> Result<CapabilityPlan, CapabilityError> {
    let set = |get: fn(&LinuxCapabilities) -> &Option<Capabilities>| {
        spec.and_then(|s| get(s).as_ref())
            .map_or(Ok(CapsHashSet::new()), |caps| kernel_set(caps, host))
    };
    let mut plan = CapabilityPlan {
        bounding: set(LinuxCapabilities::bounding)?,
        effective: set(LinuxCapabilities::effective)?,
        permitted: set(LinuxCapabilities::permitted)?,
        inheritable: set(LinuxCapabilities::inheritable)?,
        ambient: set(LinuxCapabilities::ambient)?,
        last_cap: host.last_cap,
    };
    if let Some(&name) = first_missing(&plan.effective, &plan.permitted) {
        return Err(CapabilityError::EffectiveNotPermitted { name });
    }
    if let Some(&name) = first_missing(&plan.inheritable, &plan.bounding) {
        return Err(CapabilityError::InheritableNotBounded { name });
    }
    let raisable: CapsHashSet = plan
        .permitted
        .intersection(&plan.inheritable)
        .copied()
        .collect();
    // The kernel refuses to raise an ambient capability outside permitted ∩ inheritable; runc
    // leaves such entries out without a word (`runc spec` itself lists them, with no
    // inheritable set), and so do we: a line only with --debug.
    if let Some(&name) = first_missing(&plan.ambient, &raisable) {
        crate::log::debug(&CapabilityError::AmbientNotAllowed { name }.to_string());
        plan.ambient.retain(|c| raisable.contains(c));
    }
    Ok(plan)
}

/// The member of `set` not in `of` with the lowest number, so errors are deterministic.
fn first_missing<'a>(set: &'a CapsHashSet, of: &'a CapsHashSet) -> Option<&'a KernelCap> {
    set.difference(of).min_by_key(|c| c.index())
}

fn kernel_set(caps: &HashSet<Capability>, host: &Host) -> Result<CapsHashSet, CapabilityError> {
    let mut sorted: Vec<&Capability> = caps.iter().collect();
    sorted.sort_by_key(|c| c.to_string());
    sorted.into_iter().map(|c| kernel_cap(c, host)).collect()
}

fn kernel_cap(cap: &Capability, host: &Host) -> Result<KernelCap, CapabilityError> {
    // oci-spec prints names without the prefix ("SYS_ADMIN"); the caps crate wants it.
    let name = format!("CAP_{cap}");
    let kernel = KernelCap::from_str(&name).map_err(|_| CapabilityError::Unknown { name })?;
    if kernel.index() > host.last_cap {
        return Err(CapabilityError::AboveLastCap {
            name: kernel,
            number: kernel.index(),
            last_cap: host.last_cap,
        });
    }
    if !host.bounding.contains(&kernel) {
        return Err(CapabilityError::NotInHostBounding { name: kernel });
    }
    Ok(kernel)
}

/// Drops from the calling thread's bounding set every capability up to `last_cap` that is not
/// in `plan.bounding` (PR_CAPBSET_DROP). Needs CAP_SETPCAP in the effective set, so it runs
/// before the user switch. Dropping an absent capability succeeds, so nothing is read first
/// (a read per capability doubled the prctls); only a refused drop is checked, and is no error
/// when the capability is absent already: a plan that keeps the whole current set needs no
/// privilege at all.
pub fn drop_bounding(plan: &CapabilityPlan) -> Result<(), CapabilityError> {
    let mut to_drop: Vec<KernelCap> = caps::all()
        .into_iter()
        .filter(|c| c.index() <= plan.last_cap && !plan.bounding.contains(c))
        .collect();
    to_drop.sort_by_key(|c| c.index());
    for cap in to_drop {
        match caps::drop(None, CapSet::Bounding, cap) {
            Ok(()) => {}
            Err(_) if !caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(true) => {}
            Err(source) => return Err(CapabilityError::DropBounding { name: cap, source }),
        }
    }
    Ok(())
}

/// Sets PR_SET_KEEPCAPS: with `true`, the permitted set survives a setuid from root to another
/// user (the effective set is still cleared; [`apply_sets`] sets it again). Call with `true`
/// before the setuid and, to leave no trace in the container, `false` after it.
pub fn keep_caps_across_setuid(keep: bool) -> Result<(), CapabilityError> {
    caps::securebits::set_keepcaps(keep)
        .map_err(|source| CapabilityError::KeepCaps { keep, source })
}

/// Sets the inheritable, effective and permitted sets in one capset (which the kernel checks
/// against the old sets as one change, as [`plan`] did already), then replaces the ambient set
/// (clear, then raise each). Runs after the user switch.
pub fn apply_sets(plan: &CapabilityPlan) -> Result<(), CapabilityError> {
    berth_sys::process::set_capabilities(
        mask(&plan.effective),
        mask(&plan.permitted),
        mask(&plan.inheritable),
    )
    .map_err(|source| CapabilityError::SetSets {
        effective: names(&plan.effective),
        permitted: names(&plan.permitted),
        inheritable: names(&plan.inheritable),
        source,
    })?;
    // capset has left in the ambient set only what is both permitted and inheritable now: when
    // all of that is to be raised anyway, there is nothing to clear.
    let raisable = plan.permitted.intersection(&plan.inheritable);
    if !raisable.into_iter().all(|c| plan.ambient.contains(c)) {
        caps::clear(None, CapSet::Ambient)
            .map_err(|source| CapabilityError::ClearAmbient { source })?;
    }
    let mut ambient: Vec<KernelCap> = plan.ambient.iter().copied().collect();
    ambient.sort_by_key(|c| c.index());
    for cap in ambient {
        caps::raise(None, CapSet::Ambient, cap)
            .map_err(|source| CapabilityError::RaiseAmbient { name: cap, source })?;
    }
    Ok(())
}

fn names(set: &CapsHashSet) -> String {
    let mut sorted: Vec<KernelCap> = set.iter().copied().collect();
    sorted.sort_by_key(|c| c.index());
    sorted
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The bit mask of a set, as /proc/<pid>/status prints it (CapEff: etc.).
pub fn mask(set: &CapsHashSet) -> u64 {
    set.iter().fold(0, |m, c| m | c.bitmask())
}

#[cfg(test)]
mod tests;
