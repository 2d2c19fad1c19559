//! Tests of the seccomp compiler: pure compiles of every action, operator, flag and
//! architecture, and real filters installed in a re-executed copy of this test binary.

use super::docker_default::profile_for;
use super::*;
use oci_spec::runtime::Capability;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn rule(names: &[&str], act: LinuxSeccompAction, errno: Option<u32>) -> LinuxSyscall {
    let mut r = LinuxSyscall::default();
    r.set_names(names.iter().map(|n| n.to_string()).collect());
    r.set_action(act);
    r.set_errno_ret(errno);
    r
}

fn arg(index: usize, value: u64, op: LinuxSeccompOperator) -> LinuxSeccompArg {
    arg2(index, value, None, op)
}

fn arg2(index: usize, value: u64, two: Option<u64>, op: LinuxSeccompOperator) -> LinuxSeccompArg {
    let b = oci_spec::runtime::LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    match two {
        Some(two) => b.value_two(two).build().unwrap(),
        None => b.build().unwrap(),
    }
}

fn filter(default: LinuxSeccompAction, syscalls: Vec<LinuxSyscall>) -> LinuxSeccomp {
    let mut s = LinuxSeccomp::default();
    s.set_default_action(default);
    s.set_syscalls(Some(syscalls));
    s
}

fn assert_program(p: &SeccompProgram) {
    assert!(!p.is_empty());
    assert_eq!(p.insns.len() % 8, 0);
    assert!(p.len() <= MAX_INSNS, "{} instructions", p.len());
}

/// Docker's default capability set.
const DOCKER_CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

#[test]
fn compiles_every_action() {
    use LinuxSeccompAction::*;
    for act in [
        ScmpActErrno,
        ScmpActKill,
        ScmpActKillProcess,
        ScmpActKillThread,
        ScmpActTrap,
        ScmpActTrace,
        ScmpActLog,
    ] {
        for errno in [None, Some(38)] {
            let spec = filter(ScmpActAllow, vec![rule(&["getpid"], act, errno)]);
            assert_program(&compile(&spec).unwrap_or_else(|e| panic!("{act:?}: {e}")));
        }
    }
    let spec = filter(ScmpActErrno, vec![rule(&["getpid"], ScmpActAllow, None)]);
    assert_program(&compile(&spec).unwrap());
}

#[test]
fn rule_with_the_default_action_is_dropped() {
    let act = LinuxSeccompAction::ScmpActAllow;
    let plain = compile(&filter(act, vec![])).unwrap();
    let same = compile(&filter(act, vec![rule(&["getpid"], act, None)])).unwrap();
    assert_eq!(plain, same);
}

/// SCMP_ACT_NOTIFY: as runc, never the default action nor for write, and only with an agent
/// to hand the listener to; the filter is then loaded with a listener.
#[test]
fn notify_needs_an_agent_and_gets_a_listener() {
    let notify = LinuxSeccompAction::ScmpActNotify;
    let allow = LinuxSeccompAction::ScmpActAllow;
    let mut spec = filter(notify, vec![]);
    spec.set_listener_path(Some("/run/agent.sock".into()));
    let err = compile(&spec).unwrap_err();
    assert!(matches!(err, SeccompError::NotifyDefault), "{err}");
    for syscall in ["write", "sendmsg"] {
        let mut spec = filter(allow, vec![rule(&["read", syscall], notify, None)]);
        spec.set_listener_path(Some("/run/agent.sock".into()));
        let err = compile(&spec).unwrap_err().to_string();
        let words = format!("SCMP_ACT_NOTIFY cannot be used for the {syscall} syscall");
        assert!(err.contains(&words), "{err}");
    }
    let mut spec = filter(allow, vec![rule(&["mkdir"], notify, None)]);
    let err = compile(&spec).unwrap_err();
    assert!(matches!(err, SeccompError::NoListenerPath), "{err}");
    spec.set_listener_path(Some("/run/agent.sock".into()));
    let program = compile(&spec).unwrap();
    assert!(program.has_listener());
    assert!(!compile(&filter(allow, vec![])).unwrap().has_listener());
}

