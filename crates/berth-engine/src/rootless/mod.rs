//! Rootless berth: berth run by an ordinary user works as root of a user namespace (and a
//! mount namespace of its own) that a small pause process holds for every berth process of
//! that user, as podman's rootless mode does (`podman unshare`, its pause process). Root is the
//! user; ids 1.. are the user's ranges in `/etc/subuid` and `/etc/subgid`, mapped by
//! newuidmap/newgidmap; with no ranges, root alone (a warning says what that limits).
//!
//! [`enter`] runs first in main, while the process has one thread (setns into a user namespace
//! demands it, ARCHITECTURE principle 6): it joins the namespaces of the user's pause process,
//! making them first (under a lock) when there is none. Everything after (the store, overlay
//! mounts, monitors, berth-runtime) then runs as that namespace's root, with paths from XDG.

pub mod fuse;
pub mod netns;
pub mod netops;
pub mod slirp;
pub mod subid;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

/// What keeps a user's berth out of its namespace: one line naming what is missing and how
/// to get it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "rootless: cannot use the runtime directory {}: {source}: set XDG_RUNTIME_DIR to a \
         directory you own (mode 0700)", .path.display()
    )]
    RunDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "rootless: the runtime directory {} is not private to you (owner {owner}, mode {mode:o}): \
         remove it, or set XDG_RUNTIME_DIR to a directory you own (mode 0700)", .path.display()
    )]
    RunDirNotPrivate {
        path: PathBuf,
        owner: u32,
        mode: u32,
    },
    #[error("rootless: {file}: {reason} for {user}: fix it with usermod --del-subuids/--add-subuids (--add-subgids), e.g. {user}:100000:65536")]
    BadRange {
        file: &'static str,
        user: String,
        reason: String,
    },
    #[error(
        "rootless: {tool} not found in PATH, needed to map {user}'s ranges of {file}: install \
         Debian's uidmap package (apt-get install uidmap)"
    )]
    NoTool {
        tool: &'static str,
        user: String,
        file: &'static str,
    },
    #[error("rootless: {tool} {pid} {args}: {detail}")]
    MapFailed {
        tool: &'static str,
        pid: i32,
        args: String,
        detail: String,
    },
    #[error("rootless: {step}: {source}")]
    Sys {
        step: String,
        source: std::io::Error,
    },
}

fn sys(step: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let step = step.into();
    move |source| Error::Sys { step, source }
}

/// True for rootless berth where no cgroup can be made (no delegated cgroup2 subtree, as on a
/// v1 or hybrid host): its containers run without one, as runc's rootless containers do.
pub fn without_cgroups() -> bool {
    berth_sys::rootless::is_rootless()
        && !berth_cgroups::detect(std::path::Path::new(berth_runtime::cgroup::ROOT))
            .is_ok_and(berth_runtime::cgroup::delegated)
}

/// What a rootless container cannot ask for: `--userns private` takes its ids from root's
/// ranges and makes idmapped mounts, root's alone; a rootless container is in the user's
/// namespace already, mapped from the user's own ranges.
pub fn check(req: &crate::request::RunRequest) -> crate::Result<()> {
    let user_network = !matches!(req.network.as_str(), "" | "bridge" | "none" | "host");
    if berth_sys::rootless::is_rootless()
        && req.netns == crate::request::NsMode::Private
        && user_network
        && (!req.ports.is_empty() || req.publish_all)
    {
        return Err(crate::Error::Invalid(NO_USER_NETWORK_PORTS.into()));
    }
    if berth_sys::rootless::is_rootless() && req.userns == crate::request::NsMode::Private {
        return Err(crate::Error::Invalid(
            "rootless: --userns private is root's (ids from root's ranges, idmapped mounts); \
             a rootless container is already in your user namespace, mapped from your ranges \
             in /etc/subuid: drop --userns"
                .into(),
        ));
    }
    Ok(())
}

