//! The container's root filesystem, set up by the init inside its new mount namespace: the
//! spec's mounts, /dev, pivot_root, then masked and read-only paths.

pub mod devices;
mod fresh;
mod mountinfo;
pub mod options;
pub mod procfs;
pub mod resolve;
pub mod sources;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::Mode;

use crate::plan::{InitPlan, MountPlan};
use crate::step::{fail, Step, StepResult};
use fresh::FreshTmpfs;
use resolve::Leaf;
use sources::MountSources;

const NONE: Option<&str> = None;

/// Everything up to, not including, pivot_root: propagation, the rootfs bind, every mount and
/// the devices. Returns an O_PATH descriptor of the root. `host_cgroups` is the init's
/// /proc/self/cgroup as read before it unshared its cgroup namespace (the host's paths, which
/// cgroup mounts bind); `sources`, bind sources the runtime opened for it.
pub fn prepare(plan: &InitPlan, host_cgroups: &str, sources: &MountSources) -> StepResult<OwnedFd> {
    // The container is in a pid namespace it did not make (the host's or a joined one).
    let shares_pid_ns = !plan.creates(oci_spec::runtime::LinuxNamespaceType::Pid);
    let rootfs = &plan.rootfs;
    // These serve a mount namespace of the container's own (its mounts kept from the host,
    // pivot_root): in the host's, where a container without one runs, they would change the
    // host's mounts for good.
    if plan.has_mount_ns() {
        mount(NONE, "/", NONE, plan.root_propagation, NONE)
            .step(|| "set the propagation of / before setting up the root".into())?;
        // rslave, rprivate (and runbindable) leave no mount of the namespace shared: there is
        // nothing to look for in mountinfo (which a host with many mounts makes long).
        if !all_unshared(plan) {
            holder_private(rootfs)?;
        }
        mount(
            Some(rootfs),
            rootfs,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )
        .step(|| format!("bind mount the root filesystem {}", rootfs.display()))?;
    }
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .step(|| format!("open the root filesystem {}", rootfs.display()))?;
    for dir in ["/proc", "/sys"] {
        if resolve::is_symlink(root.as_fd(), Path::new(dir))
            .step(|| format!("check {dir} in the root"))?
        {
            return fail(
                format!("prepare {dir}"),
                format!(
                    "{dir} is a symbolic link in the root filesystem: refusing to mount over it"
                ),
            );
        }
    }
    let mut dev_mounted = false;
    let mut fresh = FreshTmpfs::default();
    for (i, m) in plan.mounts.iter().enumerate() {
        mount_one(
            root.as_fd(),
            m,
            host_cgroups,
            sources.path(i),
            shares_pid_ns,
            &mut fresh,
        )?;
        dev_mounted |= m.destination == Path::new("/dev");
    }
    // /dev as the mounts left it open, for the device nodes.
    let dev = fresh.take(Path::new("/dev"));
    drop(fresh);
    // Before anything writes under it (sysctls, AppArmor, masked paths).
    procfs::check_mounted(root.as_fd()).or_else(|e| fail("check /proc", e))?;
    // The runtime itself in a user namespace (rootless) can no more mknod than a new one.
    let bind_devices = plan.in_user_ns() || berth_sys::rootless::is_rootless();
    if dev_mounted {
        let dev = devices::create_all(root.as_fd(), &plan.devices, bind_devices, dev)?;
        devices::default_links(root.as_fd(), dev)?;
    } else {
        devices::create_all(
            root.as_fd(),
            &plan.devices[devices::DEFAULT_COUNT..],
            bind_devices,
            dev,
        )?;
    }
    Ok(root)
}

/// True when the propagation set on / before the root is set up leaves no mount of the
/// container's mount namespace shared: rslave, rprivate, runbindable.
fn all_unshared(plan: &InitPlan) -> bool {
    plan.root_propagation.contains(MsFlags::MS_REC)
        && !plan.root_propagation.contains(MsFlags::MS_SHARED)
}

