//! Support for driving the runtime under test through real clients (containerd's `ctr`, podman):
//! which runtime, running commands visibly with a deadline, and teardown of what they leave.
#![allow(dead_code)] // each test binary uses its own subset

pub mod containerd;
pub mod image;
pub mod podman;

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Long enough for a two-core CI machine, stretched by the harness's load scale; only there so a
/// hung client fails the test instead of hanging the suite. Never used to judge speed.
const COMMAND_DEADLINE: Duration = Duration::from_secs(180);

/// The runtime binary the clients are pointed at: `BERTH_RUNTIME_UNDER_TEST` if set (so the
/// tests can be validated against runc or crun), else this workspace's debug `berth-runc`,
/// (re)built on first use.
pub fn runtime_under_test() -> PathBuf {
    static RUNTIME: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(find_runtime)
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn find_runtime() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("BERTH_RUNTIME_UNDER_TEST") {
        let path = PathBuf::from(path);
        // ctr and podman want an absolute path; a bare name is looked up like a shell would.
        let found = if path.components().count() == 1 {
            which(&path)
        } else {
            Some(path.clone())
        };
        let found = found
            .and_then(|p| fs::canonicalize(p).ok())
            .ok_or_else(|| format!("BERTH_RUNTIME_UNDER_TEST={} does not exist", path.display()))?;
        println!(
            "runtime under test: {} (BERTH_RUNTIME_UNDER_TEST)",
            found.display()
        );
        return Ok(found);
    }
    // The test binary lives in <target>/debug/deps, so <target>/debug is its grandparent; this
    // follows CARGO_TARGET_DIR without having to know about it.
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("test binary has no grandparent")?;
    let binary = profile_dir.join("berth-runc");
    // Always build, not only when the binary is missing: a stale berth-runc would test old
    // code. Cargo makes this a no-op when it is fresh.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    println!("+ cargo build -p berth-runc");
    let built = Command::new(cargo)
        .args(["build", "-p", "berth-runc"])
        .current_dir(&workspace)
        .output()
        .map_err(|e| format!("cargo build -p berth-runc: {e}"))?;
    if !built.status.success() || !binary.exists() {
        let log = String::from_utf8_lossy(&built.stderr);
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "cargo build -p berth-runc failed ({}), so it cannot be tested:\n{}",
            built.status,
            tail.join("\n")
        ));
    }
    println!("runtime under test: {}", binary.display());
    Ok(binary)
}

fn which(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// True when every tool is installed and we are root; otherwise prints `skipped: needs X` so a
/// skip is never mistaken for a pass (or fails the test where skips are not allowed).
pub fn have(tools: &[&str]) -> bool {
    let root = fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        berth_harness::skipping(format_args!("needs root"));
        return false;
    }
    for tool in tools {
        if which(Path::new(tool)).is_none() {
            berth_harness::skipping(format_args!("needs {tool}"));
            return false;
        }
    }
    true
}