#[test]
fn compiles_every_operator() {
    use LinuxSeccompOperator::*;
    for op in [
        ScmpCmpNe,
        ScmpCmpLt,
        ScmpCmpLe,
        ScmpCmpEq,
        ScmpCmpGe,
        ScmpCmpGt,
        ScmpCmpMaskedEq,
    ] {
        let mut r = rule(&["personality"], LinuxSeccompAction::ScmpActErrno, None);
        r.set_args(Some(vec![arg2(0, 0xff, Some(0x0f), op)]));
        let spec = filter(LinuxSeccompAction::ScmpActAllow, vec![r]);
        assert_program(&compile(&spec).unwrap_or_else(|e| panic!("{op:?}: {e}")));
    }
}

#[test]
fn several_conditions_on_one_argument_compile_as_separate_rules() {
    use LinuxSeccompOperator::*;
    let mut r = rule(&["lseek"], LinuxSeccompAction::ScmpActErrno, None);
    r.set_args(Some(vec![
        arg(1, 10, ScmpCmpLe),
        arg(1, 1000, ScmpCmpGe),
        arg(2, 0, ScmpCmpEq),
    ]));
    let spec = filter(LinuxSeccompAction::ScmpActAllow, vec![r]);
    assert_program(&compile(&spec).unwrap());
}

#[test]
fn argument_index_out_of_range_is_an_error() {
    let mut r = rule(&["read"], LinuxSeccompAction::ScmpActErrno, None);
    r.set_args(Some(vec![arg(6, 0, LinuxSeccompOperator::ScmpCmpEq)]));
    let err = compile(&filter(LinuxSeccompAction::ScmpActAllow, vec![r])).unwrap_err();
    assert!(
        matches!(err, SeccompError::ArgIndexOutOfRange { index: 6, .. }),
        "{err}"
    );
}

#[test]
fn errno_ret_must_fit_sixteen_bits() {
    let r = rule(&["read"], LinuxSeccompAction::ScmpActErrno, Some(70_000));
    let err = compile(&filter(LinuxSeccompAction::ScmpActAllow, vec![r])).unwrap_err();
    assert!(
        matches!(err, SeccompError::ErrnoRetOutOfRange { value: 70_000, .. }),
        "{err}"
    );
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let act = LinuxSeccompAction::ScmpActErrno;
    let known = compile(&filter(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["read"], act, None)],
    ));
    let names = &["read", "no_such_syscall_berth"];
    let mixed = compile(&filter(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(names, act, None)],
    ));
    assert_eq!(known.unwrap(), mixed.unwrap());
}

#[test]
fn execveat_is_judged_allowed_only_when_no_argument_can_deny_it() {
    use LinuxSeccompAction::{ScmpActAllow as Allow, ScmpActErrno as Errno, ScmpActLog as Log};
    let ok = |s: &LinuxSeccomp| allows_unconditionally(s, "execveat");
    // Docker's default: an allow-list that names it.
    assert!(ok(&docker_default_profile(&[])));
    assert!(ok(&filter(
        Errno,
        vec![rule(&["execve", "execveat"], Allow, None)]
    )));
    assert!(ok(&filter(Allow, vec![])));
    assert!(ok(&filter(Allow, vec![rule(&["mkdir"], Errno, None)])));
    assert!(ok(&filter(Errno, vec![rule(&["execveat"], Log, None)])));
    // Not named by an allow-list, denied by name, or allowed for some arguments only.
    assert!(!ok(&filter(Errno, vec![rule(&["execve"], Allow, None)])));
    assert!(!ok(&filter(Allow, vec![rule(&["execveat"], Errno, None)])));
    let mut some_args = rule(&["execveat"], Allow, None);
    some_args.set_args(Some(vec![arg(4, 0, LinuxSeccompOperator::ScmpCmpEq)]));
    assert!(!ok(&filter(Errno, vec![some_args.clone()])));
    // ... unless the default lets the other arguments through.
    assert!(ok(&filter(Allow, vec![some_args])));
}