/// One mount of the spec; a bind mount binds from `opened` (/proc/self/fd/N) when the runtime
/// opened its source (sources.rs), else from the source's path.
fn mount_one(
    root: std::os::fd::BorrowedFd<'_>,
    m: &MountPlan,
    host_cgroups: &str,
    opened: Option<PathBuf>,
    shares_pid_ns: bool,
    fresh: &mut FreshTmpfs,
) -> StepResult<()> {
    let dest = &m.destination;
    let clean_dest = procfs::clean(dest);
    // Whatever was fresh at or below the destination is covered now.
    fresh.covered_by(&clean_dest);
    let is_bind = m.is_bind();
    if m.fstype == "cgroup" || m.fstype == "cgroup2" {
        return mount_cgroup(root, m, host_cgroups, fresh);
    }
    mount_plain(root, m, opened, shares_pid_ns, fresh)?;
    if !is_bind && m.fstype == "tmpfs" {
        fresh.mounted(clean_dest);
    }
    Ok(())
}

/// A mount that is neither cgroup nor cgroup2.
fn mount_plain(
    root: std::os::fd::BorrowedFd<'_>,
    m: &MountPlan,
    opened: Option<PathBuf>,
    shares_pid_ns: bool,
    fresh: &mut FreshTmpfs,
) -> StepResult<()> {
    let dest = &m.destination;
    let what = || format!("mount {} on {}", m.fstype, dest.display());
    let is_bind = m.is_bind();
    let named = m.source.as_deref().unwrap_or(Path::new(""));
    let src = opened.as_deref().unwrap_or(named);
    let clean = procfs::clean(dest);
    let leaf = if is_bind {
        let meta =
            std::fs::metadata(src).step(|| format!("bind mount source {}", named.display()))?;
        if meta.is_dir() {
            Leaf::Dir
        } else {
            Leaf::File
        }
    } else {
        Leaf::Dir
    };
    let made = match leaf {
        Leaf::Dir => fresh.make_dir(root, &clean),
        Leaf::File => None,
    };
    let target = match made {
        Some(dir) => dir,
        None => {
            let target = resolve::create(root, dest, leaf)
                .step(|| format!("create mount point {} in the root", dest.display()))?;
            procfs::check_resolved(dest, &target).or_else(|e| fail(what(), e))?;
            fresh.resolved(root, &clean, &target);
            target
        }
    };
    if is_bind && clean == Path::new("/proc") {
        procfs::check_bind_source(src).or_else(|e| fail(what(), e))?;
    }
    let target_path = resolve::fd_path(&target);
    let data = m.options.data_string();
    if is_bind {
        mount(
            Some(src),
            &target_path,
            NONE,
            MsFlags::MS_BIND | (m.options.flags & MsFlags::MS_REC),
            NONE,
        )
        .step(what)?;
        let remount = m.options.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
        if !remount.is_empty() {
            // Bind mounts ignore flags at creation: they take effect on a remount, which must
            // keep the flags the source mount is locked with (nodev, nosuid... in a user ns).
            remount_at(root, dest, MsFlags::MS_BIND | remount, NONE, || {
                format!("remount {} with its options", dest.display())
            })?;
        }
    } else {
        let source = m
            .source
            .as_deref()
            .map(|s| s.as_os_str())
            .unwrap_or(m.fstype.as_ref());
        let r = mount(
            Some(source),
            &target_path,
            Some(m.fstype.as_str()),
            m.options.flags,
            data.as_deref(),
        );
        match r {
            // sysfs cannot be mounted in a network namespace the user namespace does not own:
            // bind the host's, read-only, as runc does.
            Err(nix::errno::Errno::EPERM) if m.fstype == "sysfs" => {
                mount(
                    Some("/sys"),
                    &target_path,
                    NONE,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    NONE,
                )
                .step(what)?;
                let flags = MsFlags::MS_BIND | MsFlags::MS_RDONLY | m.options.flags;
                remount_at(root, dest, flags, NONE, what)?;
            }
            // Nor a procfs for a pid namespace the user namespace does not own (rootless
            // `--pid host`): the host's, bound with what is mounted below it, as crun does —
            // only where the container shares that pid namespace: one with a pid namespace of
            // its own must never see the host's processes.
            Err(nix::errno::Errno::EPERM) if m.fstype == "proc" && shares_pid_ns => {
                mount(
                    Some("/proc"),
                    &target_path,
                    NONE,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    NONE,
                )
                .step(what)?;
            }
            r => r.step(what)?,
        }
    }
    if !m.options.recursive.is_empty() {
        set_recursive(root, m)?;
    }
    if !m.options.propagation.is_empty() {
        let mounted_fd = mounted_path(root, dest)?;
        let mounted = resolve::fd_path(&mounted_fd);
        for p in &m.options.propagation {
            mount(NONE, &mounted, NONE, *p, NONE)
                .step(|| format!("set propagation of {}", dest.display()))?;
        }
    }
    Ok(())
}

