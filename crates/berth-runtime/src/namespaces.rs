//! Namespace kinds: their names under /proc/PID/ns, their clone flags, and how the spec asks
//! for each (new, joined by path, or the runtime's own).

use std::path::PathBuf;

use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

/// The eight kinds, in the order they must be joined: user first (it grants the rights to join
/// the others), mount last among those that take effect at once (joining it changes path lookup).
pub const JOIN_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Mount,
];

/// The `CLONE_NEW*` flag of a kind.
pub fn clone_flag(kind: LinuxNamespaceType) -> i32 {
    use berth_sys::ns::*;
    match kind {
        LinuxNamespaceType::Mount => CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CLONE_NEWIPC,
        LinuxNamespaceType::User => CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CLONE_NEWPID,
        LinuxNamespaceType::Network => CLONE_NEWNET,
        LinuxNamespaceType::Time => CLONE_NEWTIME,
    }
}

/// The entry name under `/proc/PID/ns/`.
pub fn proc_name(kind: LinuxNamespaceType) -> &'static str {
    match kind {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// What the spec asks for one namespace kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsRequest {
    /// Not listed: the container shares the runtime's namespace.
    Host,
    /// Listed without a path: a new namespace.
    New,
    /// Listed with a path: join that namespace.
    Join(PathBuf),
}

/// The request for every kind, from `linux.namespaces`, in [`JOIN_ORDER`]. A kind listed twice
/// is an error, as the runtime spec requires.
pub fn requests(list: &[LinuxNamespace]) -> Result<Vec<(LinuxNamespaceType, NsRequest)>, String> {
    let mut out = Vec::with_capacity(JOIN_ORDER.len());
    for kind in JOIN_ORDER {
        let mut matching = list.iter().filter(|ns| ns.typ() == kind);
        let req = match matching.next() {
            None => NsRequest::Host,
            Some(ns) => match ns.path() {
                Some(p) if !p.as_os_str().is_empty() => NsRequest::Join(p.clone()),
                _ => NsRequest::New,
            },
        };
        if matching.next().is_some() {
            return Err(format!(
                "namespace {} is listed more than once",
                proc_name(kind)
            ));
        }
        out.push((kind, req));
    }
    Ok(out)
}