#[test]
fn flags_map_to_kernel_bits() {
    use LinuxSeccompFilterFlag::*;
    let mut spec = filter(LinuxSeccompAction::ScmpActAllow, vec![]);
    spec.set_flags(Some(vec![SeccompFilterFlagLog, SeccompFilterFlagSpecAllow]));
    assert_eq!(compile(&spec).unwrap().flags, 0b110);
    spec.set_flags(Some(vec![SeccompFilterFlagTsync]));
    assert_eq!(compile(&spec).unwrap().flags, 0b1);
    spec.set_flags(Some(vec![SeccompFilterFlagWaitKillableRecv]));
    let err = compile(&spec).unwrap_err();
    assert!(matches!(err, SeccompError::UnsupportedFlag { .. }), "{err}");
    // With a listener: WAIT_KILLABLE_RECV is taken, and TSYNC comes with TSYNC_ESRCH.
    let notify = rule(&["mkdir"], LinuxSeccompAction::ScmpActNotify, None);
    spec.set_syscalls(Some(vec![notify]));
    spec.set_listener_path(Some("/run/agent.sock".into()));
    assert_eq!(compile(&spec).unwrap().flags, 0b10_1000);
    spec.set_flags(Some(vec![SeccompFilterFlagTsync]));
    assert_eq!(compile(&spec).unwrap().flags, 0b1_1001);
}

