//! Helpers shared by the black-box tests: bundles, the probe, running the binaries.
//!
//! A [`Bundle`] is a temporary OCI bundle whose rootfs holds busybox-static and the static
//! `berth-probe`; a [`Runtime`] runs `berth-runc` (or any runc-compatible binary) with its own
//! temporary `--root` and force-deletes every container it created when dropped, so a failing
//! test leaves nothing behind. Tests that lack something print `skipped: needs X` via [`skip!`],
//! or fail where a skip would hide a gap (CI). Deadlines stretch with the machine's load.
#![forbid(unsafe_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use oci_spec::runtime::Spec;
use tempfile::TempDir;

pub mod api;
pub mod image;
pub mod pty;
pub mod registry;
pub mod rootless;

/// Prints `skipped: <why>` and returns from the calling test: tests never pass silently.
/// Where every test must run (see [`skips_fail`]) it fails the test instead.
///
/// ```ignore
/// if !berth_harness::is_root() { berth_harness::skip!("needs root"); }
/// ```
#[macro_export]
macro_rules! skip {
    ($($why:tt)+) => {{
        $crate::skipping(format_args!($($why)+));
        return;
    }};
}

/// Returns from the calling test with `skipped: needs root` unless we are root.
#[macro_export]
macro_rules! need_root {
    () => {
        if !$crate::is_root() {
            $crate::skip!("needs root");
        }
    };
}

// The rules themselves live in berth-sys, for the crates' own tests to keep them too.
pub use berth_sys::test_support::{scaled, skipping, skips_fail, timeout_scale};

/// How long a condition may take to come true before a test gives up on it, on an idle
/// machine: [`eventually`] stretches it by [`timeout_scale`]. A deadline, not a measurement.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Polls `cond` until it returns `Some`, failing the test with `what` after [`PATIENCE`]
/// (scaled).
pub fn eventually<T>(what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + scaled(PATIENCE);
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Where busybox-static installs itself on Debian.
pub const BUSYBOX: &str = "/bin/busybox";

/// The applets linked into every bundle's /bin.
pub const APPLETS: &[&str] = &[
    "sh", "cat", "ls", "sleep", "ps", "echo", "id", "hostname", "mount", "true", "false", "env",
    "head", "wc", "grep", "readlink",
];

/// How long a command may take on an idle machine before the harness kills it and fails the
/// test ([`run_with_timeout`] scales it, as every timeout it is given).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// An HTTP GET of `path` from the host: the body, or None when nothing answers.
pub fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.trim().to_string())
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cargo target directory: `$CARGO_TARGET_DIR` (relative to the workspace) or `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace_root().join(dir),
        None => workspace_root().join("target"),
    }
}

/// The workspace's debug `berth-runc` (built by `cargo build`, not by this harness).
pub fn runc_bin() -> PathBuf {
    target_dir().join("debug/berth-runc")
}

/// The static `berth-probe`: `$BERTH_PROBE` if set, else built on first use with
/// `cargo rustc ... -C target-feature=+crt-static` into its own target directory (a plain
/// `cargo build` would overwrite a shared one with a dynamic binary). Cargo's lock on that
/// directory serialises test processes that build it at the same time; the `OnceLock` makes
/// each process build at most once.
pub fn probe_bin() -> PathBuf {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE
        .get_or_init(|| match std::env::var_os("BERTH_PROBE") {
            Some(path) => PathBuf::from(path),
            None => build_static_probe(),
        })
        .clone()
}

fn build_static_probe() -> PathBuf {
    let target = target_dir().join("berth-probe-static");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "rustc",
            "--quiet",
            "-p",
            "berth-harness",
            "--bin",
            "berth-probe",
            "--target-dir",
        ])
        .arg(&target)
        .args(["--", "-C", "target-feature=+crt-static"])
        .status()
        .expect("running cargo to build the static berth-probe");
    assert!(
        status.success(),
        "building the static berth-probe failed: {status}"
    );
    target.join("debug/berth-probe")
}

/// True if this process runs as root (effective uid 0), read from /proc without libc.
pub fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let uid = status.lines().find_map(|l| l.strip_prefix("Uid:"));
    uid.and_then(|ids| ids.split_whitespace().nth(1)) == Some("0")
}

/// True if `program` is found on `$PATH` or is an existing path.
/// Live processes (not zombies) whose command line holds `__monitor <id>`: a container's
/// monitors, or every monitor with an empty `id`.
pub fn monitors_of(id: &str) -> Vec<i32> {
    monitors_matching(&format!("__monitor {id}"))
}

/// Live monitors of the data root `root` (`berth --root <root> __monitor <id>`): after `run
/// --rm` or `rm -f` returned, those still finishing a teardown (unmounts, cgroups, files,
/// veths) that a leak check must wait for.
pub fn monitors_of_root(root: &Path) -> Vec<i32> {
    monitors_matching(&format!("--root {} __monitor ", root.display()))
}

