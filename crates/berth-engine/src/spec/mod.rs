//! The container's OCI config.json, built from the image config and a `RunRequest` with
//! Docker's defaults. Pure: no syscalls beyond reading files inside the container's root and
//! stat-ing the host's devices.

mod defaults;
mod error;
mod etc;
mod mounts;
mod namespaces;
pub(crate) mod process;
mod resources;
pub(crate) mod security;
mod user;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capability, Linux, Process, Root, Spec, User};

pub use defaults::{CAPABILITIES, MASKED_PATHS, READONLY_PATHS};
pub use error::SpecError;
pub use etc::{extra_host, hosts_file, pick_host_resolv, resolv_conf};
pub use process::user as image_user;
pub use resources::{
    asks_host_knobs, discard_unsupported, limits as resource_limits, HostLimits, Knobs,
    BLKIO_WEIGHT_DISCARDED,
};
pub use security::profile as seccomp_profile;
pub use user::{
    host_group_id, host_user_name, resolve as resolve_user, resolve_from as resolve_user_from,
    ResolvedUser,
};

use crate::request::{NsMode, RunRequest};

/// The host files bind-mounted over the container's /etc/hosts, /etc/hostname and
/// /etc/resolv.conf (the engine writes them, e.g. with [`hosts_file`] and [`resolv_conf`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcFiles {
    pub hosts: PathBuf,
    pub hostname: PathBuf,
    pub resolv_conf: PathBuf,
}

/// Everything [`build`] needs; it reads nothing else but the root's /etc/passwd and
/// /etc/group, the host's bounding set, hostname, CPUs and `--device` nodes.
pub struct SpecInputs<'a> {
    /// The 64-hex container id; the default hostname is its first 12 digits.
    pub id: &'a str,
    pub request: &'a RunRequest,
    /// The image's config, as the store read it (its `config`: Env, Cmd, Entrypoint,
    /// WorkingDir, User, StopSignal).
    pub image_config: &'a oci_spec::image::ImageConfiguration,
    /// Absolute, already mounted: becomes root.path.
    pub rootfs: &'a Path,
    pub etc: &'a EtcFiles,
    /// "pid", "ipc", "uts", "user", "cgroup", "network", "time" -> /proc/<pid>/ns/<x>, for
    /// each namespace that is `NsMode::Container`.
    pub joins: &'a BTreeMap<String, PathBuf>,
    /// Volume name -> host directory, for every `volume` mount of the request.
    pub volumes: &'a BTreeMap<String, PathBuf>,
    pub cgroups_path: &'a str,
    /// The caller's hard rlimits, which cap the defaults and bound `--ulimit`.
    pub host_rlimits: &'a HostLimits,
    /// The host ids of the container's user namespace, its own or the one it joins
    /// (`userns::of`); `None` in the host's.
    pub userns: Option<crate::userns::IdMap>,
}

/// The built spec and what the engine records beside it.
#[derive(Debug, Clone)]
pub struct Built {
    pub spec: Spec,
    /// `--stop-signal`, else the image's StopSignal, else "SIGTERM".
    pub stop_signal: String,
    pub user: ResolvedUser,
    pub hostname: String,
}

/// Annotation telling the runtime to run its reaper as PID 1 (`--init`).
pub const INIT_ANNOTATION: &str = berth_runtime::process::reaper::ANNOTATION;

/// Builds the container's config.json. Every error names the flag at fault.
pub fn build(inputs: &SpecInputs) -> Result<Built, SpecError> {
    let req = inputs.request;
    let image = inputs.image_config.config().as_ref();
    let hostname = hostname(req, inputs.id)?;
    let user_spec = req.user.as_deref().or(process::user(image)).unwrap_or("");
    let user = user::resolve(inputs.rootfs, user_spec, &req.group_add)?;
    let bounding = security::bounding(req, &security::host_capabilities())?;
    let process = oci_process(inputs, image, &hostname, &user, &bounding)?;
    let mut spec = Spec::default();
    spec.set_process(Some(process))
        .set_root(Some(root(inputs.rootfs, req.read_only)))
        .set_hostname((req.uts == NsMode::Private).then(|| hostname.clone()))
        .set_domainname(domainname(req)?)
        .set_mounts(Some(crate::rootless::fit_mounts(mounts::mounts(
            req,
            inputs.etc,
            inputs.volumes,
            inputs.joins,
        )?)))
        .set_annotations(Some(annotations(req)?))
        .set_linux(Some(linux(inputs, &bounding)?))
        .set_hooks(None);
    let stop_signal = process::stop_signal(image, req).unwrap_or_else(|| "SIGTERM".into());
    Ok(Built {
        spec,
        stop_signal,
        user,
        hostname,
    })
}

