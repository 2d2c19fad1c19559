//! The container's mounts: Docker's defaults, /dev/shm for its IPC mode, the /etc files, then
//! `-v`/`--mount`/`--tmpfs` sorted by depth (moby `daemon/oci_linux.go` `WithMounts`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Mount;

use super::defaults::{self, mount};
use super::{EtcFiles, SpecError};
use crate::request::{IpcShm, MountRequest, NsMode, RunRequest};

const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

/// Every mount of the container, in the order the runtime performs them.
pub fn mounts(
    req: &RunRequest,
    etc: &EtcFiles,
    volumes: &BTreeMap<String, PathBuf>,
    joins: &BTreeMap<String, PathBuf>,
) -> Result<Vec<Mount>, SpecError> {
    let mut user = Vec::new();
    let mut targets = BTreeSet::new();
    for m in &req.mounts {
        let converted = user_mount(m, volumes)?;
        if !targets.insert(clean(&m.target)) {
            return Err(SpecError::invalid(
                format!("-v {}", m.target),
                "duplicate mount point; mount each path once",
            ));
        }
        user.push(converted);
    }
    let mut ordered = etc_mounts(req, etc, &targets);
    ordered.append(&mut user);
    ordered.sort_by_key(|m| m.destination().components().count());
    let mut all = default_mounts(req, joins, &targets)?;
    all.append(&mut ordered);
    Ok(all)
}

/// A path with `.` and trailing slashes removed, to compare destinations.
fn clean(path: &str) -> PathBuf {
    Path::new(path).components().collect()
}

/// Docker's defaults, /dev/shm for the IPC mode, minus what the user mounts over.
fn default_mounts(
    req: &RunRequest,
    joins: &BTreeMap<String, PathBuf>,
    user: &BTreeSet<PathBuf>,
) -> Result<Vec<Mount>, SpecError> {
    let mut list = defaults::mounts();
    list.extend(shm_mount(req, joins)?);
    let user_dev = user.contains(Path::new("/dev"));
    list.retain(|m| {
        let dest = m.destination();
        let under_user_dev = user_dev && dest.starts_with("/dev");
        !user.contains(dest) && !under_user_dev
    });
    for m in &mut list {
        let dest = m.destination().to_string_lossy().into_owned();
        let userns = req.userns == NsMode::Private;
        if (req.privileged && dest == "/sys")
            || ((req.privileged || userns) && dest == "/sys/fs/cgroup")
        {
            set_option(m, "ro", false);
        }
        if dest == "/sys" && userns && req.netns != NsMode::Private {
            // sysfs can only be mounted by the owner of the network namespace: bind the host's.
            *m = mount(
                "/sys",
                "bind",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            );
        }
        let keeps_rw = defaults::WRITABLE_UNDER_READ_ONLY.contains(&dest.as_str());
        if req.read_only && !keeps_rw {
            set_option(m, "ro", true);
        }
    }
    Ok(list)
}

fn set_option(m: &mut Mount, option: &str, on: bool) {
    let mut opts = m.options().clone().unwrap_or_default();
    opts.retain(|o| o != option);
    if on {
        opts.push(option.into());
    }
    m.set_options(Some(opts));
}

/// /dev/shm: a tmpfs of `--shm-size` for a private IPC namespace (none with `--ipc none`), the
/// host's for `--ipc host`, and the other container's (through its /proc root) for `--ipc
/// container:`. A shareable namespace's tmpfs is the engine's on the host (bundle.rs).
fn shm_mount(
    req: &RunRequest,
    joins: &BTreeMap<String, PathBuf>,
) -> Result<Option<Mount>, SpecError> {
    let bind = |source: &str| mount("/dev/shm", "bind", source, &["rbind", "rprivate"]);
    Ok(Some(match &req.ipc {
        NsMode::Private if req.ipc_shm == IpcShm::None => return Ok(None),
        NsMode::Private => {
            let size = format!("size={}", req.shm_size.unwrap_or(defaults::SHM_SIZE));
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", &size],
            )
        }
        NsMode::Host => bind("/dev/shm"),
        NsMode::Container(id) => {
            let ns = joins.get("ipc").ok_or_else(|| SpecError::MissingJoin {
                kind: "ipc".into(),
                container: id.clone(),
            })?;
            // /proc/<pid>/ns/ipc -> /proc/<pid>/root/dev/shm
            let proc_dir = ns.parent().and_then(Path::parent).unwrap_or(Path::new("/"));
            bind(&proc_dir.join("root/dev/shm").to_string_lossy())
        }
    }))
}