/// The options that reach every mount below the new one (`rro`, `rnosuid`, ...), set by one
/// mount_setattr(AT_RECURSIVE) as runc sets them. What the kernel cannot do is an error that
/// names them, never silently a weaker mount.
fn set_recursive(root: std::os::fd::BorrowedFd<'_>, m: &MountPlan) -> StepResult<()> {
    let rec = &m.options.recursive;
    let step = || {
        format!(
            "set {} on {} and every mount below it",
            rec.names.join(","),
            m.destination.display()
        )
    };
    let mounted = mounted_path(root, &m.destination)?;
    berth_sys::mount::setattr_recursive(mounted.as_fd(), rec.set, rec.clear).or_else(|e| {
        let why = match e.raw_os_error() {
            Some(libc::ENOSYS) => "recursive mount options need mount_setattr (Linux 5.12)",
            Some(libc::EINVAL) => "this kernel does not know one (rnosymfollow needs Linux 5.14)",
            Some(libc::EPERM) => {
                "a mount below has a flag locked that they would clear (a user namespace \
                 inherits the host's), or a seccomp filter refused mount_setattr"
            }
            _ => "",
        };
        let sep = if why.is_empty() { "" } else { ": " };
        fail(step(), format!("{e}{sep}{why}"))
    })
}

/// Remounts the mount now on `dest` with `flags` (MS_REMOUNT added), keeping the flags the
/// kernel locks on it (nodev, nosuid... inherited in a user namespace).
fn remount_at(
    root: std::os::fd::BorrowedFd<'_>,
    dest: &Path,
    flags: MsFlags,
    data: Option<&str>,
    what: impl FnOnce() -> String,
) -> StepResult<()> {
    let fd = mounted_path(root, dest)?;
    let path = resolve::fd_path(&fd);
    let flags = MsFlags::MS_REMOUNT | flags | locked_flags(&path);
    mount(NONE, &path, NONE, flags, data).step(what)
}

/// The destination opened again after a mount: a descriptor opened before it names the
/// directory underneath, and remounting that fails with EINVAL.
fn mounted_path(root: std::os::fd::BorrowedFd<'_>, dest: &Path) -> StepResult<OwnedFd> {
    resolve::open(root, dest, OFlag::O_PATH)
        .step(|| format!("open {} after mounting it", dest.display()))
}

/// Flags the kernel will not let a remount clear (statvfs of the mount).
fn locked_flags(path: &Path) -> MsFlags {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let Ok(st) = statvfs(path) else {
        return MsFlags::empty();
    };
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs) {
            out |= ms;
        }
    }
    out
}

