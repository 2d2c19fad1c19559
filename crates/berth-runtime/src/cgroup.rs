//! The runtime's use of berth-cgroups: the host hierarchy root and the manager of a container.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

pub use berth_cgroups::{CgroupManager, CgroupPath, Created, FreezerState, Manager};
use berth_sys::signal::SignalNumber;

use crate::error::{Error, IoContext, Result};

/// Where the host's cgroup hierarchies are mounted.
pub const ROOT: &str = "/sys/fs/cgroup";

/// The manager of the cgroup at `path` (a record's, or one below each hierarchy's root).
/// Rootless (berth-runc run by a user, or rootless berth's namespace) without a delegated
/// cgroup2 subtree, no cgroup at all, as runc's rootless containers.
pub fn open(path: impl Into<CgroupPath>) -> Result<Manager> {
    let root = Path::new(ROOT);
    let setup = host_setup()?;
    if berth_sys::rootless::is_rootless() && !delegated(setup) {
        return Ok(Manager::Absent(berth_cgroups::absent::Manager));
    }
    Ok(Manager::new(setup, root, &path.into())?)
}

/// The host's cgroup setup, found once per process: a monitor asks at its container's start,
/// stop, kill and exit, and the host's cgroup mounts do not change under its containers.
pub fn host_setup() -> Result<berth_cgroups::Setup> {
    static SETUP: std::sync::OnceLock<berth_cgroups::Setup> = std::sync::OnceLock::new();
    if let Some(setup) = SETUP.get() {
        return Ok(*setup);
    }
    let setup = berth_cgroups::detect(Path::new(ROOT))?;
    Ok(*SETUP.get_or_init(|| setup))
}

/// Finds the host's cgroup setup and hierarchies now rather than at the first container
/// operation: for a process with time to spare before it (a monitor waiting for its client).
pub fn find_host_setup() {
    if let Ok(setup) = host_setup() {
        if setup != berth_cgroups::Setup::Unified {
            berth_cgroups::v1::find_host_hierarchies(Path::new(ROOT));
        }
    }
}

/// True when this (rootless) process may make cgroups: a cgroup2-only host whose cgroup of
/// ours is writable (systemd's `Delegate=yes` for the user's manager).
pub fn delegated(setup: berth_cgroups::Setup) -> bool {
    if setup != berth_cgroups::Setup::Unified {
        return false;
    }
    let Ok(own) = berth_sys::file::read_to_string("/proc/self/cgroup") else {
        return false;
    };
    own.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(|p| Path::new(ROOT).join(p.trim_start_matches('/')))
        .is_some_and(|dir| nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).is_ok())
}

/// The cgroup of a new container from its `linux.cgroupsPath`. Without one it is runc's
/// default: the container's id below the cgroup this process is in, in each hierarchy.
pub fn path_for(cgroups_path: Option<&Path>, id: &str) -> Result<CgroupPath> {
    match cgroups_path
        .map(|p| p.to_string_lossy())
        .filter(|p| !p.is_empty())
    {
        Some(path) => Ok(CgroupPath::Rooted(berth_cgroups::parse_cgroups_path(
            &path,
        )?)),
        None => {
            let own = berth_sys::file::read_to_string("/proc/self/cgroup")
                .at("read the runtime's own cgroup", "/proc/self/cgroup")?;
            Ok(CgroupPath::under_own(id, &own)?)
        }
    }
}

/// Kills whatever is in the cgroup and waits until it is empty, at most `timeout`: on cgroup2
/// (or hybrid's unified side) for the kernel's `populated 0` in cgroup.events, an event; on v1
/// alone on each process's pidfd. Processes still there at the end are an error naming them.
pub fn kill_and_wait_empty(
    cg: &Manager,
    path: impl Into<CgroupPath>,
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        let pids = cg.pids()?;
        if pids.is_empty() {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::CgroupNotEmpty {
                path: path.into().to_string(),
                pids,
            });
        }
        // Every round signals what is there now: a fork may have raced the last kill.
        cg.kill_all(SignalNumber::KILL)?;
        let round = left.min(Duration::from_secs(1));
        match cg.unified_dir() {
            Some(dir) => wait_unpopulated(&dir.join("cgroup.events"), round),
            None => {
                for pid in pids {
                    if let Ok(fd) = berth_sys::process::pidfd_open(pid) {
                        let ms = deadline
                            .saturating_duration_since(Instant::now())
                            .as_millis();
                        crate::hooks::wait_readable(fd.as_fd(), ms.min(1000) as i64);
                    }
                }
            }
        }
    }
}

/// Waits at most `timeout` for `populated 0` in a cgroup2 `cgroup.events`: the kernel wakes a
/// poll for POLLPRI on it at every change.
fn wait_unpopulated(events: &Path, timeout: Duration) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = Instant::now() + timeout;
    let Ok(file) = File::open(events) else {
        std::thread::sleep(Duration::from_millis(10).min(timeout));
        return;
    };
    let mut buf = [0u8; 256];
    loop {
        // Each read from the start re-arms the notification.
        let n = file.read_at(&mut buf, 0).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.lines().any(|l| l == "populated 0") {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(file.as_fd(), PollFlags::POLLPRI)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) => return,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}
