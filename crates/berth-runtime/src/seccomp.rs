//! Seccomp: the spec's `LinuxSeccomp` compiled with libseccomp in the parent, before any fork,
//! into a raw classic-BPF program that the container's init only has to install.
//!
//! Compiling early keeps libseccomp (which allocates and may fail in many ways) out of the
//! child, and turns every configuration error into a typed error before anything is created.
//! The rules follow runc's `libcontainer/seccomp`: syscall names unknown to libseccomp are
//! skipped, rules whose action is the default action are dropped, and several conditions on the
//! same argument are split into one rule per condition. A filter with `SCMP_ACT_NOTIFY` rules
//! is loaded with a listener, which goes to the seccomp agent at `listenerPath` (agent.rs).

pub mod agent;
mod docker_default;
mod layout;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Read};

use libseccomp::error::SeccompError as LibError;
use libseccomp::ScmpSyscall;
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

pub use docker_default::docker_default_profile;

/// The kernel's limit on one classic-BPF program (`BPF_MAXINSNS`).
const MAX_INSNS: usize = 4096;
/// Syscalls take at most six arguments, numbered 0 to 5.
const MAX_ARGS: usize = 6;
/// What we ask of the export pipe: far more than any program the kernel accepts (32 KiB).
const EXPORT_PIPE_SIZE: i32 = 1 << 20;

/// A compiled filter: what init passes to `seccomp(SECCOMP_SET_MODE_FILTER, flags, ...)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeccompProgram {
    /// `struct sock_filter` records, 8 bytes each, in native byte order.
    pub insns: Vec<u8>,
    /// `SECCOMP_FILTER_FLAG_*` bits from the spec's `flags`.
    pub flags: u32,
}

impl SeccompProgram {
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.insns.len() / berth_sys::seccomp::SOCK_FILTER_SIZE
    }

    /// True when the program has no instruction (never the case for a compiled one).
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// True when the program has `SCMP_ACT_NOTIFY` rules: loading it gives a listener for the
    /// seccomp agent.
    pub fn has_listener(&self) -> bool {
        u64::from(self.flags) & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER != 0
    }

    /// Installs the program on the calling thread, and returns its listener if it has one.
    /// Runs in the container's init after fork: it does not allocate. The caller must have set
    /// `no_new_privs` or still hold `CAP_SYS_ADMIN`.
    pub fn install(&self) -> Result<Option<std::os::fd::OwnedFd>, SeccompError> {
        berth_sys::seccomp::install_filter(&self.insns, self.flags)
            .map_err(|source| SeccompError::Install { source })
    }
}

/// Why a seccomp filter could not be compiled or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    // runc's words first: its init writes to its parent after loading the filter, so it
    // refuses what would have that write wait on an agent that has no listener yet.
    #[error(
        "SCMP_ACT_NOTIFY cannot be used as default action: notify chosen syscalls, and give \
         the default another action"
    )]
    NotifyDefault,
    /// `write` for runc's reason; `sendmsg` because berth's init hands the listener over with
    /// it.
    #[error(
        "SCMP_ACT_NOTIFY cannot be used for the {syscall} syscall, which the runtime needs \
         before the seccomp agent has the listener; give it another action"
    )]
    NotifyHandover { syscall: String },
    #[error(
        "listenerPath is not set: SCMP_ACT_NOTIFY needs a seccomp agent's socket in \
         linux.seccomp.listenerPath"
    )]
    NoListenerPath,
    #[error(
        "seccomp: flag {flag} is unsupported without SCMP_ACT_NOTIFY rules (the kernel takes \
         it with a listener only); drop it from the config"
    )]
    UnsupportedFlag { flag: String },
    #[error("seccomp: errnoRet {value} of {context} does not fit the kernel's 16-bit return data")]
    ErrnoRetOutOfRange { context: String, value: u32 },
    #[error(
        "seccomp: argument index {index} of the rule for syscall {syscall:?} is out of range: \
         syscalls have arguments 0 to 5"
    )]
    ArgIndexOutOfRange { syscall: String, index: usize },
    #[error("seccomp: seccomp_init with default action {action:?}: {source}")]
    Init {
        action: ScmpAction,
        source: LibError,
    },
    #[error(
        "seccomp: seccomp_arch_add of architecture {arch:?}: {source} (one filter holds \
         architectures of one byte order only)"
    )]
    AddArch { arch: Arch, source: LibError },
    #[error("seccomp: seccomp_rule_add for syscall {syscall:?} with action {action:?}: {source}")]
    AddRule {
        syscall: String,
        action: ScmpAction,
        source: LibError,
    },
    #[error("seccomp: creating the pipe the filter is exported into (pipe2): {source}")]
    ExportPipe { source: nix::Error },
    #[error("seccomp: seccomp_export_bpf: {source}")]
    Export { source: LibError },
    #[error("seccomp: reading the exported filter back from its pipe: {source}")]
    ReadBack { source: io::Error },
    #[error(
        "seccomp: the compiled filter has {insns} or more instructions; the kernel accepts at \
         most {MAX_INSNS}: shorten the syscall list"
    )]
    TooLong { insns: usize },
    #[error("seccomp: the exported filter is {len} bytes, not whole 8-byte instructions")]
    Truncated { len: usize },
    #[error(
        "seccomp(SECCOMP_SET_MODE_FILTER): {source}; the process needs no_new_privs or \
         CAP_SYS_ADMIN"
    )]
    Install { source: io::Error },
}