/// A cgroup mount: the container's own cgroup directories, bound from the host (every v1
/// hierarchy as a subdirectory of a tmpfs, or the v2 one), so the container sees its cgroup
/// and nothing above it whether or not it has a cgroup namespace.
fn mount_cgroup(
    root: std::os::fd::BorrowedFd<'_>,
    m: &MountPlan,
    own: &str,
    fresh: &mut FreshTmpfs,
) -> StepResult<()> {
    let dest = &m.destination;
    let ro = m.options.flags.contains(MsFlags::MS_RDONLY);
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let unified_only = own.lines().count() == 1 && own.starts_with("0::");
    let target = resolve::create(root, dest, Leaf::Dir)
        .step(|| format!("create mount point {}", dest.display()))?;
    procfs::check_resolved(dest, &target)
        .or_else(|e| fail(format!("mount cgroup on {}", dest.display()), e))?;
    fresh.resolved(root, &procfs::clean(dest), &target);
    let target_path = resolve::fd_path(&target);
    if unified_only {
        let r = mount(
            Some("cgroup2"),
            &target_path,
            Some("cgroup2"),
            flags | (m.options.flags & MsFlags::MS_RDONLY),
            NONE,
        );
        if r.is_err() {
            let path = own.trim_start_matches("0::").trim();
            bind_ro(root, Path::new(&format!("/sys/fs/cgroup{path}")), dest, ro)?;
        }
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        &target_path,
        Some("tmpfs"),
        flags,
        Some("mode=755"),
    )
    .step(|| format!("mount tmpfs on {}", dest.display()))?;
    // The tmpfs is new and ours alone: each hierarchy's mount point is made right under it,
    // without resolving the destination in the root again, and the whole tree is made
    // nosuid, nodev, noexec (and read-only) by one mount_setattr at the end instead of a
    // remount per mount.
    let tmpfs = mounted_path(root, dest)?;
    let base = resolve::fd_path(&tmpfs);
    let mut binds = Vec::new();
    for (host, name) in v1_hierarchies(own) {
        let what = || {
            format!(
                "bind mount cgroup {} on {}",
                host.display(),
                dest.join(&name).display()
            )
        };
        match nix::sys::stat::mkdirat(
            tmpfs.as_fd(),
            name.as_str(),
            Mode::from_bits_truncate(0o755),
        ) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(e).step(what),
        }
        match mount(Some(&host), &base.join(&name), NONE, MsFlags::MS_BIND, NONE) {
            // A hierarchy /proc/self/cgroup lists that is not mounted under /sys/fs/cgroup:
            // nothing to bind, and no empty mount point left for it.
            Err(nix::errno::Errno::ENOENT) => {
                let rmdir = nix::unistd::UnlinkatFlags::RemoveDir;
                nix::unistd::unlinkat(tmpfs.as_fd(), name.as_str(), rmdir).step(what)?;
                continue;
            }
            r => r.step(what)?,
        }
        binds.push(dest.join(name));
    }
    let mut attrs = berth_sys::mount::ATTR_NOSUID
        | berth_sys::mount::ATTR_NODEV
        | berth_sys::mount::ATTR_NOEXEC;
    if ro {
        attrs |= berth_sys::mount::ATTR_RDONLY;
    }
    match berth_sys::mount::set_recursive(tmpfs.as_fd(), attrs) {
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) => {
            // Before Linux 5.12, or under a seccomp filter that answers EPERM for syscalls it
            // does not know (older engines' profiles): a remount per mount.
            let bind_flags = MsFlags::MS_BIND | flags | (m.options.flags & MsFlags::MS_RDONLY);
            for sub in &binds {
                remount_at(root, sub, bind_flags, NONE, || {
                    format!("remount {}", sub.display())
                })?;
            }
            if ro {
                remount_at(
                    root,
                    dest,
                    MsFlags::MS_RDONLY | flags,
                    Some("mode=755"),
                    || format!("remount {} read-only", dest.display()),
                )?;
            }
            Ok(())
        }
        other => other.step(|| {
            format!(
                "make {} nosuid, nodev, noexec{} (mount_setattr)",
                dest.display(),
                if ro { ", read-only" } else { "" }
            )
        }),
    }
}