/// What a finished command printed and how it ended.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// A command line as a person would type it, for the test log.
pub fn shown(cmd: &Command) -> String {
    let mut words = vec![quote(cmd.get_program())];
    words.extend(cmd.get_args().map(quote));
    words.join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs a command with stdin from /dev/null, printing it and what it printed. Output goes to
/// files, not pipes, so a daemon that inherits them (conmon, a shim) cannot keep us waiting.
pub fn run(cmd: &mut Command) -> Ran {
    let line = shown(cmd);
    println!("+ {line}");
    let capture = |what| tempfile::tempfile().unwrap_or_else(|e| panic!("{what} file: {e}"));
    let (mut out, mut err) = (capture("stdout"), capture("stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("dup stdout file"))
        .stderr(err.try_clone().expect("dup stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{line}`: {e}"));
    let (started, deadline) = (Instant::now(), berth_harness::scaled(COMMAND_DEADLINE));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{line}` still running after {deadline:?}: killed");
        }
        sleep(Duration::from_millis(10));
    };
    let ran = Ran {
        status,
        stdout: read_all(&mut out),
        stderr: read_all(&mut err),
    };
    for (name, text) in [("stdout", &ran.stdout), ("stderr", &ran.stderr)] {
        if !text.trim().is_empty() {
            println!("  {name}: {}", text.trim_end().replace('\n', "\n  | "));
        }
    }
    println!("  -> {status}");
    ran
}

fn read_all(file: &mut File) -> String {
    let mut text = String::new();
    file.rewind()
        .and_then(|_| file.read_to_string(&mut text))
        .expect("read captured output");
    text
}

/// Runs a command that must succeed and returns its stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let ran = run(cmd);
    assert!(
        ran.status.success(),
        "`{}` failed ({}): {}",
        shown(cmd),
        ran.status,
        ran.stderr.trim()
    );
    ran.stdout
}

/// Runs a command on a fresh pseudo-terminal (util-linux `script`), as a person at a terminal
/// would: `-t` clients refuse or behave differently without one.
pub fn run_in_pty(cmd: &Command) -> Ran {
    let mut script = Command::new("script");
    script
        .args(["-q", "-e", "-c"])
        .arg(shown(cmd))
        .arg("/dev/null");
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    run(&mut script)
}

/// Polls until `ready` holds, for state that settles asynchronously (a task stopping). Panics
/// naming `what` after the deadline.
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) {
    let (started, deadline) = (Instant::now(), berth_harness::scaled(COMMAND_DEADLINE));
    while !ready() {
        assert!(
            started.elapsed() < deadline,
            "{what}: not after {deadline:?}"
        );
        sleep(Duration::from_millis(100));
    }
}

/// Collects every teardown failure and keeps going; reported all at once at the end.
#[derive(Default)]
pub struct Teardown {
    errors: Vec<String>,
}

impl Teardown {
    pub fn note(&mut self, what: impl Into<String>) {
        self.errors.push(what.into());
    }

    /// Runs a best-effort cleanup command quietly (its failures are usually "already gone").
    pub fn quiet(&mut self, cmd: &mut Command) -> bool {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        matches!(cmd.status(), Ok(s) if s.success())
    }

    /// Kills (SIGKILL) every process whose command line mentions `dir`: daemons we started
    /// (shims, conmon) that outlive their parent. Our own process is spared.
    pub fn kill_processes_mentioning(&mut self, dir: &Path) {
        let needle = dir.to_string_lossy().into_owned();
        let me = std::process::id().to_string();
        let Ok(entries) = fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if pid == me || !pid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            if String::from_utf8_lossy(&cmdline).contains(&needle) {
                println!(
                    "teardown: killing leftover process {pid}: {}",
                    String::from_utf8_lossy(&cmdline)
                        .replace('\0', " ")
                        .trim_end()
                );
                if !self.quiet(Command::new("kill").args(["-KILL", &pid])) {
                    self.note(format!("kill -KILL {pid} failed"));
                }
            }
        }
    }

    /// Unmounts everything mounted at or below `dir` in our mount namespace, deepest first,
    /// falling back to a lazy detach for a busy mount.
    pub fn unmount_under(&mut self, dir: &Path) {
        let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
            return;
        };
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(unescape_mountinfo)
            .filter(|p| Path::new(p).starts_with(dir))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        points.dedup();
        for point in points {
            if !self.quiet(Command::new("umount").arg(&point))
                && !self.quiet(Command::new("umount").arg("-l").arg(&point))
            {
                self.note(format!("umount {point} failed"));
            }
        }
    }

    /// Prints every error; fails the test for a leak unless it is already failing (a second
    /// panic would abort and hide the first).
    pub fn finish(self, whose: &str) {
        if self.errors.is_empty() {
            return;
        }
        let report = format!("{whose} teardown: {}", self.errors.join("; "));
        eprintln!("{report}");
        if !std::thread::panicking() {
            panic!("{report}");
        }
    }
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape_mountinfo(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        match u8::from_str_radix(rest.get(i + 1..i + 4).unwrap_or(""), 8) {
            Ok(byte) => {
                out.push(byte as char);
                rest = &rest[i + 4..];
            }
            Err(_) => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}
