//! berth-probe: a static program run inside a container that reports what it sees as JSON.
//!
//! With no argument it prints one JSON object describing the process (ids, namespaces,
//! capabilities, seccomp, mounts, cgroup, limits, fds, clocks). Subcommands let tests act from
//! inside (`cat`, `write`, `mkdir`, `exit`, `sleep`, `alloc`, `forkbomb`, `signal-wait`,
//! `ptrace`). Everything comes from /proc, std and nix's safe wrappers: the probe has no
//! unsafe code, and it builds statically (`-C target-feature=+crt-static`) and runs in any
//! rootfs.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

const USAGE: &str = "usage: berth-probe [cat PATH | write PATH TEXT | mkdir PATH | exit N | \
sleep SECS | alloc MB | forkbomb N | signal-wait |
ptrace PID stop|run]
  no argument: print what the process sees as one JSON object";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] => {
            println!("{}", report());
            ExitCode::SUCCESS
        }
        ["cat", path] => outcome(std::fs::read(path).and_then(|b| io::stdout().write_all(&b))),
        ["write", path, text] => done(std::fs::write(path, text)),
        ["mkdir", path] => done(std::fs::create_dir(path)),
        ["exit", n] => match n.parse::<u8>() {
            Ok(n) => ExitCode::from(n),
            Err(_) => usage(),
        },
        ["sleep", secs] => match secs
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
        {
            Some(secs) => {
                std::thread::sleep(Duration::from_secs_f64(secs));
                ExitCode::SUCCESS
            }
            None => usage(),
        },
        ["alloc", mb] => match mb.parse::<usize>() {
            Ok(mb) => alloc(mb),
            Err(_) => usage(),
        },
        ["forkbomb", n] => match n.parse::<usize>() {
            Ok(n) => forkbomb(n),
            Err(_) => usage(),
        },
        ["signal-wait"] => signal_wait(),
        ["ptrace", pid, how @ ("stop" | "run")] => match pid.parse::<i32>() {
            Ok(pid) => ptrace(pid, *how == "stop"),
            Err(_) => usage(),
        },
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}

/// Prints "ok" or the failure, and says so in the exit code.
fn done(result: io::Result<()>) -> ExitCode {
    outcome(result.map(|()| println!("ok")))
}

/// On failure prints `{"error", "errno", "errno_name"}` on stdout and exits 1.
fn outcome(result: io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let errno = e.raw_os_error();
            let name = errno.map(errno_name);
            println!(
                "{}",
                json!({ "error": e.to_string(), "errno": errno, "errno_name": name })
            );
            ExitCode::from(1)
        }
    }
}

fn errno_name(errno: i32) -> &'static str {
    const NAMES: &[(i32, &str)] = &[
        (1, "EPERM"),
        (2, "ENOENT"),
        (3, "ESRCH"),
        (4, "EINTR"),
        (5, "EIO"),
        (9, "EBADF"),
        (11, "EAGAIN"),
        (12, "ENOMEM"),
        (13, "EACCES"),
        (14, "EFAULT"),
        (16, "EBUSY"),
        (17, "EEXIST"),
        (18, "EXDEV"),
        (19, "ENODEV"),
        (20, "ENOTDIR"),
        (21, "EISDIR"),
        (22, "EINVAL"),
        (24, "EMFILE"),
        (25, "ENOTTY"),
        (27, "EFBIG"),
        (28, "ENOSPC"),
        (30, "EROFS"),
        (36, "ENAMETOOLONG"),
        (38, "ENOSYS"),
        (39, "ENOTEMPTY"),
        (40, "ELOOP"),
        (95, "EOPNOTSUPP"),
        (122, "EDQUOT"),
        (123, "ENOMEDIUM"),
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == errno)
        .map_or("E?", |(_, name)| name)
}

/// Allocates `mb` MiB and writes to every page so it is really charged to the cgroup.
fn alloc(mb: usize) -> ExitCode {
    let Some(len) = mb.checked_mul(1 << 20) else {
        return usage();
    };
    let mut memory = vec![0u8; len];
    for page in memory.chunks_mut(4096) {
        page[0] = 1;
    }
    std::hint::black_box(&memory);
    println!("{}", json!({ "allocated_mb": mb }));
    ExitCode::SUCCESS
}