/// Podman's choice where a rootless container cannot have a cgroup: its limits are ignored
/// with a warning (podman: "Resource limits are not supported and ignored on cgroups V1
/// rootless systems"), not refused. The warning, when the request sets any.
pub fn limit_warning(req: &crate::request::RunRequest) -> crate::Result<Option<String>> {
    if !without_cgroups() {
        return Ok(None);
    }
    let limits = crate::spec::resource_limits(req)?;
    Ok(berth_cgroups::absent::has_limits(&limits).then(|| {
        "resource limits are not supported and ignored for rootless containers without a \
         delegated cgroup v2 subtree (this host has none for you; podman ignores them too)"
            .to_string()
    }))
}

/// The highest group id of rootless berth's namespace (what a sysctl naming groups, such as
/// ping_group_range, may reach); `None` for root's berth.
pub fn highest_gid() -> Option<u32> {
    if !berth_sys::rootless::is_rootless() {
        return None;
    }
    let map = std::fs::read_to_string("/proc/self/gid_map").ok()?;
    map.lines()
        .filter_map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
            (f.len() == 3).then(|| f[0].saturating_add(f[2]).saturating_sub(1))
        })
        .max()
}

/// The mounts as a rootless namespace can make them: with a single-id map there is no group 5
/// (tty) for devpts' `gid=5`, which the kernel refuses; the option goes, as podman drops it.
pub fn fit_mounts(mut mounts: Vec<oci_spec::runtime::Mount>) -> Vec<oci_spec::runtime::Mount> {
    if highest_gid().is_none_or(|high| high >= 5) {
        return mounts;
    }
    for m in mounts
        .iter_mut()
        .filter(|m| m.typ().as_deref() == Some("devpts"))
    {
        let options = m
            .options()
            .clone()
            .map(|o| o.into_iter().filter(|o| o != "gid=5").collect());
        m.set_options(options);
    }
    mounts
}

/// A rootless container's network when it is the default one: slirp4netns (None for the
/// others: user networks are the store's, in the user networks' namespace, see `netns.rs`).
pub fn default_network(
    record: &crate::records::Record,
    pid: i32,
    ports: &[berth_net::PortMapping],
) -> Option<crate::Result<berth_net::Attachment>> {
    (record.request.network == "bridge").then(|| slirp::attach(&record.id, pid, ports))
}

/// What a rootless container on a user network cannot ask for yet: published ports (the
/// user networks' slirp4netns would forward them into the bridge; not there yet).
pub const NO_USER_NETWORK_PORTS: &str = "rootless: publishing ports (-p, -P) of a container \
     on a user network is not supported yet: use the default network for published ports";

/// What a rootless container cannot do with networks yet: join one while it runs.
pub const NO_CONNECT: &str = "rootless: network connect and disconnect are not supported for \
     rootless containers yet: give the network with --network at run or create";

static OUTSIDE: std::sync::OnceLock<crate::ns::Inodes> = std::sync::OnceLock::new();

/// The namespaces this process was in before [`enter`] joined the rootless ones: the host's.
pub fn outside() -> Option<&'static crate::ns::Inodes> {
    OUTSIDE.get()
}

/// The process name of the pause process, checked before its namespaces are joined (a pid file
/// may name a pid the kernel gave to another process since).
const PAUSE_NAME: &str = "berth-pause";

/// Joins the user's rootless namespaces (making them first if need be) unless the process is
/// root already (the host's root, or rootless berth inside its namespace). Returns warnings for
/// the caller to show. Call it while the process has a single thread.
pub fn enter() -> Result<Vec<String>, Error> {
    if nix::unistd::geteuid().is_root() {
        return Ok(Vec::new());
    }
    // The host's user and mount namespaces, which `berth ns` compares with (joined, this
    // process can no longer read them from pid 1).
    let _ = OUTSIDE.set(crate::ns::inodes(None));
    let dir = berth_sys::rootless::run_dir();
    private_dir(&dir)?;
    use std::os::unix::fs::OpenOptionsExt;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(dir.join("pause.lock"))
        .map_err(|source| Error::RunDir {
            path: dir.clone(),
            source,
        })?;
    lock.lock()
        .map_err(sys(format!("lock {}", dir.join("pause.lock").display())))?;
    let pid_file = dir.join("pause.pid");
    let mut warnings = Vec::new();
    let pid = match live_pause(&pid_file) {
        Some(pid) => pid,
        None => {
            let (pid, warning) = start_pause()?;
            warnings.extend(warning);
            File::options()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&pid_file)
                .and_then(|mut f| f.write_all(pid.to_string().as_bytes()))
                .map_err(sys(format!("write {}", pid_file.display())))?;
            pid
        }
    };
    join(pid)?;
    drop(lock);
    Ok(warnings)
}

