//! The namespace report behind `berth ns`: for a container, each namespace kind's inode, the
//! host's, and whether the container's is private, the host's, or another container's.
//!
//! The host reference is berth's own namespaces (`/proc/self/ns/*`), not PID 1's: on some hosts
//! root without every capability cannot read `/proc/1/ns`. When berth runs on the host (the
//! normal case) its namespaces are the host's; run from inside a container, "host" means
//! "the namespaces berth itself runs in".

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;

use serde::Serialize;

use crate::engine::Engine;
use crate::error::Result;
use crate::records::{self, Record};

/// Every kind `/proc/<pid>/ns` shows, in the order the report prints them.
pub const KINDS: [&str; 10] = [
    "pid",
    "pid_for_children",
    "uts",
    "ipc",
    "mnt",
    "net",
    "user",
    "cgroup",
    "time",
    "time_for_children",
];

/// The kinds `lsns` lists: a process's own namespaces, not those of its future children.
pub const LSNS_KINDS: [&str; 8] = ["mnt", "net", "pid", "uts", "ipc", "user", "cgroup", "time"];

/// Namespace kind -> inode, for one process. A kind the kernel lacks is absent.
pub type Inodes = BTreeMap<&'static str, u64>;

/// Where a container's namespace of one kind comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "verdict", content = "with")]
pub enum Sharing {
    /// Its own: neither the host's nor another running container's.
    Private,
    /// The same as berth's own (the host's).
    Host,
    /// The same as these other containers' (by name).
    Shared(Vec<String>),
    /// The inode could not be read (the process is gone, or the kernel lacks the kind).
    Unknown,
}

impl fmt::Display for Sharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sharing::Private => f.write_str("private"),
            Sharing::Host => f.write_str("host"),
            Sharing::Shared(names) => write!(f, "shared with {}", names.join(", ")),
            Sharing::Unknown => f.write_str("unknown"),
        }
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub kind: &'static str,
    pub container: Option<u64>,
    pub host: Option<u64>,
    pub sharing: Sharing,
}

/// The inodes of `/proc/<pid>/ns/*` (`pid` None: this process's). stat(2) follows the
/// namespace link to the nsfs inode, the number `ls -l /proc/self/ns` prints.
pub fn inodes(pid: Option<i32>) -> Inodes {
    let dir = match pid {
        Some(p) => format!("/proc/{p}/ns"),
        None => "/proc/self/ns".to_string(),
    };
    KINDS
        .iter()
        .filter_map(|kind| {
            std::fs::metadata(format!("{dir}/{kind}"))
                .ok()
                .map(|m| (*kind, m.ino()))
        })
        .collect()
}

/// The verdict for one kind: the host's first, then other containers', else private.
pub fn verdict(kind: &str, mine: &Inodes, host: &Inodes, others: &[(String, Inodes)]) -> Sharing {
    let Some(ino) = mine.get(kind) else {
        return Sharing::Unknown;
    };
    if host.get(kind) == Some(ino) {
        return Sharing::Host;
    }
    let names: Vec<String> = others
        .iter()
        .filter(|(_, theirs)| theirs.get(kind) == Some(ino))
        .map(|(name, _)| name.clone())
        .collect();
    if names.is_empty() {
        Sharing::Private
    } else {
        Sharing::Shared(names)
    }
}

/// The rows for a container whose inodes are `mine`.
pub fn rows(mine: &Inodes, host: &Inodes, others: &[(String, Inodes)]) -> Vec<Row> {
    KINDS
        .iter()
        .map(|kind| Row {
            kind,
            container: mine.get(kind).copied(),
            host: host.get(kind).copied(),
            sharing: verdict(kind, mine, host, others),
        })
        .collect()
}

/// The init's host pid of a running container whose init is still the recorded process.
pub fn live_pid(record: &Record) -> Option<i32> {
    let st = &record.state;
    (st.status.is_live() && records::alive(st.pid, st.pid_start)).then_some(st.pid)
}

/// The report for `record` against every other running container of `engine`. A container
/// that is not running has no namespaces: every row says unknown.
pub fn report(engine: &Engine, record: &Record) -> Result<Vec<Row>> {
    let mine = live_pid(record)
        .map(|p| inodes(Some(p)))
        .unwrap_or_default();
    let others: Vec<(String, Inodes)> = engine
        .containers
        .all()?
        .records
        .iter()
        .filter(|r| r.id != record.id)
        .filter_map(|r| live_pid(r).map(|p| (r.name.clone(), inodes(Some(p)))))
        .collect();
    Ok(rows(&mine, &host(), &others))
}

/// The host's namespaces: berth's own, or for rootless berth those it was in before it joined
/// its user and mount namespaces.
pub fn host() -> Inodes {
    crate::rootless::outside()
        .cloned()
        .unwrap_or_else(|| inodes(None))
}

/// A container's id maps (`/proc/<pid>/uid_map`, `gid_map`), one `inside outside count` per
/// line, when its user namespace is not the host's: what a private one maps.
pub fn id_maps(record: &Record) -> Option<(String, String)> {
    let pid = live_pid(record)?;
    let read = |f: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{f}"))
            .ok()
            .map(|t| {
                t.lines()
                    .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
    };
    let user = inodes(Some(pid)).get("user").copied();
    (user != host().get("user").copied()).then(|| Some((read("uid_map")?, read("gid_map")?)))?
}

/// `ns CONTAINER`: the report of a running container, named as given.
pub fn container(engine: &Engine, key: &str) -> Result<(Record, Vec<Row>)> {
    let record = crate::lifecycle::refresh(engine, engine.containers.find(key)?)?;
    if live_pid(&record).is_none() {
        return Err(crate::error::Error::Invalid(format!(
            "container {key} is not running: it has no namespaces to show"
        )));
    }
    let rows = report(engine, &record)?;
    Ok((record, rows))
}

/// One namespace a running container's processes are in, as `lsns` lists it, with the
/// verdict against the host and the other containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InUse {
    pub kind: &'static str,
    pub inode: u64,
    /// Over the whole system: how many processes are in it, the lowest pid.
    pub usage: Usage,
    pub sharing: Sharing,
    /// The command line of that lowest pid.
    pub command: String,
}