fn monitors_matching(needle: &str) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let zombie = |pid: i32| {
        fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit_once(") ")
                .is_none_or(|(_, rest)| rest.starts_with('Z'))
        })
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            let raw = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .contains(needle)
                && !zombie(pid)
        })
        .collect()
}

pub fn have(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).exists();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

/// Packs the entries `names` of `dir` into a tar archive at `tar` (GNU tar's own format), as a
/// test's layer or build context is made.
pub fn pack(dir: &Path, tar: &Path, names: &[&str]) {
    let status = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(tar)
        .args(names)
        .status()
        .expect("running tar");
    assert!(
        status.success(),
        "tar of {names:?} in {}: {status}",
        dir.display()
    );
}

/// A name unique in this test process and across concurrent ones.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// A temporary OCI bundle: `config.json` and a rootfs with busybox and the probe.
pub struct Bundle {
    dir: TempDir,
    spec: Spec,
}

impl Bundle {
    /// A bundle running `args`, with oci-spec's default config adjusted: no terminal, a
    /// writable `rootfs`, hostname "berth" and a cgroups path of its own. Call [`Bundle::write`]
    /// after changing [`Bundle::spec_mut`]; `new` writes the initial config.
    pub fn new(args: &[&str]) -> Bundle {
        Bundle::new_in(&std::env::temp_dir(), args)
    }

    /// [`Bundle::new`] in a directory of its own below `parent` (on a mount of the test's
    /// choosing).
    pub fn new_in(parent: &Path, args: &[&str]) -> Bundle {
        assert!(
            Path::new(BUSYBOX).exists(),
            "needs busybox-static ({BUSYBOX})"
        );
        let dir = tempfile::Builder::new()
            .prefix("berth-bundle-")
            .tempdir_in(parent)
            .expect("bundle dir");
        make_rootfs(&dir.path().join("rootfs"));
        let mut spec = Spec::default();
        spec.set_hostname(Some("berth".into()));
        if let Some(process) = spec.process_mut() {
            process.set_args(Some(args.iter().map(|a| a.to_string()).collect()));
            process.set_terminal(Some(false));
        }
        if let Some(root) = spec.root_mut() {
            root.set_path("rootfs".into());
            root.set_readonly(Some(false));
        }
        if let Some(linux) = spec.linux_mut() {
            linux.set_cgroups_path(Some(format!("/{}", unique("berth-test")).into()));
        }
        let bundle = Bundle { dir, spec };
        bundle.write();
        bundle
    }

    /// The bundle directory (what `--bundle` takes).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.path().join("rootfs")
    }

    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    pub fn spec_mut(&mut self) -> &mut Spec {
        &mut self.spec
    }

    /// Writes `config.json` from the current spec.
    pub fn write(&self) {
        let json = serde_json::to_string_pretty(&self.spec).expect("serialising the spec");
        fs::write(self.path().join("config.json"), json).expect("writing config.json");
    }
}

fn make_rootfs(rootfs: &Path) {
    for dir in ["bin", "dev", "proc", "sys", "tmp", "etc", "root"] {
        fs::create_dir_all(rootfs.join(dir)).expect("rootfs directories");
    }
    // Copies rather than hard links: tests may chown or chmod the rootfs.
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copying busybox into the rootfs");
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).expect("applet");
    }
    fs::copy(probe_bin(), rootfs.join("bin/berth-probe")).expect("copying berth-probe");
    fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .expect("etc/passwd");
    fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("etc/group");
}

/// What a command did.
#[derive(Debug)]
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with the command's output unless it succeeded; returns stdout.
    pub fn ok(self) -> String {
        assert!(
            self.success(),
            "command failed ({}):\n{}\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self.stdout
    }
}

/// A runc-compatible runtime binary with a private state directory.
pub struct Runtime {
    root: TempDir,
    bin: PathBuf,
    created: Mutex<Vec<String>>,
}

impl Runtime {
    /// The workspace's `berth-runc`.
    pub fn new() -> Runtime {
        Runtime::with_binary(runc_bin())
    }

    /// Any runc-compatible binary (e.g. /usr/sbin/runc, to check a test itself).
    pub fn with_binary(bin: impl Into<PathBuf>) -> Runtime {
        let root = tempfile::Builder::new()
            .prefix("berth-root-")
            .tempdir()
            .expect("root dir");
        Runtime {
            root,
            bin: bin.into(),
            created: Mutex::new(Vec::new()),
        }
    }