/// `-h`, else the host's name when sharing the host's UTS or network namespace (as Docker
/// does for `--network host`), else the id's first 12 digits.
fn hostname(req: &RunRequest, id: &str) -> Result<String, SpecError> {
    if let Some(h) = req.hostname.as_deref().filter(|h| !h.is_empty()) {
        if req.uts != NsMode::Private {
            return Err(SpecError::invalid(
                format!("-h {h}"),
                "conflicts with --uts: a shared UTS namespace keeps its hostname; drop one of the two",
            ));
        }
        if h.len() > 64 || h.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(SpecError::invalid(
                format!("-h {h}"),
                "not a valid hostname (at most 64 characters, no spaces or slashes)",
            ));
        }
        return Ok(h.into());
    }
    if req.uts == NsMode::Host || req.netns == NsMode::Host {
        if let Ok(h) = nix::unistd::gethostname() {
            return Ok(h.to_string_lossy().into_owned());
        }
    }
    Ok(id.get(..12).unwrap_or(id).to_string())
}

/// `--domainname`, which only a UTS namespace of the container's own may take: in the host's
/// it would rename the host.
fn domainname(req: &RunRequest) -> Result<Option<String>, SpecError> {
    match req.domainname.as_deref().filter(|d| !d.is_empty()) {
        Some(d) if req.uts != NsMode::Private => Err(SpecError::invalid(
            format!("--domainname {d}"),
            "conflicts with --uts: a shared UTS namespace keeps its domain name; drop one of the two",
        )),
        other => Ok(other.map(String::from)),
    }
}

fn root(rootfs: &Path, read_only: bool) -> Root {
    let mut root = Root::default();
    root.set_path(rootfs.to_path_buf())
        .set_readonly(Some(read_only));
    root
}

/// The user's `--annotation`s, and berth's own (`io.berth.*`, which tell the runtime what to
/// do, so not the user's to set).
fn annotations(req: &RunRequest) -> Result<HashMap<String, String>, SpecError> {
    if let Some(key) = req.annotations.keys().find(|k| k.starts_with("io.berth.")) {
        return Err(SpecError::invalid(
            format!("--annotation {key}"),
            "the io.berth. prefix is berth's own; use another name",
        ));
    }
    let mut map: HashMap<String, String> = req.annotations.clone().into_iter().collect();
    if req.init {
        map.insert(INIT_ANNOTATION.to_string(), "true".to_string());
    }
    Ok(map)
}

fn oci_process(
    inputs: &SpecInputs,
    image: Option<&oci_spec::image::Config>,
    hostname: &str,
    user: &ResolvedUser,
    bounding: &[Capability],
) -> Result<Process, SpecError> {
    let req = inputs.request;
    let mut oci_user = User::default();
    oci_user
        .set_uid(user.uid)
        .set_gid(user.gid)
        .set_additional_gids((!user.gids.is_empty()).then(|| user.gids.clone()));
    let mut p = Process::default();
    p.set_terminal(Some(req.tty))
        .set_console_size(None)
        .set_user(oci_user)
        .set_args(Some(process::args(image, req)?))
        .set_env(Some(process::env(image, req, hostname, &user.home)))
        .set_cwd(process::cwd(image, req)?)
        .set_capabilities(Some(security::capabilities(bounding, user.uid)))
        .set_rlimits(Some(resources::rlimits(req, inputs.host_rlimits)?))
        .set_no_new_privileges(Some(req.no_new_privileges))
        .set_oom_score_adj(req.oom_score_adj);
    Ok(p)
}