/// Makes `dir` (mode 0700) and checks that it is the user's alone: under /tmp another user
/// could have made it first.
fn private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let err = |source| Error::RunDir {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    let meta = std::fs::symlink_metadata(dir).map_err(err)?;
    let uid = nix::unistd::geteuid().as_raw();
    if !meta.is_dir() || meta.uid() != uid || meta.mode() & 0o077 != 0 {
        return Err(Error::RunDirNotPrivate {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            mode: meta.mode() & 0o7777,
        });
    }
    // The directory is writable by us, not only present.
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK)
        .map_err(|e| err(std::io::Error::from(e)))?;
    Ok(())
}

/// The pid in `pid_file` if it is still our pause process.
fn live_pause(pid_file: &Path) -> Option<i32> {
    use std::os::unix::fs::MetadataExt;
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let comm = std::fs::read_to_string(proc.join("comm")).ok()?;
    let owner = std::fs::metadata(&proc).ok()?.uid();
    (comm.trim_end() == PAUSE_NAME && owner == nix::unistd::geteuid().as_raw()).then_some(pid)
}

/// The id maps of the user: its ranges, or none (root alone) with a warning.
struct Maps {
    uid: u32,
    gid: u32,
    uids: Vec<subid::Range>,
    gids: Vec<subid::Range>,
}

fn maps() -> Result<(Maps, Option<String>), Error> {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let user = crate::spec::host_user_name(uid).unwrap_or_else(|| uid.to_string());
    let read = |file: &'static str, id| -> Result<Vec<subid::Range>, Error> {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        subid::ranges(&text, &user, id).map_err(|reason| Error::BadRange {
            file,
            user: user.clone(),
            reason,
        })
    };
    let uids = read("/etc/subuid", uid)?;
    let gids = read("/etc/subgid", gid)?;
    let mut warning = None;
    if uids.is_empty() || gids.is_empty() {
        warning = Some(format!(
            "rootless: no ranges for {user} in /etc/subuid and /etc/subgid: containers get one id \
             (their root, which is you); files of an image owned by other ids become root's and \
             a container cannot switch users (add ranges: usermod --add-subuids 100000-165535 \
             --add-subgids 100000-165535 {user})"
        ));
    } else {
        for (tool, file) in [("newuidmap", "/etc/subuid"), ("newgidmap", "/etc/subgid")] {
            if which(tool).is_none() {
                return Err(Error::NoTool { tool, user, file });
            }
        }
    }
    let (uids, gids) = if warning.is_some() {
        (vec![], vec![])
    } else {
        (uids, gids)
    };
    Ok((
        Maps {
            uid,
            gid,
            uids,
            gids,
        },
        warning,
    ))
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok())
}

/// Starts the pause process in new user and mount namespaces, mapped: a grandchild (nobody's
/// child once its parent exits, so no caller of ours ever reaps it), which sits in pause(2).
fn start_pause() -> Result<(i32, Option<String>), Error> {
    let (maps, warning) = maps()?;
    let (from_child, to_parent) = nix::unistd::pipe().map_err(|e| sys("pipe")(e.into()))?;
    match berth_sys::process::fork().map_err(sys("fork the pause process"))? {
        berth_sys::process::Forked::Child => {
            drop(from_child);
            let code = match pause_child(&maps, File::from(to_parent)) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            berth_sys::process::exit_now(code);
        }
        berth_sys::process::Forked::Parent(child) => {
            drop(to_parent);
            let mut answer = String::new();
            let read = File::from(from_child).read_to_string(&mut answer);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
            read.map_err(sys("read from the pause process"))?;
            let pid = match answer.trim().parse::<i32>() {
                Ok(pid) => pid,
                Err(_) => {
                    return Err(Error::Sys {
                        step: "create the user namespace".into(),
                        source: std::io::Error::other(answer.trim().to_string()),
                    })
                }
            };
            if !maps.uids.is_empty() {
                let mapped = map(pid, "newuidmap", maps.uid, &maps.uids)
                    .and_then(|()| map(pid, "newgidmap", maps.gid, &maps.gids));
                if let Err(e) = mapped {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    return Err(e);
                }
            }
            Ok((pid, warning))
        }
    }
}