/// Where compiled filters are kept between runs: root's only (or the rootless user's),
/// cleared at boot.
fn cache_dir() -> std::path::PathBuf {
    berth_sys::rootless::run_dir().join("seccomp")
}

/// [`compile`], through a cache of compiled programs keyed by the SHA-256 of the profile and
/// of the libseccomp version. Compiling Docker's default profile costs milliseconds on every
/// container start; reading it back costs microseconds. Any cache trouble falls back to
/// compiling (a cache is never a reason to fail).
pub fn compile_cached(spec: &LinuxSeccomp) -> Result<SeccompProgram, SeccompError> {
    let Some(path) = cache_path(spec) else {
        return compile(spec);
    };
    if let Some(program) = read_cached(&path) {
        return Ok(program);
    }
    let program = compile(spec)?;
    let mut data = program.flags.to_le_bytes().to_vec();
    data.extend_from_slice(&program.insns);
    let _ = write_cached(&path, &data);
    Ok(program)
}

fn cache_path(spec: &LinuxSeccomp) -> Option<std::path::PathBuf> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(spec).ok()?);
    let v = libseccomp::ScmpVersion::current().ok()?;
    hasher.update(format!(
        "berth-seccomp-3 libseccomp {}.{}.{}",
        v.major, v.minor, v.micro
    ));
    let key: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(cache_dir().join(format!("{key}.bpf")))
}

fn read_cached(path: &std::path::Path) -> Option<SeccompProgram> {
    let data = std::fs::read(path).ok()?;
    let (flags, insns) = data.split_at_checked(4)?;
    let sz = berth_sys::seccomp::SOCK_FILTER_SIZE;
    if insns.is_empty() || insns.len() % sz != 0 || insns.len() / sz > MAX_INSNS {
        return None;
    }
    Some(SeccompProgram {
        insns: insns.to_vec(),
        flags: u32::from_le_bytes(flags.try_into().ok()?),
    })
}

fn write_cached(path: &std::path::Path, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(cache_dir())?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// True when the profile lets `name` through whatever its arguments: every rule naming it
/// allows (or logs) it, and either one of those rules has no argument condition or the default
/// action allows it too. Conservative: a rule this cannot judge makes it false.
pub fn allows_unconditionally(spec: &LinuxSeccomp, name: &str) -> bool {
    let allows = |a: LinuxSeccompAction| {
        matches!(
            a,
            LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
        )
    };
    let rules: Vec<&LinuxSyscall> = spec
        .syscalls()
        .iter()
        .flatten()
        .filter(|r| r.names().iter().any(|n| n == name))
        .collect();
    rules.iter().all(|r| allows(r.action()))
        && (allows(spec.default_action())
            || rules
                .iter()
                .any(|r| r.args().as_ref().is_none_or(|a| a.is_empty())))
}

/// How libseccomp lays the program out (`SCMP_FLTATR_CTL_OPTIMIZE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// libseccomp's default: one comparison after another, each syscall in turn.
    Linear,
    /// A binary search on the syscall number in each architecture's section.
    Tree,
}