fn linux(inputs: &SpecInputs, bounding: &[Capability]) -> Result<Linux, SpecError> {
    let req = inputs.request;
    let mut devices = if req.privileged {
        resources::host_devices()
    } else {
        Vec::new()
    };
    let mut rules = resources::base_device_rules(req.privileged);
    for d in &req.devices {
        let (node, rule) = resources::device(d)?;
        devices.retain(|x| x.path() != node.path());
        devices.push(node);
        rules.push(rule);
    }
    for rule in &req.device_cgroup_rules {
        rules.push(resources::device_cgroup_rule(rule)?);
    }
    let (masked, readonly) = match req.privileged {
        true => (None, None),
        false => (Some(strings(&MASKED_PATHS)), Some(strings(&READONLY_PATHS))),
    };
    let userns = match req.userns {
        NsMode::Private => Some(inputs.userns.ok_or_else(|| {
            SpecError::invalid("--userns", "no id range was given to the container")
        })?),
        // Joined: the other container's, for the sysctls; the namespace has its maps.
        NsMode::Container(_) => inputs.userns,
        NsMode::Host => None,
    };
    let maps = match req.userns {
        NsMode::Private => userns.as_ref().map(namespaces::id_mappings).transpose()?,
        _ => None,
    };
    let mut linux = Linux::default();
    linux
        .set_namespaces(Some(namespaces::namespaces(req, inputs.joins)?))
        .set_uid_mappings(maps.clone())
        .set_gid_mappings(maps)
        .set_time_offsets(namespaces::time_offsets(req)?)
        .set_sysctl(Some(namespaces::sysctls(req, userns.as_ref())?))
        .set_resources(resources(req, rules)?)
        .set_cgroups_path(Some(inputs.cgroups_path.into()))
        .set_devices(Some(devices))
        .set_seccomp(security::seccomp(req, bounding)?)
        .set_rootfs_propagation(root_propagation(req))
        .set_masked_paths(masked)
        .set_readonly_paths(readonly)
        .set_mount_label(None)
        .set_intel_rdt(None)
        .set_personality(None);
    Ok(linux)
}

/// The container's cgroup limits and device rules; none for a rootless container that can have
/// no cgroup (create warned that its limits are ignored).
fn resources(
    req: &RunRequest,
    rules: Vec<oci_spec::runtime::LinuxDeviceCgroup>,
) -> Result<Option<oci_spec::runtime::LinuxResources>, SpecError> {
    let resources = resources::resources(req, rules)?;
    Ok((!crate::rootless::without_cgroups()).then_some(resources))
}

/// A shared or slave bind needs the root to propagate too (moby sets rshared or rslave).
fn root_propagation(req: &RunRequest) -> Option<String> {
    let opts = || {
        req.mounts
            .iter()
            .flat_map(|m| m.options.iter().map(String::as_str))
    };
    if opts().any(|o| o == "shared" || o == "rshared") {
        Some("rshared".into())
    } else if opts().any(|o| o == "slave" || o == "rslave") {
        Some("rslave".into())
    } else {
        None
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The monitor hands the runtime the spec it built rather than config.json read back:
    /// both must be the same spec, whatever serde's defaults fill in on reading.
    #[test]
    fn the_built_spec_is_what_config_json_reads_back() {
        let root = std::env::temp_dir().join(format!("berth-spec-rt-{}", std::process::id()));
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let etc = EtcFiles {
            hosts: root.join("hosts"),
            hostname: root.join("hostname"),
            resolv_conf: root.join("resolv.conf"),
        };
        let mut request = RunRequest {
            image: "busybox".into(),
            cmd: vec!["true".into()],
            // The host's user namespace, as Docker's default (no remapping).
            userns: NsMode::Host,
            ..Default::default()
        };
        for tty in [false, true] {
            request.tty = tty;
            let built = build(&SpecInputs {
                id: &"a".repeat(64),
                request: &request,
                image_config: &oci_spec::image::ImageConfiguration::default(),
                rootfs: &root,
                etc: &etc,
                joins: &BTreeMap::new(),
                volumes: &BTreeMap::new(),
                cgroups_path: "/berth/x",
                host_rlimits: &HostLimits::default(),
                userns: None,
            })
            .unwrap();
            let json = serde_json::to_vec_pretty(&built.spec).unwrap();
            let read: Spec = serde_json::from_slice(&json).unwrap();
            assert_eq!(read, built.spec);
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