    /// The `--root` state directory.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn binary(&self) -> &Path {
        &self.bin
    }

    /// A command `<bin> --root <root>`, for tests that need their own stdio.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.bin);
        command.arg("--root").arg(self.root());
        command
    }

    /// Runs `<bin> --root <root> <args>` with stdin from /dev/null and waits for the runtime
    /// itself (not the container: its output goes to files, not pipes, since a container
    /// keeps the runtime's stdio open). The id of `create` and `run` is remembered for `Drop`.
    pub fn run(&self, args: &[&str]) -> Ran {
        if let (Some(&("create" | "run")), Some(id)) = (args.first(), args.last()) {
            self.created
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(id.to_string());
        }
        let mut command = self.command();
        command.args(args).stdin(Stdio::null());
        run_with_timeout(command, COMMAND_TIMEOUT)
    }

    /// `<bin> --root <root> <args>` with `input` on stdin.
    pub fn run_input(&self, args: &[&str], input: &[u8]) -> Ran {
        let mut command = self.command();
        command.args(args);
        run_with_input(command, input)
    }

    pub fn create(&self, id: &str, bundle: &Bundle) -> Ran {
        let path = bundle.path().to_str().expect("bundle path is UTF-8");
        self.run(&["create", "--bundle", path, id])
    }

    pub fn start(&self, id: &str) -> Ran {
        self.run(&["start", id])
    }

    /// `run` in the foreground: the container's output is in the returned stdout/stderr.
    pub fn run_container(&self, id: &str, bundle: &Bundle) -> Ran {
        let path = bundle.path().to_str().expect("bundle path is UTF-8");
        self.run(&["run", "--bundle", path, id])
    }

    /// `state` parsed as JSON, or `None` if the runtime failed.
    pub fn state(&self, id: &str) -> Option<serde_json::Value> {
        let ran = self.run(&["state", id]);
        ran.success()
            .then(|| serde_json::from_str(&ran.stdout).ok())
            .flatten()
    }

    pub fn kill(&self, id: &str, signal: &str) -> Ran {
        self.run(&["kill", id, signal])
    }

    pub fn delete(&self, id: &str) -> Ran {
        self.run(&["delete", id])
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let ids = std::mem::take(self.created.get_mut().unwrap_or_else(|e| e.into_inner()));
        for id in ids {
            let mut command = self.command();
            command
                .args(["delete", "--force", &id])
                .stdin(Stdio::null());
            // Best effort: the container may already be gone.
            let _ = run_with_timeout(command, COMMAND_TIMEOUT);
        }
    }
}

/// Runs `command` with `input` on its stdin (a file, so the command reads it at its pace),
/// as [`run_with_timeout`] does with [`COMMAND_TIMEOUT`].
pub fn run_with_input(mut command: Command, input: &[u8]) -> Ran {
    use std::io::{Seek, Write};
    let mut file = tempfile::tempfile().expect("stdin file");
    file.write_all(input).expect("stdin text");
    file.rewind().expect("rewind stdin");
    command.stdin(Stdio::from(file));
    run_with_timeout(command, COMMAND_TIMEOUT)
}

/// Runs `command` with stdout and stderr sent to temporary files, killing it (and failing the
/// test) after `timeout` [`scaled`] to the machine.
pub fn run_with_timeout(mut command: Command, timeout: Duration) -> Ran {
    let timeout = scaled(timeout);
    let out = tempfile::tempfile().expect("stdout file");
    let err = tempfile::tempfile().expect("stderr file");
    command
        .stdout(out.try_clone().expect("stdout fd"))
        .stderr(err.try_clone().expect("stderr fd"));
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {command:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the command") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |mut file: fs::File| {
        use std::io::{Read, Seek};
        let mut bytes = Vec::new();
        let _ = file.rewind();
        let _ = file.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Ran {
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

#[cfg(test)]
mod selftest;

/// The memory controller's cgroup v1 knobs as the tests ask for them (podman's comparison and
/// the docker CLI's), how a container reads them back in its own cgroup, and what it reads.
pub mod memory_knobs {
    pub const FLAGS: [&str; 5] = [
        "--memory-swappiness",
        "7",
        "--oom-kill-disable",
        "-m",
        "64m",
    ];
    pub const READ: &str = "cat /sys/fs/cgroup/memory/memory.swappiness; \
                            grep oom_kill_disable /sys/fs/cgroup/memory/memory.oom_control";
    pub const SEEN: &str = "7\noom_kill_disable 1";
}