/// Compiles `spec` into a BPF program for the native architecture plus `spec.architectures`.
///
/// Laid out as a binary tree: the same filter as the default linear one, at about a third of
/// the cost to load. When a filter is attached the kernel runs it for every syscall number of
/// the native and compat architectures to cache which are always allowed
/// (`seccomp_cache_prepare`, with interrupts off), and a linear program walks half its length
/// for each: Docker's default profile (980 instructions) took ~0.75 ms to load here, its tree
/// (1,223 instructions) ~0.25 ms, the JIT then most of it. A container's every syscall that the
/// cache does not answer gets the same shorter walk. A tree too long for the kernel falls back
/// to the linear layout, which is shorter. Either is then laid out again as a search over
/// intervals of syscall numbers (layout.rs): Docker's profile in 571 instructions, installed in
/// 0.09 ms where libseccomp's tree took 0.17.
pub fn compile(spec: &LinuxSeccomp) -> Result<SeccompProgram, SeccompError> {
    let program = match compile_as(spec, Layout::Tree) {
        Err(SeccompError::TooLong { .. }) => compile_as(spec, Layout::Linear),
        compiled => compiled,
    }?;
    // The same answers in about half the instructions (layout.rs), installed in about half the
    // time.
    match layout::compact(&program.insns) {
        Some(insns) => Ok(SeccompProgram { insns, ..program }),
        None => Ok(program),
    }
}

fn compile_as(spec: &LinuxSeccomp, layout: Layout) -> Result<SeccompProgram, SeccompError> {
    if spec.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyDefault);
    }
    let default = action(
        spec.default_action(),
        spec.default_errno_ret(),
        "defaultAction",
    )?;
    let notify = check_notify(spec)?;
    let flags = filter_flags(spec.flags().as_deref().unwrap_or_default(), notify)?;
    let mut ctx = ScmpFilterContext::new(default).map_err(|source| SeccompError::Init {
        action: default,
        source,
    })?;
    if layout == Layout::Tree {
        // libseccomp before 2.5 has no such attribute: it stays linear.
        let _ = ctx.set_ctl_optimize(2);
    }
    for &arch in spec.architectures().iter().flatten() {
        ctx.add_arch(scmp_arch(arch))
            .map_err(|source| SeccompError::AddArch { arch, source })?;
    }
    for rule in spec.syscalls().iter().flatten() {
        add_rule(&mut ctx, rule, default)?;
    }
    let insns = export(&ctx)?;
    Ok(SeccompProgram { insns, flags })
}

/// Maps an OCI action to libseccomp's; ERRNO and TRACE default to EPERM like runc.
fn action(
    act: LinuxSeccompAction,
    errno_ret: Option<u32>,
    context: &str,
) -> Result<ScmpAction, SeccompError> {
    let ret = match errno_ret {
        None => libc::EPERM as u16,
        Some(value) => u16::try_from(value).map_err(|_| SeccompError::ErrnoRetOutOfRange {
            context: context.to_string(),
            value,
        })?,
    };
    Ok(match act {
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(ret)),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(ret),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
    })
}

/// Whether the profile has `SCMP_ACT_NOTIFY` rules, which need an agent, and none for the
/// syscalls that hand the listener over.
fn check_notify(spec: &LinuxSeccomp) -> Result<bool, SeccompError> {
    let notified: Vec<&LinuxSyscall> = spec
        .syscalls()
        .iter()
        .flatten()
        .filter(|r| r.action() == LinuxSeccompAction::ScmpActNotify)
        .collect();
    let names = notified.iter().flat_map(|r| r.names());
    if let Some(name) = names.into_iter().find(|n| *n == "write" || *n == "sendmsg") {
        return Err(SeccompError::NotifyHandover {
            syscall: name.clone(),
        });
    }
    let no_path = spec
        .listener_path()
        .as_ref()
        .is_none_or(|p| p.as_os_str().is_empty());
    if !notified.is_empty() && no_path {
        return Err(SeccompError::NoListenerPath);
    }
    Ok(!notified.is_empty())
}

/// The spec's flags as `SECCOMP_FILTER_FLAG_*` bits, with a listener when `notify`.
fn filter_flags(flags: &[LinuxSeccompFilterFlag], notify: bool) -> Result<u32, SeccompError> {
    let mut bits = if notify {
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32
    } else {
        0
    };
    for flag in flags {
        bits |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // The kernel only accepts it together with NEW_LISTENER, i.e. with NOTIFY.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv if notify => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::UnsupportedFlag {
                    flag: flag.to_string(),
                })
            }
        } as u32;
    }
    if notify && bits & libc::SECCOMP_FILTER_FLAG_TSYNC as u32 != 0 {
        // The kernel takes TSYNC with a listener only if a thread it cannot synchronise is
        // told as ESRCH (the listener's descriptor being the answer).
        bits |= libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH as u32;
    }
    Ok(bits)
}

