//! Docker's default seccomp profile (moby `profiles/seccomp/default.json`) as data, resolved
//! against a capability set and the host's architecture into a plain `LinuxSeccomp`.
//!
//! The profile is kept as a table of groups rather than as JSON so that a typo in a capability,
//! an action or an operator is a compile error. Each group carries moby's `includes`/`excludes`
//! conditions; `minKernel` conditions are dropped because every kernel berth supports (5.x and
//! later) satisfies them.

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

use Capability as C;
const EQ: LinuxSeccompOperator = LinuxSeccompOperator::ScmpCmpEq;
const NE: LinuxSeccompOperator = LinuxSeccompOperator::ScmpCmpNe;
const MASKED_EQ: LinuxSeccompOperator = LinuxSeccompOperator::ScmpCmpMaskedEq;

/// Returns Docker's default profile for a container holding `caps` (its bounding set, as moby
/// resolves it) on this host's architecture: default action ERRNO(EPERM), an allow list, and
/// rules that open up syscalls only the granted capabilities can use anyway.
pub fn docker_default_profile(caps: &[Capability]) -> LinuxSeccomp {
    profile_for(caps, host_arch())
}

/// Moby's architecture names (Go's `GOARCH`), which the groups' arch conditions use.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "mips64" if cfg!(target_endian = "little") => "mips64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// Moby's `archMap`: the native architecture and the compat ones a binary may still call in.
fn architectures(arch: &str) -> Option<Vec<Arch>> {
    let list = match arch {
        "amd64" => vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32],
        "arm64" => vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm],
        "mips64" => vec![
            Arch::ScmpArchMips64,
            Arch::ScmpArchMips,
            Arch::ScmpArchMips64n32,
        ],
        "mips64le" => {
            vec![
                Arch::ScmpArchMipsel64,
                Arch::ScmpArchMipsel,
                Arch::ScmpArchMipsel64n32,
            ]
        }
        "s390x" => vec![Arch::ScmpArchS390x, Arch::ScmpArchS390],
        "riscv64" => vec![Arch::ScmpArchRiscv64],
        _ => return None,
    };
    Some(list)
}

pub(super) fn profile_for(caps: &[Capability], arch: &str) -> LinuxSeccomp {
    let syscalls = GROUPS
        .iter()
        .filter(|g| g.applies(caps, arch))
        .map(|g| g.to_syscall())
        .collect();
    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(libc::EPERM as u32));
    profile.set_architectures(architectures(arch));
    profile.set_syscalls(Some(syscalls));
    profile
}

/// One entry of the profile: syscalls sharing an action, conditions on arguments, and when the
/// entry applies at all.
#[derive(Clone, Copy)]
struct Group {
    names: &'static [&'static str],
    /// `None` allows; `Some(errno)` fails with that errno.
    errno: Option<u32>,
    /// (index, value, op); several are ANDed.
    args: &'static [(usize, u64, LinuxSeccompOperator)],
    /// Applies only if the container holds all of these.
    with_caps: &'static [Capability],
    /// Applies only if the container holds none of these.
    without_caps: &'static [Capability],
    /// Applies only on these architectures (empty: all).
    on_arches: &'static [&'static str],
    /// Never applies on these architectures.
    not_on_arches: &'static [&'static str],
}

impl Group {
    const fn allow(names: &'static [&'static str]) -> Self {
        Group {
            names,
            errno: None,
            args: &[],
            with_caps: &[],
            without_caps: &[],
            on_arches: &[],
            not_on_arches: &[],
        }
    }
    const fn errno(names: &'static [&'static str], errno: u32) -> Self {
        Group {
            errno: Some(errno),
            ..Group::allow(names)
        }
    }
    const fn args(self, args: &'static [(usize, u64, LinuxSeccompOperator)]) -> Self {
        Group { args, ..self }
    }
    const fn with(self, with_caps: &'static [Capability]) -> Self {
        Group { with_caps, ..self }
    }
    const fn without(self, without_caps: &'static [Capability]) -> Self {
        Group {
            without_caps,
            ..self
        }
    }
    const fn on(self, on_arches: &'static [&'static str]) -> Self {
        Group { on_arches, ..self }
    }
    const fn not_on(self, not_on_arches: &'static [&'static str]) -> Self {
        Group {
            not_on_arches,
            ..self
        }
    }

    fn applies(&self, caps: &[Capability], arch: &str) -> bool {
        self.with_caps.iter().all(|c| caps.contains(c))
            && !self.without_caps.iter().any(|c| caps.contains(c))
            && (self.on_arches.is_empty() || self.on_arches.contains(&arch))
            && !self.not_on_arches.contains(&arch)
    }

    fn to_syscall(self) -> LinuxSyscall {
        let mut rule = LinuxSyscall::default();
        rule.set_names(self.names.iter().map(|n| n.to_string()).collect());
        match self.errno {
            None => rule.set_action(LinuxSeccompAction::ScmpActAllow),
            Some(errno) => {
                rule.set_action(LinuxSeccompAction::ScmpActErrno);
                rule.set_errno_ret(Some(errno))
            }
        };
        if !self.args.is_empty() {
            let args = self.args.iter().map(|&(index, value, op)| {
                LinuxSeccompArgBuilder::default()
                    .index(index)
                    .value(value)
                    .op(op)
                    .build()
                    .expect("every field of LinuxSeccompArg has a default")
            });
            rule.set_args(Some(args.collect()));
        }
        rule
    }
}

