//! The pure plan: a validated `Spec` turned into everything the init process will do, decided
//! before any fork so that bad configs fail early, in the parent, with a clear message.

use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceType, LinuxIdMapping, LinuxNamespaceType, PosixRlimitType, Process,
    Spec,
};

use crate::namespaces::{self, NsRequest};
use crate::rootfs::options::{self, MountOptions};

/// One mount of the spec, with its options parsed.
#[derive(Debug, Clone)]
pub struct MountPlan {
    pub destination: PathBuf,
    pub fstype: String,
    pub source: Option<PathBuf>,
    pub options: MountOptions,
}

impl MountPlan {
    /// A bind mount, by its options or its type, as runc takes either.
    pub fn is_bind(&self) -> bool {
        self.options.is_bind() || self.fstype == "bind"
    }
}

/// The process to execute, shared by create and exec.
#[derive(Debug, Clone)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub terminal: bool,
    pub no_new_privileges: bool,
    pub rlimits: Vec<(nix::sys::resource::Resource, u64, u64)>,
    pub oom_score_adj: Option<i32>,
    pub apparmor_profile: Option<String>,
    /// The host has AppArmor enabled, so the profile is applied: read in the parent, since
    /// the init's /sys is the container's by the time it applies it (only when there is a
    /// profile: false without one).
    pub apparmor_enabled: bool,
    pub capabilities: crate::capabilities::CapabilityPlan,
    pub seccomp: Option<crate::seccomp::SeccompProgram>,
    /// The filter (if any) lets `execveat` through: the exec trampoline may be used
    /// (protect.rs).
    pub seccomp_allows_execveat: bool,
    /// process.ioPriority: the I/O class and level (sched.rs).
    pub io_priority: Option<(u32, u32)>,
    /// process.scheduler (sched.rs).
    pub scheduler: Option<crate::sched::SchedAttr>,
    /// The signals the runtime ignores, which the process inherits and must not keep (a mask,
    /// bit n-1 for signal n): read with the bounding set from the runtime's
    /// /proc/self/status, the host's (the container's /proc, if any, cannot be trusted to say
    /// what its process ignores); every signal where it cannot be read.
    pub ignored_signals: u64,
}

/// Everything the container's init does, in data.
#[derive(Debug, Clone)]
pub struct InitPlan {
    pub namespaces: Vec<(LinuxNamespaceType, NsRequest)>,
    pub uid_mappings: Vec<LinuxIdMapping>,
    pub gid_mappings: Vec<LinuxIdMapping>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub rootfs: PathBuf,
    pub readonly_root: bool,
    pub root_propagation: MsFlags,
    pub mounts: Vec<MountPlan>,
    pub devices: Vec<LinuxDevice>,
    pub masked_paths: Vec<PathBuf>,
    pub readonly_paths: Vec<PathBuf>,
    pub sysctl: Vec<(String, String)>,
    pub time_offsets: Vec<(String, i64, u32)>,
    pub process: ProcessPlan,
    /// Annotation `io.berth.init=true`: the init stays PID 1 as a reaper (process/reaper.rs).
    pub reaper: bool,
}

impl InitPlan {
    pub fn request(&self, kind: LinuxNamespaceType) -> &NsRequest {
        self.namespaces
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, r)| r)
            .unwrap_or(&NsRequest::Host)
    }

    pub fn creates(&self, kind: LinuxNamespaceType) -> bool {
        *self.request(kind) == NsRequest::New
    }

    /// True when the init makes a new pid namespace itself, after entering the container's
    /// user namespace (new or joined), so that namespace owns it (and /proc can be mounted).
    pub fn pid_ns_in_init(&self) -> bool {
        self.in_user_ns() && self.creates(LinuxNamespaceType::Pid)
    }

    /// True when the container runs in a user namespace other than the runtime's (new or
    /// joined): there, devices cannot be made with mknod and are bind-mounted instead.
    pub fn in_user_ns(&self) -> bool {
        *self.request(LinuxNamespaceType::User) != NsRequest::Host
    }

    /// True when the container gets a mount namespace of its own (new or joined).
    pub fn has_mount_ns(&self) -> bool {
        *self.request(LinuxNamespaceType::Mount) != NsRequest::Host
    }
}