fn scmp_arch(arch: Arch) -> ScmpArch {
    match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

fn compare(arg: &LinuxSeccompArg) -> ScmpArgCompare {
    // The index was checked against MAX_ARGS, so the cast cannot truncate.
    let index = arg.index() as u32;
    let op = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        // As in runc: `value` is the mask and `valueTwo` the datum, `(arg & value) == valueTwo`.
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            return ScmpArgCompare::new(
                index,
                ScmpCompareOp::MaskedEqual(arg.value()),
                arg.value_two().unwrap_or(0),
            )
        }
    };
    ScmpArgCompare::new(index, op, arg.value())
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    rule: &LinuxSyscall,
    default: ScmpAction,
) -> Result<(), SeccompError> {
    let names = rule.names().join(",");
    let act = action(
        rule.action(),
        rule.errno_ret(),
        &format!("syscalls {names}"),
    )?;
    let args = rule.args().as_deref().unwrap_or_default();
    if let Some(bad) = args.iter().find(|a| a.index() >= MAX_ARGS) {
        return Err(SeccompError::ArgIndexOutOfRange {
            syscall: names,
            index: bad.index(),
        });
    }
    // libseccomp refuses rules that repeat the default action, and they change nothing.
    if act == default {
        return Ok(());
    }
    let conditions: Vec<ScmpArgCompare> = args.iter().map(compare).collect();
    // libseccomp cannot AND two conditions on one argument: like runc, fall back to one rule per
    // condition (which ORs them) when an argument index repeats.
    let mut seen = [false; MAX_ARGS];
    let repeats = args
        .iter()
        .any(|a| std::mem::replace(&mut seen[a.index()], true));
    for name in rule.names() {
        // Like runc, a name this libseccomp or architecture does not know is not an error: the
        // same profile serves older and newer kernels.
        let Ok(syscall) = ScmpSyscall::from_name(name) else {
            continue;
        };
        let added = if repeats {
            conditions
                .iter()
                .try_for_each(|c| ctx.add_rule_conditional(act, syscall, &[*c]).map(drop))
        } else {
            ctx.add_rule_conditional(act, syscall, &conditions)
                .map(drop)
        };
        added.map_err(|source| SeccompError::AddRule {
            syscall: name.clone(),
            action: act,
            source,
        })?;
    }
    Ok(())
}

/// Exports the program through a pipe whose write end does not block: libseccomp writes it in one `write(2)`, so
/// a program larger than the pipe comes back cut to the pipe's size instead of blocking us
/// forever; that size (64 KiB at least) is twice what the kernel accepts, so a full pipe means
/// "too long".
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>, SeccompError> {
    let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|source| SeccompError::ExportPipe { source })?;
    // Only the write end is non-blocking: the read end must wait for EOF, which comes late if a
    // fork elsewhere briefly holds a copy of the write end before its exec closes it.
    fcntl(&write_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .map_err(|source| SeccompError::ExportPipe { source })?;
    // Best effort: the default 64 KiB already holds any program the kernel would load.
    let _ = fcntl(&write_end, FcntlArg::F_SETPIPE_SZ(EXPORT_PIPE_SIZE));
    let capacity = fcntl(&write_end, FcntlArg::F_GETPIPE_SZ)
        .map_err(|source| SeccompError::ExportPipe { source })?;
    ctx.export_bpf(&write_end)
        .map_err(|source| SeccompError::Export { source })?;
    drop(write_end);
    let mut insns = Vec::new();
    File::from(read_end)
        .read_to_end(&mut insns)
        .map_err(|source| SeccompError::ReadBack { source })?;
    let record = berth_sys::seccomp::SOCK_FILTER_SIZE;
    if usize::try_from(capacity).is_ok_and(|c| insns.len() >= c) || insns.len() > MAX_INSNS * record
    {
        return Err(SeccompError::TooLong {
            insns: insns.len() / record,
        });
    }
    if insns.is_empty() || !insns.len().is_multiple_of(record) {
        return Err(SeccompError::Truncated { len: insns.len() });
    }
    Ok(insns)
}