/// Starts up to `n` copies of itself sleeping, reports how many started, then ends them.
fn forkbomb(n: usize) -> ExitCode {
    let me = std::env::current_exe().unwrap_or_else(|_| "/bin/berth-probe".into());
    let mut children: Vec<Child> = Vec::new();
    let mut error = None;
    for _ in 0..n {
        match Command::new(&me).args(["sleep", "60"]).spawn() {
            Ok(child) => children.push(child),
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    let spawned = children.len();
    for mut child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    println!(
        "{}",
        json!({ "requested": n, "spawned": spawned, "error": error })
    );
    ExitCode::SUCCESS
}

/// Prints "ready", then exits 0 on SIGTERM.
///
/// std cannot install a signal handler without unsafe code, and a container's PID 1 without a
/// handler never even sees SIGTERM. A shell can: the probe replaces itself with one that traps
/// TERM (keeping the pid, so it stays PID 1). Without /bin/sh it waits for EOF on stdin.
fn signal_wait() -> ExitCode {
    // A foreground sleep: a background one would need /dev/null, and the trap runs at most
    // 0.1 s after the signal.
    const SCRIPT: &str =
        "trap 'echo got SIGTERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done";
    if Path::new("/bin/sh").exists() {
        let err = Command::new("/bin/sh").args(["-c", SCRIPT]).exec();
        eprintln!("berth-probe: exec /bin/sh for signal-wait: {err}");
    }
    eprintln!("berth-probe: no /bin/sh: cannot catch SIGTERM, waiting for EOF on stdin instead");
    println!("ready");
    let _ = io::stdout().flush();
    let mut sink = Vec::new();
    let _ = io::stdin().read_to_end(&mut sink);
    ExitCode::SUCCESS
}

/// Attaches to `pid` with ptrace and, with `stop`, leaves it in a group-stop (as a debugger's
/// SIGSTOP does, which its real parent is told about too); otherwise lets it run traced,
/// passing its signals on, and once it exits never collects the exit, so its real parent
/// cannot reap it. Prints `{"traced": pid, "state": ...}` at the stop or the exit, then holds
/// on until killed: what a container granted CAP_SYS_PTRACE can do to its own init.
fn ptrace(pid: i32, stop: bool) -> ExitCode {
    use nix::sys::ptrace;
    use nix::sys::signal::Signal;
    use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
    let pid = nix::unistd::Pid::from_raw(pid);
    let traced = (|| {
        ptrace::attach(pid)?;
        waitpid(pid, Some(WaitPidFlag::__WALL))?;
        if stop {
            ptrace::cont(pid, Signal::SIGSTOP)?;
            return waitpid(pid, Some(WaitPidFlag::__WALL)).map(|s| format!("{s:?}"));
        }
        // The attach's own SIGSTOP is swallowed; every later signal goes on to the tracee.
        ptrace::cont(pid, None)?;
        loop {
            let peek = WaitPidFlag::WEXITED | WaitPidFlag::WSTOPPED | WaitPidFlag::WNOWAIT;
            match waitid(Id::Pid(pid), peek | WaitPidFlag::__WALL)? {
                s @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => {
                    return Ok(format!("{s:?}"))
                }
                _ => match waitpid(pid, Some(WaitPidFlag::__WALL))? {
                    WaitStatus::Stopped(_, sig) => ptrace::cont(pid, sig)?,
                    _ => ptrace::cont(pid, None)?,
                },
            }
        }
    })();
    match traced {
        Ok(state) => println!("{}", json!({ "traced": pid.as_raw(), "state": state })),
        Err(e) => return outcome(Err(e.into())),
    }
    let _ = io::stdout().flush();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn read_trimmed(path: &str) -> Value {
    read(path).map_or(Value::Null, |s| Value::from(s.trim_end_matches('\n')))
}

/// `/proc/self/status` as field name -> value.
fn status() -> BTreeMap<String, String> {
    let text = read("/proc/self/status").unwrap_or_default();
    let fields = text.lines().filter_map(|l| l.split_once(':'));
    fields
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn numbers(field: Option<&String>) -> Vec<u64> {
    field.map_or(Vec::new(), |v| {
        v.split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect()
    })
}

fn report() -> Value {
    let status = status();
    let field = |name: &str| {
        status
            .get(name)
            .map_or(Value::Null, |v| Value::from(v.as_str()))
    };
    let number = |name: &str| {
        numbers(status.get(name))
            .first()
            .map_or(Value::Null, |&n| n.into())
    };
    let uid = numbers(status.get("Uid"));
    let gid = numbers(status.get("Gid"));
    let caps: Map<String, Value> = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .iter()
        .map(|c| (c.to_string(), field(c)))
        .collect();
    json!({
        "pid": std::process::id(),
        "ppid": number("PPid"),
        "uid": uid.first(), "euid": uid.get(1),
        "gid": gid.first(), "egid": gid.get(1),
        "groups": numbers(status.get("Groups")),
        "hostname": read_trimmed("/proc/sys/kernel/hostname"),
        "domainname": read_trimmed("/proc/sys/kernel/domainname"),
        "cwd": std::env::current_dir().ok().map(|p| p.display().to_string()),
        "umask": field("Umask"),
        "env": std::env::vars_os()
            .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
            .collect::<Vec<_>>(),
        "ns": namespaces(),
        "caps": caps,
        "no_new_privs": number("NoNewPrivs"),
        "seccomp": number("Seccomp"),
        "mounts": mounts(),
        "cgroup": read("/proc/self/cgroup").map(|s| s.lines().map(String::from).collect::<Vec<_>>()),
        "rlimits": rlimits(),
        "oom_score_adj": read("/proc/self/oom_score_adj").and_then(|s| s.trim().parse::<i64>().ok()),
        "pid1_cmdline": read("/proc/1/cmdline")
            .map(|s| s.trim_end_matches('\0').replace('\0', " ")),
        "fds": fds(),
        "uid_map": read("/proc/self/uid_map"),
        "gid_map": read("/proc/self/gid_map"),
        "clock": clock(),
        "links": links(),
    })
}

/// Network interface -> its flags (IFF_UP is bit 0), from /sys/class/net.
fn links() -> Map<String, Value> {
    let names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names
        .into_iter()
        .filter_map(|name| {
            let flags = read(&format!("/sys/class/net/{name}/flags"))?;
            let flags = u64::from_str_radix(flags.trim().trim_start_matches("0x"), 16).ok()?;
            Some((name, flags.into()))
        })
        .collect()
}

/// Namespace kind -> inode, from the `kind:[inode]` links of /proc/self/ns.
fn namespaces() -> Map<String, Value> {
    let Ok(dir) = std::fs::read_dir("/proc/self/ns") else {
        return Map::new();
    };
    let inode = |target: &str| -> Option<u64> {
        let (_, rest) = target.split_once(":[")?;
        rest.strip_suffix(']')?.parse().ok()
    };
    dir.flatten()
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            let kind = e.file_name().to_string_lossy().into_owned();
            Some((kind, inode(&target.to_string_lossy())?.into()))
        })
        .collect()
}

/// Mount point, fstype, options and source of each line of /proc/self/mountinfo:
/// `id parent major:minor root mountpoint options [optional...] - fstype source superoptions`.
fn mounts() -> Vec<Value> {
    let text = read("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some(json!({
                "mount_point": unescape(left.get(4)?),
                "root": unescape(left.get(3)?),
                "options": left.get(5)?,
                "fstype": right.first()?,
                "source": unescape(right.get(1)?),
                "super_options": right.get(2).copied().unwrap_or(""),
            }))
        })
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok());
        match octal.and_then(|d| u8::from_str_radix(d, 8).ok()) {
            Some(b) if bytes[i] == b'\\' => {
                out.push(b);
                i += 4;
            }
            _ => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// /proc/self/limits as `RLIMIT_* -> {soft, hard, units}`, "unlimited" as u64::MAX
/// (RLIM_INFINITY), as the OCI spec writes it.
fn rlimits() -> Map<String, Value> {
    const NAMES: &[(&str, &str)] = &[
        ("Max cpu time", "RLIMIT_CPU"),
        ("Max file size", "RLIMIT_FSIZE"),
        ("Max data size", "RLIMIT_DATA"),
        ("Max stack size", "RLIMIT_STACK"),
        ("Max core file size", "RLIMIT_CORE"),
        ("Max resident set", "RLIMIT_RSS"),
        ("Max processes", "RLIMIT_NPROC"),
        ("Max open files", "RLIMIT_NOFILE"),
        ("Max locked memory", "RLIMIT_MEMLOCK"),
        ("Max address space", "RLIMIT_AS"),
        ("Max file locks", "RLIMIT_LOCKS"),
        ("Max pending signals", "RLIMIT_SIGPENDING"),
        ("Max msgqueue size", "RLIMIT_MSGQUEUE"),
        ("Max nice priority", "RLIMIT_NICE"),
        ("Max realtime priority", "RLIMIT_RTPRIO"),
        ("Max realtime timeout", "RLIMIT_RTTIME"),
    ];
    let value = |v: &str| -> Value {
        match v {
            "unlimited" => u64::MAX.into(),
            n => n.parse::<u64>().map_or(Value::from(n), Value::from),
        }
    };
    let text = read("/proc/self/limits").unwrap_or_default();
    let mut lines = text.lines();
    // The columns are fixed-width, found from the header.
    let Some(header) = lines.next() else {
        return Map::new();
    };
    let (Some(soft_at), Some(hard_at), Some(units_at)) = (
        header.find("Soft Limit"),
        header.find("Hard Limit"),
        header.find("Units"),
    ) else {
        return Map::new();
    };
    lines
        .filter_map(|line| {
            let column = |from: usize, to: usize| line.get(from..to.min(line.len())).map(str::trim);
            let name = column(0, soft_at)?;
            let key = NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(name, |(_, k)| k);
            let limit = json!({
                "soft": value(column(soft_at, hard_at)?),
                "hard": value(column(hard_at, units_at)?),
                "units": column(units_at, line.len()).unwrap_or(""),
            });
            Some((key.to_string(), limit))
        })
        .collect()
}

/// Open fds -> what they point at. Names are read first and resolved after the directory is
/// closed, so the directory's own fd disappears from the list instead of showing up in it.
fn fds() -> Map<String, Value> {
    let names: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let mut fds: Vec<(u32, String)> = names
        .iter()
        .filter_map(|name| {
            let target = std::fs::read_link(format!("/proc/self/fd/{name}")).ok()?;
            Some((name.parse().ok()?, target.to_string_lossy().into_owned()))
        })
        .collect();
    fds.sort();
    fds.into_iter()
        .map(|(fd, target)| (fd.to_string(), target.into()))
        .collect()
}

/// Boot time from /proc/uptime (time-namespace aware), CLOCK_MONOTONIC, and the time
/// namespace's offsets when the kernel has them.
fn clock() -> Value {
    let uptime = read("/proc/uptime");
    let boottime = uptime
        .as_deref()
        .and_then(|u| u.split_whitespace().next()?.parse::<f64>().ok());
    json!({
        "boottime_secs": boottime,
        "monotonic_secs": monotonic_secs(),
        "timens_offsets": read("/proc/self/timens_offsets"),
    })
}

/// CLOCK_MONOTONIC in seconds. std reads it for `Instant` but only shows it through `Debug`
/// (`Instant { tv_sec: .., tv_nsec: .. }` on Linux); without libc that is the only safe way to
/// it, so this is best effort and null if the format ever changes.
fn monotonic_secs() -> Option<f64> {
    let debug = format!("{:?}", Instant::now());
    let field = |name: &str| -> Option<f64> {
        let start = debug.find(name)? + name.len();
        let digits: String = debug[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    Some(field("tv_sec: ")? + field("tv_nsec: ")? / 1e9)
}