/// `AF_VSOCK`: Docker keeps containers off the hypervisor socket family.
const AF_VSOCK: u64 = 40;
/// personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32,
/// and 0xffffffff, which only queries.
const PER_LINUX: u64 = 0x0;
const PER_LINUX32: u64 = 0x8;
const UNAME26: u64 = 0x0002_0000;
const PER_QUERY: u64 = 0xffff_ffff;
/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET: without CAP_SYS_ADMIN, clone may not create namespaces.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7e02_0000;
const ENOSYS: u32 = libc::ENOSYS as u32;

/// Syscalls every container may make.
#[rustfmt::skip]
const ALWAYS_ALLOWED: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset",
    "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
    "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
    "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown",
    "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock",
    "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
    "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_time64", "futex_waitv",
    "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
    "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect",
    "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
    "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
    "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid",
    "setpriority", "setregid", "setregid32", "setresgid", "setresgid32", "setresuid",
    "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
    "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32", "setxattr",
    "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
    "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64",
    "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
    "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
    "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
    "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times",
    "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat",
    "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
    "waitpid", "write", "writev",
];

/// What CAP_SYS_ADMIN opens: mounts, namespaces, and the rest of what it already governs.
#[rustfmt::skip]
const SYS_ADMIN_SYSCALLS: &[&str] = &[
    "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
    "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
    "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
    "umount2", "unshare",
];

const S390: &[&str] = &["s390", "s390x"];

#[rustfmt::skip]
const GROUPS: &[Group] = &[
    Group::allow(ALWAYS_ALLOWED),
    // Moby gates these on kernel 4.8 (before it, ptrace could bypass seccomp).
    Group::allow(&["process_vm_readv", "process_vm_writev", "ptrace"]),
    Group::allow(&["socket"]).args(&[(0, AF_VSOCK, NE)]),
    Group::allow(&["personality"]).args(&[(0, PER_LINUX, EQ)]),
    Group::allow(&["personality"]).args(&[(0, PER_LINUX32, EQ)]),
    Group::allow(&["personality"]).args(&[(0, UNAME26, EQ)]),
    Group::allow(&["personality"]).args(&[(0, UNAME26 | PER_LINUX32, EQ)]),
    Group::allow(&["personality"]).args(&[(0, PER_QUERY, EQ)]),
    Group::allow(&["sync_file_range2", "swapcontext"]).on(&["ppc64le"]),
    Group::allow(&[
        "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
        "cacheflush", "set_tls",
    ]).on(&["arm", "arm64"]),
    Group::allow(&["arch_prctl"]).on(&["amd64", "x32"]),
    Group::allow(&["modify_ldt"]).on(&["amd64", "x32", "x86"]),
    Group::allow(&["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"]).on(S390),
    Group::allow(&["riscv_flush_icache"]).on(&["riscv64"]),
    Group::allow(&["open_by_handle_at"]).with(&[C::DacReadSearch]),
    Group::allow(SYS_ADMIN_SYSCALLS).with(&[C::SysAdmin]),
    Group::allow(&["clone"]).args(&[(0, CLONE_NAMESPACE_FLAGS, MASKED_EQ)])
        .without(&[C::SysAdmin]).not_on(S390),
    // s390 passes clone's flags as the second argument.
    Group::allow(&["clone"]).args(&[(1, CLONE_NAMESPACE_FLAGS, MASKED_EQ)])
        .without(&[C::SysAdmin]).on(S390),
    // clone3 passes its flags in memory seccomp cannot read: ENOSYS makes libc fall back to clone.
    Group::errno(&["clone3"], ENOSYS).without(&[C::SysAdmin]),
    Group::allow(&["reboot"]).with(&[C::SysBoot]),
    Group::allow(&["chroot"]).with(&[C::SysChroot]),
    Group::allow(&["delete_module", "init_module", "finit_module"]).with(&[C::SysModule]),
    Group::allow(&["acct"]).with(&[C::SysPacct]),
    Group::allow(&[
        "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
        "ptrace",
    ]).with(&[C::SysPtrace]),
    Group::allow(&["iopl", "ioperm"]).with(&[C::SysRawio]),
    Group::allow(&["settimeofday", "stime", "clock_settime", "clock_settime64"])
        .with(&[C::SysTime]),
    Group::allow(&["vhangup"]).with(&[C::SysTtyConfig]),
    Group::allow(&["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"])
        .with(&[C::SysNice]),
    Group::allow(&["syslog"]).with(&[C::Syslog]),
    Group::allow(&["bpf"]).with(&[C::Bpf]),
    Group::allow(&["perf_event_open"]).with(&[C::Perfmon]),
];