fn map(pid: i32, tool: &'static str, id: u32, ranges: &[subid::Range]) -> Result<(), Error> {
    let args = subid::map_args(id, ranges);
    let out = std::process::Command::new(tool)
        .arg(pid.to_string())
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output();
    let detail = match out {
        Ok(out) if out.status.success() => return Ok(()),
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_string(),
        Err(e) => e.to_string(),
    };
    Err(Error::MapFailed {
        tool,
        pid,
        args: args.join(" "),
        detail,
    })
}

/// In the forked child: new namespaces, the single-id map when there are no ranges, then a
/// grandchild that pauses forever; its pid (or the error) goes to the parent.
fn pause_child(maps: &Maps, mut to_parent: File) -> std::io::Result<()> {
    let result = (|| -> std::io::Result<i32> {
        nix::unistd::setsid()?;
        berth_sys::ns::unshare(berth_sys::ns::CLONE_NEWUSER | berth_sys::ns::CLONE_NEWNS).map_err(
            |e| std::io::Error::other(format!("unshare(CLONE_NEWUSER|CLONE_NEWNS): {e}")),
        )?;
        if maps.uids.is_empty() {
            std::fs::write("/proc/self/setgroups", "deny")?;
            std::fs::write("/proc/self/uid_map", format!("0 {} 1", maps.uid))?;
            std::fs::write("/proc/self/gid_map", format!("0 {} 1", maps.gid))?;
        }
        match berth_sys::process::fork()? {
            berth_sys::process::Forked::Child => pause_forever(),
            berth_sys::process::Forked::Parent(pid) => Ok(pid),
        }
    })();
    match result {
        Ok(pid) => write!(to_parent, "{pid}"),
        Err(e) => write!(to_parent, "{e}"),
    }
}

/// The pause process: named, holding nothing of its parent's (stdio to /dev/null, so a pipe
/// reader of `berth ... |` sees its end), waiting for a signal that ends it.
fn pause_forever() -> ! {
    let _ = nix::sys::prctl::set_name(&std::ffi::CString::new(PAUSE_NAME).unwrap_or_default());
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            let _ = berth_sys::fd::dup_onto(null.as_fd(), fd);
        }
    }
    let _ = berth_sys::fd::close_from_except(3, &[]);
    let _ = nix::unistd::chdir("/");
    loop {
        nix::unistd::pause();
    }
}

/// Joins the pause process's user namespace, then its mount namespace, and comes back to the
/// working directory (setns into a mount namespace moves to its root).
fn join(pid: i32) -> Result<(), Error> {
    let cwd = std::env::current_dir().ok();
    let open = |kind: &str| {
        let path = format!("/proc/{pid}/ns/{kind}");
        File::open(&path).map_err(sys(format!("open {path}")))
    };
    let (user, mnt) = (open("user")?, open("mnt")?);
    berth_sys::ns::setns(user.as_fd(), berth_sys::ns::CLONE_NEWUSER).map_err(sys(format!(
        "setns into the user namespace of the pause process {pid}"
    )))?;
    berth_sys::ns::setns(mnt.as_fd(), berth_sys::ns::CLONE_NEWNS).map_err(sys(format!(
        "setns into the mount namespace of the pause process {pid}"
    )))?;
    // No supplementary group of the host's stays (they would show as nogroup); refused, and
    // harmless, under a single-id map.
    let _ = nix::unistd::setgroups(&[]);
    if let Some(cwd) = cwd {
        let _ = std::env::set_current_dir(cwd);
    }
    Ok(())
}
