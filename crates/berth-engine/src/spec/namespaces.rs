//! The container's namespaces (`--pid`, `--ipc`, `--uts`, `--userns`, `--cgroupns`, the
//! network's, `--timens`), the user namespace's id mappings, time offsets and the sysctls that
//! only make sense in a namespace of the container's own.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespace, LinuxNamespaceType, LinuxTimeOffset,
};

use super::SpecError;
use crate::request::{NsMode, RunRequest};
use crate::userns::IdMap;

/// The request's mode for each kind, in the order the runtime gets them, with the key of
/// `joins` for a container's namespace.
fn modes(req: &RunRequest) -> [(LinuxNamespaceType, &'static str, &NsMode); 7] {
    use LinuxNamespaceType as T;
    [
        (T::User, "user", &req.userns),
        (T::Pid, "pid", &req.pid),
        (T::Network, "network", &req.netns),
        (T::Ipc, "ipc", &req.ipc),
        (T::Uts, "uts", &req.uts),
        (T::Cgroup, "cgroup", &req.cgroupns),
        (T::Time, "time", &req.timens),
    ]
}

/// A new mount namespace always; for the others, a new one (Private), none (Host) or the path
/// the engine resolved for another container (`joins`).
pub fn namespaces(
    req: &RunRequest,
    joins: &BTreeMap<String, PathBuf>,
) -> Result<Vec<LinuxNamespace>, SpecError> {
    let mut list = vec![namespace(LinuxNamespaceType::Mount, None)];
    for (kind, key, mode) in modes(req) {
        match mode {
            NsMode::Host => {}
            NsMode::Private => list.push(namespace(kind, None)),
            NsMode::Container(id) => {
                let path = joins.get(key).ok_or_else(|| SpecError::MissingJoin {
                    kind: key.into(),
                    container: id.clone(),
                })?;
                list.push(namespace(kind, Some(path.clone())));
            }
        }
    }
    Ok(list)
}

fn namespace(kind: LinuxNamespaceType, path: Option<PathBuf>) -> LinuxNamespace {
    let mut ns = LinuxNamespace::default();
    ns.set_typ(kind).set_path(path);
    ns
}

/// The container's ids 0..size as the host ids of its range, for uids and gids alike. The
/// engine makes the root's files theirs (idmapped layers, `bundle::mount_overlay`).
pub fn id_mappings(map: &IdMap) -> Result<Vec<LinuxIdMapping>, SpecError> {
    let m = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(map.host_id)
        .size(map.size)
        .build()
        .map_err(|source| SpecError::Oci {
            what: "id mappings",
            source,
        })?;
    Ok(vec![m])
}

/// `--time-offset clock=SECS` for a private time namespace.
pub fn time_offsets(
    req: &RunRequest,
) -> Result<Option<HashMap<String, LinuxTimeOffset>>, SpecError> {
    if req.time_offsets.is_empty() {
        return Ok(None);
    }
    if req.timens != NsMode::Private {
        return Err(SpecError::invalid(
            "--time-offset",
            "needs a time namespace of the container's own; add --timens private",
        ));
    }
    let mut map = HashMap::new();
    for (clock, secs) in &req.time_offsets {
        if clock != "monotonic" && clock != "boottime" {
            return Err(SpecError::invalid(
                format!("--time-offset {clock}={secs}"),
                "unknown clock; use monotonic or boottime",
            ));
        }
        let mut off = LinuxTimeOffset::default();
        off.set_secs(Some(*secs)).set_nanosecs(Some(0));
        map.insert(clock.clone(), off);
    }
    Ok(Some(map))
}

/// Kernel sysctls of the IPC namespace (Docker's list).
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Which namespace a sysctl belongs to, if it is one a container may set.
fn sysctl_namespace(key: &str) -> Option<(&'static str, &'static str)> {
    if key.starts_with("net.") {
        Some(("network", "--network"))
    } else if IPC_SYSCTLS.contains(&key) || key.starts_with("fs.mqueue.") {
        Some(("IPC", "--ipc"))
    } else if key == "kernel.hostname" || key == "kernel.domainname" {
        Some(("UTS", "--uts"))
    } else {
        None
    }
}

/// `--sysctl` checked like Docker (only namespaced ones, each in a namespace of the
/// container's own), plus Docker's defaults for a private network namespace: unprivileged
/// ports from 0 and ICMP echo sockets for every group (of the user namespace `userns`, when
/// the container has one of its own).
pub fn sysctls(
    req: &RunRequest,
    userns: Option<&IdMap>,
) -> Result<HashMap<String, String>, SpecError> {
    let mut map = HashMap::new();
    if req.netns == NsMode::Private {
        map.insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
        // The range must map into the user namespace the sysctl is written from.
        let high = match userns {
            Some(map) => map.size.saturating_sub(1),
            None => crate::rootless::highest_gid().unwrap_or(i32::MAX as u32),
        };
        map.insert("net.ipv4.ping_group_range".into(), format!("0 {high}"));
    }
    for (key, value) in &req.sysctls {
        let err = |reason: String| SpecError::Sysctl {
            key: key.clone(),
            reason,
        };
        let (name, flag) = sysctl_namespace(key).ok_or_else(|| {
            err("not a namespaced sysctl a container may set (net.*, fs.mqueue.*, kernel.msg*/sem/shm*)".into())
        })?;
        let mode = match name {
            "network" => &req.netns,
            "IPC" => &req.ipc,
            _ => &req.uts,
        };
        if *mode != NsMode::Private {
            return Err(err(format!(
                "needs a {name} namespace of the container's own, but {flag} shares one; drop one of the two"
            )));
        }
        map.insert(key.clone(), value.clone());
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_absent_and_container_joins() {
        let req = RunRequest {
            pid: NsMode::Host,
            ipc: NsMode::Container("abc".into()),
            userns: NsMode::Host,
            timens: NsMode::Host,
            ..Default::default()
        };
        let joins = BTreeMap::from([("ipc".to_string(), PathBuf::from("/proc/7/ns/ipc"))]);
        let ns = namespaces(&req, &joins).unwrap();
        let kinds: Vec<_> = ns.iter().map(|n| n.typ()).collect();
        use LinuxNamespaceType as T;
        assert_eq!(kinds, vec![T::Mount, T::Network, T::Ipc, T::Uts, T::Cgroup]);
        assert_eq!(
            ns[2].path().as_deref(),
            Some(std::path::Path::new("/proc/7/ns/ipc"))
        );
        let e = namespaces(&req, &BTreeMap::new()).unwrap_err().to_string();
        assert!(e.contains("ipc namespace of container abc"), "{e}");
    }

    #[test]
    fn sysctls_need_their_namespace() {
        let mut req = RunRequest::default();
        let map = IdMap {
            host_id: 524_288,
            size: 1024,
            copied: false,
        };
        assert_eq!(
            sysctls(&req, Some(&map)).unwrap()["net.ipv4.ping_group_range"],
            "0 1023"
        );
        req.userns = NsMode::Host;
        req.sysctls
            .insert("net.core.somaxconn".into(), "1024".into());
        req.sysctls.insert("kernel.shmmax".into(), "1".into());
        let map = sysctls(&req, None).unwrap();
        assert_eq!(map["net.ipv4.ip_unprivileged_port_start"], "0");
        assert_eq!(map["net.ipv4.ping_group_range"], "0 2147483647");
        assert_eq!(map["kernel.shmmax"], "1");
        req.netns = NsMode::Host;
        let e = sysctls(&req, None).unwrap_err().to_string();
        assert!(
            e.starts_with("--sysctl net.core.somaxconn: needs a network namespace"),
            "{e}"
        );
        req.netns = NsMode::Private;
        req.ipc = NsMode::Host;
        assert!(sysctls(&req, None).is_err());
        req.ipc = NsMode::Private;
        req.sysctls.insert("vm.swappiness".into(), "1".into());
        assert!(sysctls(&req, None)
            .unwrap_err()
            .to_string()
            .contains("not a namespaced sysctl"));
    }

    #[test]
    fn time_offsets_need_a_time_namespace() {
        let mut req = RunRequest::default();
        req.time_offsets.insert("boottime".into(), 3600);
        let map = time_offsets(&req).unwrap().unwrap();
        assert_eq!(map["boottime"].secs(), Some(3600));
        req.timens = NsMode::Host;
        assert!(time_offsets(&req).is_err());
        req.timens = NsMode::Private;
        req.time_offsets.insert("realtime".into(), 1);
        assert!(time_offsets(&req).is_err());
    }
}
