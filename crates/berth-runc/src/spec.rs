//! `spec` (a default config.json, as `runc spec` writes) and `features` (the runtime-spec
//! features document).

use std::path::Path;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxIdMappingBuilder, LinuxNamespaceType, Mount, Spec};

/// Writes `<bundle>/config.json`; refuses to overwrite one, like runc.
pub fn write(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    let spec = default_spec(rootless)?;
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))
}

/// oci-spec's default, which is runc's but for a terminal (runc's spec is for an interactive
/// `sh`) and the hostname (oci-spec's is youki's).
fn default_spec(rootless: bool) -> Result<Spec> {
    let mut spec = Spec::default();
    spec.set_hostname(Some("berth".into()));
    if let Some(process) = spec.process_mut() {
        process.set_terminal(Some(true));
    }
    if !rootless {
        return Ok(spec);
    }
    let mut linux = spec.linux().clone().unwrap_or_default();
    let mut namespaces: Vec<_> = linux
        .namespaces()
        .clone()
        .unwrap_or_default()
        .into_iter()
        // runc's rootless spec: the host's network, and its cgroup namespace.
        .filter(|ns| {
            !matches!(
                ns.typ(),
                LinuxNamespaceType::Network | LinuxNamespaceType::Cgroup
            )
        })
        .collect();
    let mut user_ns = oci_spec::runtime::LinuxNamespace::default();
    user_ns.set_typ(LinuxNamespaceType::User);
    namespaces.push(user_ns);
    linux.set_namespaces(Some(namespaces));
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    linux.set_uid_mappings(Some(vec![LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(uid)
        .size(1u32)
        .build()?]));
    linux.set_gid_mappings(Some(vec![LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(gid)
        .size(1u32)
        .build()?]));
    linux.set_resources(None);
    spec.set_linux(Some(linux));
    // Without a network namespace of its own, sysfs must be the host's, bound; and devpts or
    // mqueue may not take a gid= the user namespace does not map.
    let mounts: Vec<Mount> = spec
        .mounts()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|mut m| {
            if m.destination() == Path::new("/sys") {
                m.set_typ(Some("none".into()));
                m.set_source(Some("/sys".into()));
                m.set_options(Some(vec![
                    "rbind".into(),
                    "nosuid".into(),
                    "noexec".into(),
                    "nodev".into(),
                    "ro".into(),
                ]));
            }
            let opts: Vec<String> = m
                .options()
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|o| !o.starts_with("gid="))
                .collect();
            m.set_options(Some(opts));
            m
        })
        .collect();
    spec.set_mounts(Some(mounts));
    Ok(spec)
}

/// What this runtime supports, in the runtime-spec's features.md format.
pub fn features() -> serde_json::Value {
    // By number, as runc lists them (caps::all is a hash set).
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    let caps: Vec<String> = all.iter().map(|c| c.to_string()).collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
            "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "nolazytime",
            "nomand", "norelatime", "nostrictatime", "nosuid", "private", "rbind", "relatime",
            "remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared",
            "silent", "slave", "strictatime", "suid", "sync", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
            },
            "apparmor": {"enabled": true},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": false}}
        },
        "annotations": {
            "org.opencontainers.runc.version": env!("CARGO_PKG_VERSION"),
            "io.github.berth.runtime": "berth-runc"
        }
    })
}