/// The v1 hierarchies (and the unified one, on a hybrid host) of the cgroups in
/// `/proc/self/cgroup` text: the host directory of each, under /sys/fs/cgroup (which may not
/// be there: the bind says), and the name of its mount point in the container ("memory",
/// "cpu,cpuacct", "systemd", "unified").
fn v1_hierarchies(own: &str) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        let (host_dir, name) = if ctrls.is_empty() {
            ("unified", "unified".to_string())
        } else {
            (
                ctrls
                    .split(',')
                    .next()
                    .unwrap_or(ctrls)
                    .trim_start_matches("name="),
                ctrls.trim_start_matches("name=").to_string(),
            )
        };
        let host = Path::new("/sys/fs/cgroup")
            .join(host_dir)
            .join(path.trim_start_matches('/'));
        out.push((host, name));
    }
    out
}

/// Binds the host's `src` on `dest` inside the root, then remounts it nosuid, nodev, noexec
/// and, with `ro`, read-only.
fn bind_ro(root: std::os::fd::BorrowedFd<'_>, src: &Path, dest: &Path, ro: bool) -> StepResult<()> {
    let what = || format!("bind mount cgroup {} on {}", src.display(), dest.display());
    let target = resolve::create(root, dest, Leaf::Dir).step(what)?;
    mount(
        Some(src),
        &resolve::fd_path(&target),
        NONE,
        MsFlags::MS_BIND,
        NONE,
    )
    .step(what)?;
    let mut f = MsFlags::MS_BIND | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    if ro {
        f |= MsFlags::MS_RDONLY;
    }
    remount_at(root, dest, f, NONE, what)
}

/// Makes the mount holding the root filesystem private if it is shared, as runc does
/// (rootfsParentMountPrivate): pivot_root refuses a new root whose parent mount is shared, and
/// the root's bind mount would otherwise propagate to the host's mount namespace. Only this
/// mount, in our namespace; the propagation asked for / applies to the rest.
fn holder_private(rootfs: &Path) -> StepResult<()> {
    let info = berth_sys::file::read_to_string("/proc/self/mountinfo")
        .step(|| "read /proc/self/mountinfo".into())?;
    match mountinfo::holder(&info, rootfs) {
        Some((point, true)) => mount(NONE, &point, NONE, MsFlags::MS_PRIVATE, NONE).step(|| {
            format!(
                "make {} private, the shared mount holding the root filesystem",
                point.display()
            )
        }),
        _ => Ok(()),
    }
}

/// `pivot_root(".", ".")` then a lazy unmount of the old root stacked beneath: no put_old
/// directory is needed (crun's do_pivot). With `no_pivot`, move the root over / and chroot,
/// for roots on ramfs where pivot_root is refused. In the host's mount namespace, a chroot
/// alone, as runc does there.
pub fn enter(plan: &InitPlan, no_pivot: bool) -> StepResult<()> {
    let rootfs = &plan.rootfs;
    nix::unistd::chdir(rootfs).step(|| format!("chdir to {}", rootfs.display()))?;
    if !plan.has_mount_ns() {
        nix::unistd::chroot(".").step(|| "chroot into the root filesystem".into())?;
    } else if no_pivot {
        mount(Some(rootfs), "/", NONE, MsFlags::MS_MOVE, NONE)
            .step(|| "move the root filesystem onto /".into())?;
        nix::unistd::chroot(".").step(|| "chroot into the root filesystem".into())?;
    } else {
        // The old root, opened before it is moved: after pivot_root, mount(2) on "." acts on
        // the new root (only umount2 goes to the mount stacked on top), so it is reached
        // through this descriptor, as runc does. Unless it is made of slaves and private
        // mounts already (the propagation set on / before the root was set up, which the
        // mounts made since inherit): the walk over every mount copied from the host
        // (hundreds, on a host running containers) would change nothing.
        let old_root = (!all_unshared(plan))
            .then(|| {
                let flags = OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
                nix::fcntl::open("/", flags, Mode::empty()).step(|| "open the old root /".into())
            })
            .transpose()?;
        nix::unistd::pivot_root(".", ".").step(|| format!("pivot_root to {}", rootfs.display()))?;
        // The old root is now mounted on top of the new one: make it a slave so the unmount
        // does not propagate to the host, then detach it. A slave, not the new root: the
        // container's own mounts keep the propagation asked for (an rshared volume stays a
        // peer of the host's mount, as under runc).
        if let Some(old_root) = old_root {
            nix::unistd::fchdir(&old_root).step(|| "fchdir to the old root".into())?;
            mount(NONE, ".", NONE, MsFlags::MS_SLAVE | MsFlags::MS_REC, NONE)
                .step(|| "make the old root a slave".into())?;
        }
        umount2(".", MntFlags::MNT_DETACH).step(|| "detach the old root".into())?;
    }
    nix::unistd::chdir("/").step(|| "chdir to / in the container".into())?;
    Ok(())
}