/// /etc/hosts, /etc/hostname and /etc/resolv.conf, unless the user mounts over them; read-only
/// with `--read-only`, like Docker.
fn etc_mounts(req: &RunRequest, etc: &EtcFiles, user: &BTreeSet<PathBuf>) -> Vec<Mount> {
    let files = [
        ("/etc/resolv.conf", &etc.resolv_conf),
        ("/etc/hostname", &etc.hostname),
        ("/etc/hosts", &etc.hosts),
    ];
    files
        .into_iter()
        .filter(|(dest, _)| !user.contains(Path::new(dest)))
        .map(|(dest, src)| {
            let mut opts = vec!["rbind", "rprivate"];
            if req.read_only {
                opts.push("ro");
            }
            mount(dest, "bind", &src.to_string_lossy(), &opts)
        })
        .collect()
}

/// One `-v`/`--mount`/`--tmpfs`.
fn user_mount(m: &MountRequest, volumes: &BTreeMap<String, PathBuf>) -> Result<Mount, SpecError> {
    let flag = match m.kind.as_str() {
        "tmpfs" => format!("--tmpfs {}", m.target),
        _ => format!("-v {}:{}", m.source, m.target),
    };
    let target = Path::new(&m.target);
    if !target.is_absolute() {
        return Err(SpecError::invalid(
            flag,
            "the mount point must be an absolute path",
        ));
    }
    if target.components().all(|c| c == Component::RootDir) {
        return Err(SpecError::invalid(flag, "the mount point can't be '/'"));
    }
    match m.kind.as_str() {
        "bind" => {
            if !Path::new(&m.source).is_absolute() {
                return Err(SpecError::invalid(flag, "the host path must be absolute"));
            }
            bind_mount(&flag, &m.source, m)
        }
        "volume" => {
            let dir = volumes.get(&m.source).ok_or_else(|| {
                SpecError::invalid(
                    &flag,
                    "the engine did not create this volume; this is a bug in berth",
                )
            })?;
            bind_mount(&flag, &dir.to_string_lossy(), m)
        }
        "tmpfs" => {
            tmpfs_options(&flag, &m.options)?;
            let mut opts = vec!["noexec".to_string(), "nosuid".into(), "nodev".into()];
            opts.extend(m.options.iter().filter(|o| !o.is_empty()).cloned());
            if m.read_only {
                opts.push("ro".into());
            }
            let mut t = mount(&m.target, "tmpfs", "tmpfs", &[]);
            t.set_options(Some(opts));
            Ok(t)
        }
        other => Err(SpecError::invalid(
            flag,
            format!("unknown mount type {other:?}; use bind, volume or tmpfs"),
        )),
    }
}

/// tmpfs's own options, checked as the kernel parses them (mm/shmem.c): a value it would refuse
/// with a bare EINVAL at start is refused here, by name, before the container exists.
fn tmpfs_options(flag: &str, options: &[String]) -> Result<(), SpecError> {
    let parsed = berth_runtime::rootfs::options::parse(options)
        .map_err(|reason| SpecError::invalid(flag, reason))?;
    for opt in &parsed.data {
        let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
        let number = |v: &str| {
            let digits = v.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G', 't', 'T', 'p', 'P']);
            v.len() - digits.len() <= 1
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
        };
        let why = match key {
            "size" if number(value.strip_suffix('%').unwrap_or(value)) => continue,
            "size" => "a number of bytes with an optional k, m or g suffix, or a share of memory such as 50%",
            "nr_blocks" | "nr_inodes" if number(value) => continue,
            "nr_blocks" | "nr_inodes" => "a number with an optional k, m or g suffix",
            "mode" if !value.is_empty() && value.bytes().all(|b| (b'0'..=b'7').contains(&b)) => {
                continue
            }
            "mode" => "an octal mode such as 1777",
            "uid" | "gid" if value.parse::<u32>().is_ok() => continue,
            "uid" | "gid" => "a numeric id",
            "huge" if ["never", "always", "within_size", "advise"].contains(&value) => continue,
            "huge" => "never, always, within_size or advise",
            "mpol" if !value.is_empty() => continue,
            _ => "tmpfs takes size, mode, uid, gid, nr_blocks, nr_inodes, huge and mpol",
        };
        return Err(SpecError::invalid(
            flag,
            format!("invalid tmpfs option {opt:?}: {why}"),
        ));
    }
    Ok(())
}

/// A recursive bind with its propagation (rprivate by default) and `ro`.
fn bind_mount(flag: &str, source: &str, m: &MountRequest) -> Result<Mount, SpecError> {
    let mut propagation = "rprivate";
    for o in &m.options {
        match o.as_str() {
            p if PROPAGATIONS.contains(&p) => propagation = p,
            "ro" | "readonly" | "rw" | "z" | "Z" | "nocopy" | "" => {}
            other => {
                return Err(SpecError::invalid(
                    flag,
                    format!(
                        "unknown option {other:?}; use ro, rw or a propagation such as rshared"
                    ),
                ))
            }
        }
    }
    let mut opts = vec!["rbind", propagation];
    if m.is_read_only() {
        opts.push("ro");
    }
    Ok(mount(&m.target, "bind", source, &opts))
}