/// The devices every container gets (runtime spec "Default Devices").
pub fn default_devices() -> Vec<LinuxDevice> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(name, major, minor)| {
        let mut d = LinuxDevice::default();
        d.set_path(PathBuf::from("/dev").join(name))
            .set_typ(LinuxDeviceType::C)
            .set_major(major)
            .set_minor(minor)
            .set_file_mode(Some(0o666))
            .set_uid(Some(0))
            .set_gid(Some(0));
        d
    })
    .collect()
}

/// Builds the plan for `spec` in `bundle`. Every error is a sentence saying what to fix.
pub fn plan(spec: &Spec, bundle: &Path) -> Result<InitPlan, String> {
    let root = spec
        .root()
        .as_ref()
        .ok_or("config.json has no \"root\": set root.path to the container's root filesystem")?;
    let rootfs = resolve_rootfs(root.path(), bundle)?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or("config.json has no \"linux\" section: berth runs Linux containers only")?;
    let namespaces = namespaces::requests(linux.namespaces().as_deref().unwrap_or(&[]))?;
    let has = |k| {
        namespaces
            .iter()
            .any(|(kind, r)| *kind == k && *r != NsRequest::Host)
    };
    let creates = |k| {
        namespaces
            .iter()
            .any(|(kind, r)| *kind == k && *r == NsRequest::New)
    };

    let uid_mappings = linux.uid_mappings().clone().unwrap_or_default();
    let gid_mappings = linux.gid_mappings().clone().unwrap_or_default();
    if creates(LinuxNamespaceType::User) && (uid_mappings.is_empty() || gid_mappings.is_empty()) {
        return Err("a new user namespace needs linux.uidMappings and linux.gidMappings".into());
    }
    if creates(LinuxNamespaceType::User)
        && namespaces
            .iter()
            .any(|(k, r)| *k != LinuxNamespaceType::User && matches!(r, NsRequest::Join(_)))
    {
        return Err(
            "joining a namespace by path together with a new user namespace is not \
                    supported yet: join the user namespace too, or create the others"
                .into(),
        );
    }
    if spec.hostname().is_some() && !has(LinuxNamespaceType::Uts) {
        return Err("hostname is set but the container has no UTS namespace: add {\"type\": \"uts\"} to linux.namespaces".into());
    }
    if !has(LinuxNamespaceType::Mount) {
        check_host_mount_namespace(linux, root)?;
    }
    let time_offsets: Vec<(String, i64, u32)> = linux
        .time_offsets()
        .iter()
        .flatten()
        .map(|(clock, off)| {
            (
                clock.clone(),
                off.secs().unwrap_or(0),
                off.nanosecs().unwrap_or(0),
            )
        })
        .collect();
    if !time_offsets.is_empty() && !creates(LinuxNamespaceType::Time) {
        return Err("linux.timeOffsets needs a new time namespace: add {\"type\": \"time\"} to linux.namespaces".into());
    }
    for (clock, _, _) in &time_offsets {
        if clock != "monotonic" && clock != "boottime" {
            return Err(format!(
                "linux.timeOffsets: unknown clock {clock:?} (use monotonic or boottime)"
            ));
        }
    }

    let mut mounts = Vec::new();
    for m in spec.mounts().iter().flatten() {
        if !m.destination().is_absolute() {
            return Err(format!(
                "mount destination {:?} must be an absolute path",
                m.destination()
            ));
        }
        let options = options::parse(m.options().as_deref().unwrap_or(&[]))
            .map_err(|e| format!("mount {}: {e}", m.destination().display()))?;
        let fstype = m.typ().clone().unwrap_or_else(|| {
            if options.is_bind() {
                "bind".into()
            } else {
                "none".into()
            }
        });
        crate::rootfs::procfs::check_destination(
            m.destination(),
            &fstype,
            options.is_bind() || fstype == "bind",
        )?;
        mounts.push(MountPlan {
            destination: m.destination().clone(),
            source: m.source().as_ref().map(|s| {
                if s.is_absolute() || !(options.is_bind() || fstype == "bind") {
                    s.clone()
                } else {
                    bundle.join(s)
                }
            }),
            fstype,
            options,
        });
    }
    let root_propagation = match linux.rootfs_propagation().as_deref() {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some(p) => options::propagation(p).ok_or_else(|| format!("linux.rootfsPropagation {p:?} is not a propagation mode (use private, slave, shared or their r- forms)"))?,
    };

    let mut devices = default_devices();
    for d in linux.devices().iter().flatten() {
        if !d.path().starts_with("/dev") {
            return Err(format!("device {} must be under /dev", d.path().display()));
        }
        devices.retain(|x| x.path() != d.path());
        devices.push(d.clone());
    }
    let mut sysctl: Vec<(String, String)> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    sysctl.sort();
    for (key, _) in &sysctl {
        if key.is_empty() || key.contains("..") || key.starts_with('/') {
            return Err(format!("sysctl {key:?} is not a valid name"));
        }
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or("config.json has no \"process\": say what to run in process.args")?;
    Ok(InitPlan {
        namespaces,
        uid_mappings,
        gid_mappings,
        hostname: spec.hostname().clone(),
        domainname: spec.domainname().clone(),
        rootfs,
        readonly_root: root.readonly().unwrap_or(false),
        root_propagation,
        mounts,
        devices,
        masked_paths: linux
            .masked_paths()
            .iter()
            .flatten()
            .map(PathBuf::from)
            .collect(),
        readonly_paths: linux
            .readonly_paths()
            .iter()
            .flatten()
            .map(PathBuf::from)
            .collect(),
        sysctl,
        time_offsets,
        process: process_plan(process, linux.seccomp().as_ref())?,
        reaper: spec
            .annotations()
            .as_ref()
            .and_then(|a| a.get(crate::process::reaper::ANNOTATION))
            .is_some_and(|v| v == "true"),
    })
}

/// A container without a mount namespace of its own runs in the host's, chrooted into its
/// root, as under runc: what only a namespace of its own can give is refused, masked and
/// read-only paths in runc's words. A read-only root, which runc ignores there, is refused
/// too: the only mount to make read-only would be the host's.
fn check_host_mount_namespace(
    linux: &oci_spec::runtime::Linux,
    root: &oci_spec::runtime::Root,
) -> Result<(), String> {
    let some = |p: &Option<Vec<String>>| p.as_ref().is_some_and(|p| !p.is_empty());
    if some(linux.masked_paths()) || some(linux.readonly_paths()) {
        return Err(concat!(
            "unable to restrict sys entries without a private MNT namespace: add ",
            "{\"type\": \"mount\"} to linux.namespaces, or drop linux.maskedPaths and ",
            "linux.readonlyPaths"
        )
        .into());
    }
    if root.readonly() == Some(true) {
        return Err(concat!(
            "unable to make the root filesystem read-only without a private MNT namespace: ",
            "add {\"type\": \"mount\"} to linux.namespaces, or set root.readonly to false"
        )
        .into());
    }
    Ok(())
}

/// The root filesystem path: relative paths are taken inside the bundle and may not leave it.
/// As runc validates it, the path must be the directory itself: one that goes through a
/// symbolic link (the rootfs, or a directory above it) is refused in runc's words.
fn resolve_rootfs(path: &Path, bundle: &Path) -> Result<PathBuf, String> {
    let full = if path.is_absolute() {
        path.to_path_buf()
    } else {
        if path
            .components()
            .any(|c| c == std::path::Component::ParentDir)
        {
            return Err(format!(
                "root.path {:?} leaves the bundle: give a path inside it or an absolute path",
                path
            ));
        }
        bundle.join(path)
    };
    let meta =
        std::fs::metadata(&full).map_err(|e| format!("root filesystem {}: {e}", full.display()))?;
    if !meta.is_dir() {
        return Err(format!(
            "root filesystem {} is not a directory",
            full.display()
        ));
    }
    let real = std::fs::canonicalize(&full)
        .map_err(|e| format!("root filesystem {}: {e}", full.display()))?;
    if real != crate::rootfs::procfs::clean(&full) {
        return Err(format!(
            "invalid rootfs: not an absolute path, or a symlink: {} resolves to {}; give \
             root.path as the real directory",
            full.display(),
            real.display()
        ));
    }
    Ok(real)
}

/// The process part of the plan, shared by create and exec.
pub fn process_plan(
    process: &Process,
    seccomp: Option<&oci_spec::runtime::LinuxSeccomp>,
) -> Result<ProcessPlan, String> {
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() || args[0].is_empty() {
        return Err("process.args is empty: say what to run".into());
    }
    if !process.cwd().is_absolute() {
        return Err(format!(
            "process.cwd {:?} must be an absolute path",
            process.cwd()
        ));
    }
    let mut rlimits = Vec::new();
    for r in process.rlimits().iter().flatten() {
        if r.soft() > r.hard() {
            return Err(format!(
                "rlimit {:?}: soft limit {} is above the hard limit {}",
                r.typ(),
                r.soft(),
                r.hard()
            ));
        }
        rlimits.push((rlimit_resource(r.typ()), r.soft(), r.hard()));
    }
    let user = process.user();
    let apparmor_profile = process.apparmor_profile().clone().filter(|p| !p.is_empty());
    // One read of the runtime's own status for the bounding set and the ignored signals.
    let status = berth_sys::file::read_to_string("/proc/self/status").ok();
    let capabilities =
        crate::capabilities::plan(process.capabilities().as_ref(), status.as_deref())
            .map_err(|e| e.to_string())?;
    let ignored_signals = status
        .as_deref()
        .and_then(|s| berth_sys::process::status_mask(s, "SigIgn:"))
        .unwrap_or(u64::MAX);
    let seccomp_allows_execveat =
        seccomp.is_none_or(|s| crate::seccomp::allows_unconditionally(s, "execveat"));
    let seccomp = seccomp
        .map(crate::seccomp::compile_cached)
        .transpose()
        .map_err(|e| e.to_string())?;
    let io_priority = process
        .io_priority()
        .as_ref()
        .map(crate::sched::io_priority)
        .transpose()?;
    let scheduler = process
        .scheduler()
        .as_ref()
        .map(crate::sched::scheduler)
        .transpose()?;
    Ok(ProcessPlan {
        args,
        env: process.env().clone().unwrap_or_default(),
        cwd: process.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: unique(user.additional_gids().as_deref().unwrap_or_default()),
        umask: user.umask(),
        terminal: process.terminal().unwrap_or(false),
        no_new_privileges: process.no_new_privileges().unwrap_or(false),
        rlimits,
        oom_score_adj: process.oom_score_adj(),
        apparmor_enabled: apparmor_profile.is_some() && apparmor_enabled(),
        apparmor_profile,
        capabilities,
        seccomp,
        seccomp_allows_execveat,
        io_priority,
        scheduler,
        ignored_signals,
    })
}

/// Each group once, in the order given: runc takes additionalGids as a set (a group listed
/// twice is one group), where setgroups(2) would keep both.
fn unique(gids: &[u32]) -> Vec<u32> {
    let mut out: Vec<u32> = Vec::with_capacity(gids.len());
    for &gid in gids {
        if !out.contains(&gid) {
            out.push(gid);
        }
    }
    out
}

fn apparmor_enabled() -> bool {
    berth_sys::file::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

fn rlimit_resource(t: PosixRlimitType) -> nix::sys::resource::Resource {
    use nix::sys::resource::Resource as R;
    match t {
        PosixRlimitType::RlimitCpu => R::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => R::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => R::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => R::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => R::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => R::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => R::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => R::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => R::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => R::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => R::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => R::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => R::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => R::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => R::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => R::RLIMIT_RTTIME,
    }
}

/// The cgroup device rules: the spec's own, then what every container needs (runc's
/// AllowedDevices: mknod of anything, the default devices, ptys, tun). Later rules win, so the
/// spec's "deny all" comes first. The devices the spec creates (`linux.devices`) add nothing:
/// a node made in /dev is usable only if `resources.devices` allows it, as under runc.
pub fn device_rules(
    resources: Option<&oci_spec::runtime::LinuxResources>,
) -> Vec<oci_spec::runtime::LinuxDeviceCgroup> {
    use oci_spec::runtime::LinuxDeviceCgroup;
    let rule = |typ: LinuxDeviceType, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true)
            .set_typ(Some(typ))
            .set_major(major)
            .set_minor(minor)
            .set_access(Some(access.to_string()));
        r
    };
    let mut rules: Vec<LinuxDeviceCgroup> = resources
        .and_then(|r| r.devices().clone())
        .unwrap_or_default();
    rules.push(rule(LinuxDeviceType::C, None, None, "m"));
    rules.push(rule(LinuxDeviceType::B, None, None, "m"));
    for (major, minor) in [
        (1, Some(3)),
        (1, Some(5)),
        (1, Some(7)),
        (1, Some(8)),
        (1, Some(9)),
        (5, Some(0)),
        (5, Some(1)),
        (5, Some(2)),
        (136, None),
        (10, Some(200)),
    ] {
        rules.push(rule(LinuxDeviceType::C, Some(major), minor, "rwm"));
    }
    rules
}