/// After pivot_root: masked and read-only paths, read-only root. The root keeps the
/// propagation its bind mount got (runc sets rootfsPropagation on / before, never after).
pub fn finish(plan: &InitPlan) -> StepResult<()> {
    let proc = procfs::Entries::list(plan);
    for path in &plan.readonly_paths {
        if proc.has(path) != Some(false) {
            readonly(path)?;
        }
    }
    if !plan.masked_paths.is_empty() {
        devices::check_dev_null().step(|| "check /dev/null before masking with it".into())?;
    }
    for path in &plan.masked_paths {
        match proc.has(path) {
            Some(false) => {}
            // A directory right below /proc: the tmpfs at once, not after /dev/null's ENOTDIR.
            Some(true) if proc.is_dir(path) => mask_dir(path)?,
            _ => mask(path)?,
        }
    }
    if plan.readonly_root {
        remount_readonly(Path::new("/"), || "remount the root read-only".into())?;
    }
    Ok(())
}

/// runc's readonlyPath: the path bound onto itself (with what is mounted below it), then that
/// mount made read-only; a path that is not there needs nothing.
fn readonly(path: &Path) -> StepResult<()> {
    let what = || format!("make {} read-only", path.display());
    match mount(
        Some(path),
        path,
        NONE,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        NONE,
    ) {
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        r => r.step(what)?,
    }
    remount_readonly(path, what)
}

/// Makes the mount at `path` read-only, its other flags as they are: one mount_setattr, or
/// before Linux 5.12 a remount that repeats the flags the kernel locks on it (statfs).
fn remount_readonly(path: &Path, what: impl FnOnce() -> String) -> StepResult<()> {
    match berth_sys::mount::set_at(path, berth_sys::mount::ATTR_RDONLY) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            mount(NONE, path, NONE, flags | locked_flags(path), NONE).step(what)
        }
        r => r.step(what),
    }
}

/// runc's maskPath: /dev/null bound over the path, which a directory refuses (ENOTDIR) and
/// gets an empty read-only tmpfs instead; a path that is not there needs nothing. The mount
/// itself tells which, where a stat first cost a syscall more for every path.
fn mask(path: &Path) -> StepResult<()> {
    let what = || format!("mask {}", path.display());
    match mount(Some("/dev/null"), path, NONE, MsFlags::MS_BIND, NONE) {
        Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(nix::errno::Errno::ENOTDIR) => mask_dir(path),
        r => r.step(what),
    }
}

/// A directory masked: an empty read-only tmpfs over it.
fn mask_dir(path: &Path) -> StepResult<()> {
    mount(Some("tmpfs"), path, Some("tmpfs"), MsFlags::MS_RDONLY, NONE)
        .step(|| format!("mask {}", path.display()))
}
