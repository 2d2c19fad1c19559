//! `spec` (a default config.json, as `runc spec` writes) and `features` (the runtime-spec
//! features document).

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Writes `<bundle>/config.json`; refuses to overwrite one, like runc.
pub fn write(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("File {} exists. Remove it first", path.display());
    }
    std::fs::write(&path, text(rootless)).with_context(|| format!("write {}", path.display()))
}

/// runc's `spec` output, byte for byte (runc 1.1's, as Debian ships it): tools and people
/// compare the two files, and a field of ours in it (a cgroup namespace, `devices: []`) would
/// make every bundle made from it differ from runc's. The rootless one maps the caller's ids.
fn text(rootless: bool) -> String {
    if !rootless {
        return RUNC_SPEC.to_string();
    }
    RUNC_SPEC_ROOTLESS
        .replace("HOST_UID", &nix::unistd::getuid().to_string())
        .replace("HOST_GID", &nix::unistd::getgid().to_string())
}

const RUNC_SPEC: &str = include_str!("runc-spec.json");
const RUNC_SPEC_ROOTLESS: &str = include_str!("runc-spec-rootless.json");

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
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync",
            "exec", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec",
            "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "private", "ratime",
            "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec", "rnoatime", "rnodev",
            "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow",
            "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime",
            "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave", "strictatime",
            "suid", "sync", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false, "rdma": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
                    "SCMP_ACT_TRAP"],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_specs_are_configs_that_parse() {
        for rootless in [false, true] {
            let spec: oci_spec::runtime::Spec =
                serde_json::from_str(&text(rootless)).expect("runc's spec parses");
            assert_eq!(spec.version(), "1.0.2-dev");
        }
        assert!(!text(true).contains("HOST_"));
    }
}