/// `ns --all`: per running container, every namespace its processes are in.
pub fn all(engine: &Engine) -> Result<Vec<(Record, Vec<InUse>)>> {
    let running: Vec<(Record, Inodes)> = crate::lifecycle::list(engine)?
        .records
        .into_iter()
        .filter_map(|r| live_pid(&r).map(|pid| (r, inodes(Some(pid)))))
        .collect();
    let usage = system_usage();
    let host = host();
    let mut out = Vec::new();
    for (record, _) in &running {
        let others: Vec<(String, Inodes)> = running
            .iter()
            .filter(|(o, _)| o.id != record.id)
            .map(|(o, n)| (o.name.clone(), n.clone()))
            .collect();
        let pids = berth_runtime::container::pids(&engine.runtime, &record.id).unwrap_or_default();
        let mut seen: BTreeMap<(&'static str, u64), Sharing> = BTreeMap::new();
        for pid in std::iter::once(record.state.pid).chain(pids) {
            let mine = inodes(Some(pid));
            for kind in LSNS_KINDS {
                if let Some(ino) = mine.get(kind) {
                    seen.entry((kind, *ino))
                        .or_insert_with(|| verdict(kind, &mine, &host, &others));
                }
            }
        }
        let rows = seen
            .into_iter()
            .map(|((kind, inode), sharing)| {
                let usage = usage.get(&(kind, inode)).copied().unwrap_or_default();
                let command = crate::top::read_proc(usage.pid)
                    .map(|p| p.command())
                    .unwrap_or_default();
                InUse {
                    kind,
                    inode,
                    usage,
                    sharing,
                    command,
                }
            })
            .collect();
        out.push((record.clone(), rows));
    }
    Ok(out)
}

/// A namespace as `lsns` shows it: how many processes of the whole system are in it, and the
/// lowest of their pids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Usage {
    pub nprocs: u32,
    pub pid: i32,
}

/// (kind, inode) -> usage over every process in `/proc`, for the kinds `lsns` lists.
pub fn system_usage() -> BTreeMap<(&'static str, u64), Usage> {
    let mut pids: Vec<i32> = std::fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    pids.sort_unstable();
    let mut usage = BTreeMap::new();
    for pid in pids {
        count(&mut usage, pid, &inodes(Some(pid)));
    }
    usage
}

/// Adds one process with namespaces `ns` to `usage` (pids must come in ascending order).
pub fn count(usage: &mut BTreeMap<(&'static str, u64), Usage>, pid: i32, ns: &Inodes) {
    for kind in LSNS_KINDS {
        if let Some(ino) = ns.get(kind) {
            let u = usage
                .entry((kind, *ino))
                .or_insert(Usage { nprocs: 0, pid });
            u.nprocs += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(pairs: &[(&'static str, u64)]) -> Inodes {
        pairs.iter().copied().collect()
    }

    #[test]
    fn host_private_and_shared_verdicts() {
        let host = ns(&[("pid", 1), ("uts", 2), ("net", 3)]);
        let mine = ns(&[("pid", 1), ("uts", 20), ("net", 30)]);
        let others = vec![
            (
                "db".to_string(),
                ns(&[("pid", 1), ("uts", 21), ("net", 30)]),
            ),
            ("cache".to_string(), ns(&[("net", 30)])),
        ];
        assert_eq!(verdict("pid", &mine, &host, &others), Sharing::Host);
        assert_eq!(verdict("uts", &mine, &host, &others), Sharing::Private);
        assert_eq!(
            verdict("net", &mine, &host, &others),
            Sharing::Shared(vec!["db".into(), "cache".into()])
        );
        assert_eq!(verdict("time", &mine, &host, &others), Sharing::Unknown);
        assert_eq!(
            Sharing::Shared(vec!["db".into(), "cache".into()]).to_string(),
            "shared with db, cache"
        );
    }

    #[test]
    fn rows_cover_every_kind_in_order() {
        let host = ns(&[("pid", 1)]);
        let r = rows(&ns(&[("pid", 1)]), &host, &[]);
        assert_eq!(r.len(), KINDS.len());
        assert_eq!(r[0].kind, "pid");
        assert_eq!(r[0].container, Some(1));
        assert_eq!(r[9].kind, "time_for_children");
        assert_eq!(r[9].sharing, Sharing::Unknown);
    }

    #[test]
    fn this_process_is_in_the_host_namespaces_of_itself() {
        let me = inodes(None);
        assert!(me.contains_key("pid") && me.contains_key("mnt"), "{me:?}");
        assert!(rows(&me, &me, &[])
            .iter()
            .all(|r| r.sharing == Sharing::Host || r.container.is_none()));
    }

    #[test]
    fn usage_counts_processes_and_keeps_the_lowest_pid() {
        let mut usage = BTreeMap::new();
        count(&mut usage, 5, &ns(&[("pid", 1), ("pid_for_children", 1)]));
        count(&mut usage, 9, &ns(&[("pid", 1), ("net", 4)]));
        assert_eq!(usage[&("pid", 1)], Usage { nprocs: 2, pid: 5 });
        assert_eq!(usage[&("net", 4)], Usage { nprocs: 1, pid: 9 });
        assert!(!usage.contains_key(&("pid_for_children", 1)));
    }
}