#[test]
fn compiles_for_every_little_endian_architecture() {
    use Arch::*;
    let act = LinuxSeccompAction::ScmpActErrno;
    let spec_for = |arch| {
        let mut spec = filter(
            LinuxSeccompAction::ScmpActAllow,
            vec![rule(&["mkdir"], act, None)],
        );
        spec.set_architectures(Some(vec![arch]));
        spec
    };
    let little = [
        ScmpArchNative,
        ScmpArchX86,
        ScmpArchX86_64,
        ScmpArchX32,
        ScmpArchArm,
        ScmpArchAarch64,
        ScmpArchMipsel,
        ScmpArchMipsel64,
        ScmpArchMipsel64n32,
        ScmpArchPpc64le,
        ScmpArchRiscv64,
    ];
    for arch in little {
        assert_program(&compile(&spec_for(arch)).unwrap_or_else(|e| panic!("{arch:?}: {e}")));
    }
    // One filter holds one byte order: big-endian ones are refused with the arch named.
    let err = compile(&spec_for(ScmpArchS390x)).unwrap_err();
    assert!(
        matches!(
            err,
            SeccompError::AddArch {
                arch: ScmpArchS390x,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn docker_profile_resolves_capabilities_and_arches() {
    let names = |p: &LinuxSeccomp, name: &str| -> Vec<LinuxSyscall> {
        let calls = p.syscalls().as_ref().unwrap();
        calls
            .iter()
            .filter(|s| s.names().iter().any(|n| n == name))
            .cloned()
            .collect()
    };
    let plain = profile_for(DOCKER_CAPS, "amd64");
    assert_eq!(plain.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(plain.default_errno_ret(), Some(1));
    assert_eq!(plain.architectures().as_ref().unwrap().len(), 3);
    assert!(names(&plain, "unshare").is_empty());
    assert!(names(&plain, "keyctl").is_empty());
    assert_eq!(names(&plain, "personality").len(), 5);
    assert_eq!(names(&plain, "arch_prctl").len(), 1);
    assert!(names(&plain, "set_tls").is_empty());
    let clone = names(&plain, "clone");
    assert_eq!(clone.len(), 1);
    let clone_arg = clone[0].args().as_ref().unwrap()[0];
    assert_eq!((clone_arg.index(), clone_arg.value()), (0, 0x7e02_0000));
    assert_eq!(clone_arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    assert_eq!(
        names(&plain, "clone3")[0].errno_ret(),
        Some(libc::ENOSYS as u32)
    );

    let admin = profile_for(&[Capability::SysAdmin], "amd64");
    assert_eq!(names(&admin, "unshare").len(), 1);
    assert!(names(&admin, "clone").iter().all(|c| c.args().is_none()));
    assert_eq!(
        names(&admin, "clone3")[0].action(),
        LinuxSeccompAction::ScmpActAllow
    );

    let arm = profile_for(DOCKER_CAPS, "arm64");
    assert_eq!(names(&arm, "set_tls").len(), 1);
    assert!(names(&arm, "arch_prctl").is_empty());
    let s390 = profile_for(DOCKER_CAPS, "s390x");
    assert_eq!(
        names(&s390, "clone")[0].args().as_ref().unwrap()[0].index(),
        1
    );
    assert!(profile_for(DOCKER_CAPS, "386").architectures().is_none());
}

#[test]
fn docker_profile_compiles() {
    for caps in [
        DOCKER_CAPS,
        &[],
        &[Capability::SysAdmin, Capability::SysPtrace],
    ] {
        assert_program(&compile(&docker_default_profile(caps)).unwrap());
    }
}

// Real filters, installed in a fresh copy of this test binary so the test runner is untouched.

const CHILD_ENV: &str = "BERTH_SECCOMP_TEST_CHILD";

/// True in the copy started by [`run_in_child`] for the test `name`.
fn is_child(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// Re-runs only the test `name` of this module in a new process and checks that it passed.
fn run_in_child(name: &str) {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("{module}::{name}"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, name)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child {name} failed: {:?}\n{stdout}\n{stderr}",
        out.status
    );
}

/// Compiles in this (child) process as the parent would, then installs like init.
fn install(spec: &LinuxSeccomp) {
    let program = compile(spec).unwrap();
    nix::sys::prctl::set_no_new_privs().unwrap();
    assert!(
        program.install().unwrap().is_none(),
        "a listener without notify rules"
    );
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
    assert!(status.lines().any(|l| l == "Seccomp:\t2"), "{status}");
}

fn mkdir_errno(path: &std::path::Path) -> Option<i32> {
    std::fs::create_dir(path)
        .err()
        .map(|e| e.raw_os_error().unwrap())
}

#[test]
fn filter_denies_mkdir_with_eperm() {
    if !is_child("filter_denies_mkdir_with_eperm") {
        return run_in_child("filter_denies_mkdir_with_eperm");
    }
    let dir = tempfile::tempdir().unwrap();
    let act = LinuxSeccompAction::ScmpActErrno;
    install(&filter(
        LinuxSeccompAction::ScmpActAllow,
        vec![rule(&["mkdir", "mkdirat"], act, None)],
    ));
    assert_eq!(mkdir_errno(&dir.path().join("x")), Some(libc::EPERM));
    // Everything else still works.
    std::fs::write(dir.path().join("file"), "ok").unwrap();
}

#[test]
fn filter_denies_mkdir_with_a_custom_errno() {
    if !is_child("filter_denies_mkdir_with_a_custom_errno") {
        return run_in_child("filter_denies_mkdir_with_a_custom_errno");
    }
    let dir = tempfile::tempdir().unwrap();
    let act = LinuxSeccompAction::ScmpActErrno;
    let r = rule(&["mkdir", "mkdirat"], act, Some(libc::ENOMEDIUM as u32));
    install(&filter(LinuxSeccompAction::ScmpActAllow, vec![r]));
    assert_eq!(mkdir_errno(&dir.path().join("x")), Some(libc::ENOMEDIUM));
}

#[test]
fn default_errno_with_an_allow_list() {
    if !is_child("default_errno_with_an_allow_list") {
        return run_in_child("default_errno_with_an_allow_list");
    }
    let dir = tempfile::tempdir().unwrap();
    // The docker profile allows what the test runner needs; mkdir is then denied by default.
    let mut spec = docker_default_profile(DOCKER_CAPS);
    let calls = spec.syscalls().clone().unwrap();
    let kept = calls.into_iter().map(|mut s| {
        s.set_names(
            s.names()
                .iter()
                .filter(|n| !n.starts_with("mkdir"))
                .cloned()
                .collect(),
        );
        s
    });
    spec.set_syscalls(Some(kept.filter(|s| !s.names().is_empty()).collect()));
    spec.set_default_errno_ret(Some(libc::EROFS as u32));
    install(&spec);
    assert_eq!(mkdir_errno(&dir.path().join("x")), Some(libc::EROFS));
}

/// Conditions on two arguments are ANDed (lseek: offset and whence); two conditions on the same
/// argument become two rules, ORed, as in runc (ftruncate's length); MASKED_EQ compares
/// `arg & value` with `valueTwo` (fchmod's mode).
#[test]
fn argument_conditions() {
    if !is_child("argument_conditions") {
        return run_in_child("argument_conditions");
    }
    use LinuxSeccompOperator::*;
    let act = LinuxSeccompAction::ScmpActErrno;
    let mut and = rule(&["lseek"], act, Some(libc::EXDEV as u32));
    and.set_args(Some(vec![
        arg(1, 100, ScmpCmpGt),
        arg(2, libc::SEEK_END as u64, ScmpCmpEq),
    ]));
    let mut or = rule(&["ftruncate"], act, Some(libc::ENOTTY as u32));
    or.set_args(Some(vec![arg(1, 10, ScmpCmpLe), arg(1, 1000, ScmpCmpGe)]));
    let mut masked = rule(&["fchmod"], act, Some(libc::EDOM as u32));
    masked.set_args(Some(vec![arg2(1, 0o7, Some(0o5), ScmpCmpMaskedEq)]));
    let mut file = tempfile::tempfile().unwrap();
    install(&filter(
        LinuxSeccompAction::ScmpActAllow,
        vec![and, or, masked],
    ));
    let errno = |r: std::io::Result<()>| r.err().map(|e| e.raw_os_error().unwrap());
    assert_eq!(
        errno(file.seek(SeekFrom::End(200)).map(drop)),
        Some(libc::EXDEV)
    );
    assert_eq!(errno(file.seek(SeekFrom::End(50)).map(drop)), None);
    assert_eq!(errno(file.seek(SeekFrom::Start(200)).map(drop)), None);
    assert_eq!(errno(file.set_len(5)), Some(libc::ENOTTY));
    assert_eq!(errno(file.set_len(2000)), Some(libc::ENOTTY));
    assert_eq!(errno(file.set_len(500)), None);
    let mode = |m| std::fs::Permissions::from_mode(m);
    assert_eq!(errno(file.set_permissions(mode(0o645))), Some(libc::EDOM));
    assert_eq!(errno(file.set_permissions(mode(0o644))), None);
}

#[test]
fn docker_profile_blocks_namespaces_and_mounts() {
    if !is_child("docker_profile_blocks_namespaces_and_mounts") {
        return run_in_child("docker_profile_blocks_namespaces_and_mounts");
    }
    use nix::sched::{unshare, CloneFlags};
    install(&docker_default_profile(DOCKER_CAPS));
    assert_eq!(
        unshare(CloneFlags::CLONE_NEWUTS),
        Err(nix::errno::Errno::EPERM)
    );
    assert_eq!(
        unshare(CloneFlags::CLONE_NEWUSER),
        Err(nix::errno::Errno::EPERM)
    );
    let none: Option<&str> = None;
    let mounted = nix::mount::mount(
        none,
        "/tmp",
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        none,
    );
    assert_eq!(mounted, Err(nix::errno::Errno::EPERM));
    // Plain process creation still works: clone without namespace flags passes the masked rule
    // and clone3 falls back to clone on ENOSYS.
    let status = Command::new("/bin/true").status().unwrap();
    assert!(status.success());
}

#[test]
fn cached_programs_equal_fresh_ones_and_a_corrupt_cache_is_recompiled() {
    let mut spec = LinuxSeccomp::default();
    spec.set_default_action(LinuxSeccompAction::ScmpActAllow);
    spec.set_syscalls(Some(vec![rule(
        &["mknodat", "getcpu"],
        LinuxSeccompAction::ScmpActErrno,
        Some(1),
    )]));
    let fresh = compile(&spec).unwrap();
    let Some(path) = cache_path(&spec) else {
        panic!("no cache key for a plain profile");
    };
    let _ = std::fs::remove_file(&path);
    assert_eq!(compile_cached(&spec).unwrap(), fresh, "first use compiles");
    if !path.exists() {
        berth_sys::skip!(
            "needs a writable {} for the cached half",
            cache_dir().display()
        );
    }
    assert_eq!(
        compile_cached(&spec).unwrap(),
        fresh,
        "second use reads the cache"
    );
    std::fs::write(&path, b"garbage").unwrap();
    assert_eq!(
        compile_cached(&spec).unwrap(),
        fresh,
        "a corrupt entry is ignored"
    );
    let _ = std::fs::remove_file(&path);
}

/// A classic-BPF program as (code, jt, jf, k) records.
fn decode(insns: &[u8]) -> Vec<(u16, u8, u8, u32)> {
    insns
        .chunks_exact(8)
        .map(|i| {
            (
                u16::from_ne_bytes([i[0], i[1]]),
                i[2],
                i[3],
                u32::from_ne_bytes([i[4], i[5], i[6], i[7]]),
            )
        })
        .collect()
}

/// What a seccomp program returns for one syscall: a small interpreter of the classic-BPF
/// instructions libseccomp emits (loads from `struct seccomp_data`, ALU, jumps, returns).
fn run_bpf(prog: &[(u16, u8, u8, u32)], arch: u32, nr: u32, args: &[u64; 6]) -> u32 {
    let word = |o: usize| -> u32 {
        match o {
            0 => nr,
            4 => arch,
            8 | 12 => 0,
            _ => {
                let arg = args[(o - 16) / 8];
                // Little-endian: the low half first.
                if o.is_multiple_of(8) {
                    arg as u32
                } else {
                    (arg >> 32) as u32
                }
            }
        }
    };
    let (mut a, mut x, mut mem, mut pc) = (0u32, 0u32, [0u32; 16], 0usize);
    loop {
        let (code, jt, jf, k) = prog[pc];
        pc += 1;
        let jump = |taken: bool| usize::from(if taken { jt } else { jf });
        match code {
            0x20 => a = word(k as usize),
            0x00 => a = k,
            0x01 => x = k,
            0x60 => a = mem[k as usize],
            0x61 => x = mem[k as usize],
            0x02 => mem[k as usize] = a,
            0x03 => mem[k as usize] = x,
            0x07 => x = a,
            0x87 => a = x,
            0x54 => a &= k,
            0x44 => a |= k,
            0x04 => a = a.wrapping_add(k),
            0x14 => a = a.wrapping_sub(k),
            0x05 => pc += k as usize,
            0x15 => pc += jump(a == k),
            0x25 => pc += jump(a > k),
            0x35 => pc += jump(a >= k),
            0x45 => pc += jump(a & k != 0),
            0x1d => pc += jump(a == x),
            0x2d => pc += jump(a > x),
            0x3d => pc += jump(a >= x),
            0x4d => pc += jump(a & x != 0),
            0x06 => return k,
            0x16 => return a,
            _ => panic!("opcode {code:#x} at {}", pc - 1),
        }
    }
}

#[test]
fn the_tree_layout_decides_every_syscall_as_the_linear_one() {
    const X86_64: u32 = 0xc000_003e;
    const I386: u32 = 0x4000_0003;
    const AARCH64: u32 = 0xc000_00b7;
    const X32_BIT: u32 = 0x4000_0000;
    // The values the Docker profile's conditions look at (clone's namespace flags,
    // personality's, socket's AF_VSOCK) and their neighbours, in every argument at once.
    let values = [
        0,
        u64::MAX,
        0x1000_0000,
        0x7e02_0000,
        0x8,
        0x20008,
        0xffff_ffff,
        39,
        40,
        41,
        1 << 32,
    ];
    let args: Vec<[u64; 6]> = values.iter().map(|v| [*v; 6]).collect();
    for caps in [DOCKER_CAPS, &[], &[Capability::SysAdmin]] {
        let spec = docker_default_profile(caps);
        let linear = compile_as(&spec, Layout::Linear).unwrap();
        let tree = compile_as(&spec, Layout::Tree).unwrap();
        assert_ne!(linear.insns, tree.insns, "the tree is another program");
        let compact = layout::compact(&tree.insns).expect("the tree laid out again");
        assert_eq!(compile(&spec).unwrap().insns, compact);
        let (linear, tree) = (decode(&linear.insns), decode(&tree.insns));
        // The interpreter judges as the kernel: mkdir (83) allowed, kexec_load (246) refused,
        // a foreign architecture killed (libseccomp's default, the thread).
        assert_eq!(
            run_bpf(&tree, X86_64, 83, &args[0]),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(
            run_bpf(&tree, X86_64, 246, &args[0]),
            libc::SECCOMP_RET_ERRNO | 1
        );
        assert_eq!(
            run_bpf(&tree, AARCH64, 83, &args[0]),
            libc::SECCOMP_RET_KILL_THREAD
        );
        for (arch, base) in [(X86_64, 0), (X86_64, X32_BIT), (I386, 0), (AARCH64, 0)] {
            for nr in (0..600).map(|n| base + n).chain([u32::MAX, X32_BIT - 1]) {
                for a in &args {
                    assert_eq!(
                        run_bpf(&linear, arch, nr, a),
                        run_bpf(&tree, arch, nr, a),
                        "arch {arch:#x} nr {nr:#x} args {a:x?}"
                    );
                }
            }
        }
    }
}

/// Numbers below `n` from a fixed seed (xorshift64): the same sequence at every run.
fn xorshift(mut state: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    }
}

/// The syscall numbers and argument values worth asking a program about: every number of the
/// native, x32 and compat tables (and past them), every constant the program compares with and
/// its neighbours, in every argument, with high halves that do and do not matter.
fn probes(prog: &[(u16, u8, u8, u32)]) -> (Vec<u32>, Vec<[u64; 6]>) {
    const X32_BIT: u32 = 0x4000_0000;
    let mut consts: Vec<u32> = prog.iter().map(|i| i.3).collect();
    consts.sort_unstable();
    consts.dedup();
    let mut nrs: Vec<u32> = (0..1100).chain((0..1100).map(|n| X32_BIT + n)).collect();
    for &k in &consts {
        nrs.extend([k.wrapping_sub(1), k, k.wrapping_add(1)]);
    }
    nrs.extend([u32::MAX, X32_BIT - 1, 0x8000_0000]);
    nrs.sort_unstable();
    nrs.dedup();
    let mut values: Vec<u64> = vec![0, 1, u64::MAX, 0xffff_ffff, 1 << 32];
    for &k in &consts {
        let k = u64::from(k);
        values.extend([
            k,
            k.wrapping_sub(1),
            k + 1,
            k | (1 << 32),
            k | (0xffff_ffff << 32),
        ]);
    }
    // A fixed pseudo-random walk over them, the same at every run.
    let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
    let mut args: Vec<[u64; 6]> = values.iter().take(5).map(|v| [*v; 6]).collect();
    for _ in 0..12 {
        args.push(std::array::from_fn(|_| {
            values[next(values.len() as u64) as usize]
        }));
    }
    (nrs, args)
}

/// A program and its relayout answer alike for every probe.
fn assert_same_answers(label: &str, original: &[u8], compact: &[u8]) {
    const ARCHES: [u32; 6] = [
        0xc000_003e,
        0x4000_0003,
        0xc000_00b7,
        0x4000_0028,
        0,
        u32::MAX,
    ];
    let (original, compact) = (decode(original), decode(compact));
    let (nrs, args) = probes(&original);
    for arch in ARCHES {
        for &nr in &nrs {
            for a in &args {
                assert_eq!(
                    run_bpf(&original, arch, nr, a),
                    run_bpf(&compact, arch, nr, a),
                    "{label}: arch {arch:#x} nr {nr:#x} args {a:x?}"
                );
            }
        }
    }
}

#[test]
fn the_compact_layout_answers_every_syscall_as_libseccomps_program() {
    use LinuxSeccompAction::*;
    use LinuxSeccompOperator::*;
    let mut specs: Vec<(String, LinuxSeccomp)> = Vec::new();
    for caps in [DOCKER_CAPS, &[], &[Capability::SysAdmin]] {
        specs.push((format!("docker {caps:?}"), docker_default_profile(caps)));
    }
    // Conditions of every kind, several actions, rules on one syscall with several values.
    let mut conditions = filter(
        ScmpActErrno,
        vec![
            rule(
                &["read", "write", "exit_group", "futex"],
                ScmpActAllow,
                None,
            ),
            rule(&["kill"], ScmpActKillProcess, None),
            rule(&["ptrace"], ScmpActTrap, None),
            rule(&["getpid"], ScmpActLog, None),
            rule(&["clone3"], ScmpActErrno, Some(38)),
        ],
    );
    let mut more = conditions.syscalls().clone().unwrap_or_default();
    for (index, value, op) in [
        (0, 40, ScmpCmpNe),
        (1, 5, ScmpCmpLt),
        (2, 7, ScmpCmpLe),
        (0, 1 << 33, ScmpCmpGe),
        (3, 0xffff_ffff, ScmpCmpGt),
        (0, 8, ScmpCmpEq),
    ] {
        let mut r = rule(&["socket", "personality", "mmap"], ScmpActAllow, None);
        r.set_args(Some(vec![arg(index, value, op)]));
        more.push(r);
    }
    let mut masked = rule(&["clone", "unshare"], ScmpActAllow, None);
    masked.set_args(Some(vec![arg2(0, 0x7e02_0000, Some(0), ScmpCmpMaskedEq)]));
    more.push(masked);
    conditions.set_syscalls(Some(more));
    conditions.set_architectures(Some(vec![Arch::ScmpArchX86, Arch::ScmpArchX32]));
    specs.push(("conditions".into(), conditions));
    // Default allow, a deny list, foreign architectures besides the native one.
    let mut deny = filter(
        ScmpActAllow,
        vec![rule(
            &["mount", "umount2", "reboot", "kexec_load"],
            ScmpActErrno,
            Some(1),
        )],
    );
    deny.set_architectures(Some(vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]));
    specs.push(("deny list".into(), deny));
    for (label, spec) in &specs {
        for layout in [Layout::Tree, Layout::Linear] {
            let original = compile_as(spec, layout).unwrap();
            // Shorter or not (a linear program's argument checks fall through to the rest of
            // its list, which then stays; a short tree gains nothing), the same answers.
            let again = layout::laid_out(&original.insns)
                .unwrap_or_else(|| panic!("{label} {layout:?}: not laid out again"));
            assert_same_answers(&format!("{label} {layout:?}"), &original.insns, &again);
            if let Some(compact) = layout::compact(&original.insns) {
                assert_eq!(compact, again);
                assert!(compact.len() < original.insns.len());
            }
        }
    }
    // Docker's: about half the instructions of libseccomp's tree.
    let tree = compile_as(&docker_default_profile(DOCKER_CAPS), Layout::Tree).unwrap();
    let compact = compile(&docker_default_profile(DOCKER_CAPS)).unwrap();
    assert!(
        compact.len() * 10 < tree.len() * 6,
        "{} of {}",
        compact.len(),
        tree.len()
    );
}

#[test]
fn a_program_the_layout_does_not_follow_is_left_alone() {
    let insn = |code: u16, jt: u8, jf: u8, k: u32| {
        let mut b = code.to_ne_bytes().to_vec();
        b.extend([jt, jf]);
        b.extend(k.to_ne_bytes());
        b
    };
    // A bit test on the syscall number, a jump past the end, a truncated record, nothing.
    let bit_test = [
        insn(0x20, 0, 0, 0),
        insn(0x45, 0, 1, 1),
        insn(0x06, 0, 0, 0),
        insn(0x06, 0, 0, 1),
    ]
    .concat();
    assert_eq!(layout::compact(&bit_test), None);
    let past_end = [
        insn(0x20, 0, 0, 0),
        insn(0x15, 9, 0, 1),
        insn(0x06, 0, 0, 0),
    ]
    .concat();
    assert_eq!(layout::compact(&past_end), None);
    assert_eq!(layout::laid_out(&past_end[..12]), None);
    assert_eq!(layout::compact(&[]), None);
    // Scratch memory behind an argument load: the kernel's in-order check of stores before
    // loads could refuse a copy without the instructions between (an adversary's case).
    let scratch = [
        insn(0x20, 0, 0, 0),
        insn(0x15, 0, 4, 5),
        insn(0x20, 0, 0, 16),
        insn(0x02, 0, 0, 0),
        insn(0x60, 0, 0, 0),
        insn(0x16, 0, 0, 0),
        insn(0x06, 0, 0, 0x7fff_0000),
    ]
    .concat();
    assert_eq!(layout::laid_out(&scratch), None);
    // Arbitrary programs: no panic, and whatever comes back answers as the original does.
    let codes = [
        0x20u16, 0x00, 0x54, 0x05, 0x15, 0x25, 0x35, 0x45, 0x06, 0x16,
    ];
    let mut next = xorshift(0x2545_f491_4f6c_dd1d);
    for _ in 0..3000 {
        let len = 1 + next(40) as usize;
        let mut prog = Vec::new();
        for pc in 0..len {
            let code = codes[next(codes.len() as u64) as usize];
            let left = (len - pc - 1) as u64;
            let (jt, jf) = (next(left + 2) as u8, next(left + 2) as u8);
            let k = match code {
                0x20 => [0, 4, 16, 20][next(4) as usize],
                0x05 => next(left + 2) as u32,
                _ => [0, 1, 2, 0xc000_003e, 0x4000_0003, u32::MAX][next(6) as usize],
            };
            prog.push(insn(code, jt, jf, k));
        }
        // Every program ends in a return, as the kernel requires.
        prog.push(insn(0x06, 0, 0, 0x7fff_0000));
        let prog = prog.concat();
        if let Some(again) = layout::laid_out(&prog) {
            assert_same_answers("random", &prog, &again);
        }
    }
}
