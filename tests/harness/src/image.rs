//! The test image (busybox-static, the static probe at /probe, users and groups) and [`Berth`],
//! the `berth` binary run against a throw-away data root that is checked clean when dropped.
//!
//! Every [`Berth`] has its own root with `busybox:latest` (a copy of one imported once per test
//! process), so tests running at the same time never see each other's containers. Dropping it
//! removes every container (`rm -f -v`) and every user network, and then fails the test if a
//! mount under the root, a cgroup of one of its containers, runtime state of the root, a
//! network that cannot be removed or a lease of a build step that no longer runs is left.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use crate::{probe_bin, run_with_timeout, target_dir, Ran, BUSYBOX, COMMAND_TIMEOUT};

/// The reference every [`Berth`] root holds.
pub const IMAGE: &str = "busybox:latest";

/// `/etc/passwd` of the image: root, a plain `user` (1000) and `nobody`.
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
user:x:1000:1000:user:/home/user:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";

/// `/etc/group` of the image: `staff` (50) has `user` as a member.
pub const GROUP: &str = "root:x:0:\nstaff:x:50:user\nuser:x:1000:\nnogroup:x:65534:\n";

/// The workspace's debug `berth` (built by `cargo build -p berth`, not by this harness).
pub fn berth_bin() -> PathBuf {
    target_dir().join("debug/berth")
}

/// The image as a tar archive, built once per test process under the target directory.
pub fn image_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(build_image_tar).clone()
}

fn build_image_tar() -> PathBuf {
    assert!(
        Path::new(BUSYBOX).exists(),
        "needs busybox-static ({BUSYBOX})"
    );
    let out_dir = target_dir().join("berth-harness");
    fs::create_dir_all(&out_dir).expect("creating target/berth-harness");
    let staging = tempfile::Builder::new()
        .prefix("image-")
        .tempdir_in(&out_dir)
        .expect("image staging dir");
    let rootfs = staging.path().join("rootfs");
    make_image_root(&rootfs);
    // Built beside its final name, then renamed: concurrent test processes never see half a tar.
    let tmp = staging.path().join("image.tar");
    let status = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tmp)
        .arg(".")
        .status()
        .expect("running tar");
    assert!(status.success(), "tar of the test image failed: {status}");
    let tar = out_dir.join("busybox-probe.tar");
    fs::rename(&tmp, &tar).expect("moving the image tar into place");
    tar
}

fn make_image_root(rootfs: &Path) {
    use std::os::unix::fs::{symlink, PermissionsExt};
    for dir in [
        "bin",
        "etc",
        "root",
        "tmp",
        "home/user",
        "dev",
        "proc",
        "sys",
    ] {
        fs::create_dir_all(rootfs.join(dir)).expect("image directories");
    }
    fs::set_permissions(rootfs.join("tmp"), fs::Permissions::from_mode(0o1777)).expect("tmp");
    fs::copy(BUSYBOX, rootfs.join("bin/busybox")).expect("copying busybox");
    let list = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            symlink("busybox", rootfs.join("bin").join(applet)).expect("applet link");
        }
    }
    fs::copy(probe_bin(), rootfs.join("probe")).expect("copying berth-probe");
    fs::write(rootfs.join("etc/passwd"), PASSWD).expect("etc/passwd");
    fs::write(rootfs.join("etc/group"), GROUP).expect("etc/group");
}

/// Imports the test image into the data root `root` as `reference`.
pub fn import_image(root: &Path, reference: &str) {
    let mut command = Command::new(berth_bin());
    command
        .arg("--root")
        .arg(root)
        .arg("import")
        .arg(image_tar())
        .arg(reference)
        .stdin(Stdio::null());
    run_with_timeout(command, COMMAND_TIMEOUT).ok();
}

/// A data root holding only [`IMAGE`], imported once per test process: every [`Berth`] starts
/// from a copy of it instead of importing 12 MB again (seconds of CPU with a debug `berth`).
/// It lives under the target directory as `template-<pid>`; templates of processes that have
/// ended are removed when the next one is made.
fn template_root() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = target_dir().join("berth-harness");
        remove_dead_templates(&dir);
        let root = dir.join(format!("template-{}", std::process::id()));
        // A template of an earlier process with our pid would be half-made or stale.
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).expect("creating the template data root");
        import_image(&root, IMAGE);
        root
    })
}

fn remove_dead_templates(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("template-") else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// `berth` with a private data root holding [`IMAGE`].
pub struct Berth {
    root: TempDir,
    /// The machine's lease files when the root was made (see [`step_leases`]).
    leases_before: BTreeSet<PathBuf>,
}

impl Berth {
    /// A fresh root with the test image: a copy of the process's template (owners, modes,
    /// times and links kept; reflinked where the filesystem can), so tests never share one.
    pub fn new() -> Berth {
        assert!(
            berth_bin().exists(),
            "{} is missing: run `cargo build -p berth` first",
            berth_bin().display()
        );
        let root = tempfile::Builder::new()
            .prefix("berth-engine-")
            .tempdir()
            .expect("data root");
        let mut copy = Command::new("cp");
        copy.args(["-a", "--reflink=auto"])
            .arg(template_root().join("."))
            .arg(root.path())
            .stdin(Stdio::null());
        run_with_timeout(copy, COMMAND_TIMEOUT).ok();
        Berth {
            root,
            leases_before: step_leases(),
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `berth --root <root>`, for tests that need their own stdio.
    pub fn command(&self) -> Command {
        let mut command = Command::new(berth_bin());
        command.arg("--root").arg(self.root());
        command.env("BERTH_ROOT", self.root());
        command
    }

    /// Runs `berth <args>` with stdin from /dev/null, output captured, within the default
    /// timeout.
    pub fn run(&self, args: &[&str]) -> Ran {
        self.run_timeout(args, COMMAND_TIMEOUT)
    }

    /// `berth <args>` with `input` on stdin.
    pub fn run_input(&self, args: &[&str], input: &[u8]) -> Ran {
        let mut command = self.command();
        command.args(args);
        crate::run_with_input(command, input)
    }

    pub fn run_timeout(&self, args: &[&str], timeout: Duration) -> Ran {
        let mut command = self.command();
        command.args(args).stdin(Stdio::null());
        run_with_timeout(command, timeout)
    }

    /// Runs `berth <args>`, fails the test unless it succeeded, and returns stdout trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let ran = self.run(args);
        assert!(
            ran.success(),
            "berth {args:?} failed ({}):\n{}\n{}",
            ran.status,
            ran.stdout,
            ran.stderr
        );
        ran.stdout.trim().to_string()
    }

    /// `events` of this root so far (`--since 10m --until 0s`: every test's root is younger),
    /// with each of `filters` and the `format` given, stdout trimmed.
    pub fn events(&self, filters: &[&str], format: Option<&str>) -> String {
        let mut args = vec!["events", "--since", "10m", "--until", "0s"];
        for filter in filters {
            args.extend(["--filter", filter]);
        }
        if let Some(format) = format {
            args.extend(["--format", format]);
        }
        self.ok(&args)
    }

    /// `run --rm <flags> busybox /probe`: the probe's report from inside such a container.
    pub fn probe(&self, flags: &[&str]) -> Value {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[IMAGE, "/probe"]);
        let out = self.ok(&args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("probe output is not JSON ({e}): {out}"))
    }

    /// `inspect <container>` as its first (only) object.
    pub fn inspect(&self, container: &str) -> Value {
        let out = self.ok(&["inspect", container]);
        let v: Value = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("inspect output is not JSON ({e}): {out}"));
        v.get(0).cloned().unwrap_or(v)
    }

    /// The full ids of every container in the root.
    pub fn ids(&self) -> Vec<String> {
        let out = self.ok(&["ps", "-a", "-q", "--no-trunc"]);
        out.split_whitespace().map(String::from).collect()
    }

    /// Removes every container and returns what is left behind: mounts under the root, cgroup
    /// directories of the removed containers and the runtime's state of the root.
    pub fn clean(&self) -> Vec<String> {
        let ids = self.ids_on_disk();
        let mut left = Vec::new();
        for id in &ids {
            let ran = self.run(&["rm", "-f", "-v", id]);
            if !ran.success() && !ran.stderr.contains("No such container") {
                left.push(format!("rm -f {id}: {}", ran.stderr.trim()));
            }
        }
        // `rm -f` (and `run --rm`) return once the container is gone from every listing; its
        // monitor finishes the teardown behind: what it leaves counts once it has ended.
        crate::eventually("the root's monitors to finish", || {
            crate::monitors_of_root(self.root())
                .is_empty()
                .then_some(())
        });
        left.extend(
            mounts_under(self.root())
                .into_iter()
                .map(|m| format!("mount {m}")),
        );
        for id in &ids {
            left.extend(cgroup_dirs(id).into_iter().map(|d| format!("cgroup {d}")));
        }
        // A build step's lease outlives its cgroups only when nothing released it: a step is
        // detached before its cgroups go, by its build or by the sweep of a killed one. The
        // lease is looked at again once its cgroups are seen gone: a step of another test
        // may have ended since the listing. Not while a test holds a dead step's lease
        // there on purpose ([`pause_lease_checks`]).
        let _reading = LEASE_CHECKS.read().unwrap_or_else(|e| e.into_inner());
        left.extend(
            step_leases()
                .difference(&self.leases_before)
                .filter(|lease| {
                    lease_holder(lease).is_some_and(|id| cgroup_dirs(&id).is_empty())
                        && lease.exists()
                })
                .map(|lease| {
                    format!(
                        "lease {} of a build step that no longer runs",
                        lease.display()
                    )
                }),
        );
        // The engine removes the runtime's state directory with its last container's state.
        let state = runtime_dir(self.root());
        if let Ok(entries) = fs::read_dir(&state) {
            let before = left.len();
            left.extend(
                entries
                    .flatten()
                    .map(|e| format!("state {}", e.path().display())),
            );
            if left.len() == before {
                left.push(format!("empty state directory {}", state.display()));
                let _ = fs::remove_dir(&state);
            }
        }
        left
    }

    /// Removes the root's user networks, which a test that failed half-way may have left: their
    /// bridges are the machine's and would outlive the root. What could not be removed.
    fn remove_networks(&self) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.root().join("network")) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.path().join("network.json").exists())
            .filter_map(|e| {
                let id = e.file_name().to_string_lossy().into_owned();
                let ran = self.run(&["network", "rm", &id]);
                (!ran.success()).then(|| format!("network rm {id}: {}", ran.stderr.trim()))
            })
            .collect()
    }

    /// Container ids from the directory itself, so a broken `ps` cannot hide one.
    fn ids_on_disk(&self) -> Vec<String> {
        let dir = self.root().join("containers");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 64)
            .collect()
    }
}

impl Default for Berth {
    fn default() -> Self {
        Berth::new()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let mut left = self.clean();
        left.extend(self.remove_networks());
        if left.is_empty() {
            return;
        }
        // Never let the temp dir's removal walk into a bind mount of a host directory.
        let mut mounts = mounts_under(self.root());
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in &mounts {
            let _ = Command::new("umount").args(["-l", m]).status();
        }
        if std::thread::panicking() {
            eprintln!("berth left behind: {left:#?}");
        } else {
            panic!("berth left behind: {left:#?}");
        }
    }
}

/// Mount points at or under `dir`, from /proc/self/mountinfo.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = dir.to_string_lossy().into_owned();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| *m == dir || m.starts_with(&format!("{dir}/")))
        .map(String::from)
        .collect()
}

/// The lease files (`<ip>_<container id>`, and temporaries of their writes) of build steps (`build-<random>-<n>`) on the
/// networks shared by every data root (the default bridge's, /run/berth/network/<id>/leases):
/// a build of any root leases there.
pub fn step_leases() -> BTreeSet<PathBuf> {
    let nets = fs::read_dir("/run/berth/network")
        .into_iter()
        .flatten()
        .flatten();
    nets.flat_map(|net| {
        fs::read_dir(net.path().join("leases"))
            .into_iter()
            .flatten()
    })
    .flatten()
    .map(|e| e.path())
    .filter(|lease| lease_holder(lease).is_some_and(|id| id.starts_with("build-")))
    .collect()
}

/// Held by every root's check of the machine's build-step leases (the default network's,
/// shared by every test of a binary), for reading; for writing by [`pause_lease_checks`].
static LEASE_CHECKS: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Holds the other tests' checks of the machine's build-step leases off until dropped: for a
/// test that puts a dead step's lease (a killed build's, made by hand) where they would find it
/// and blame their own root, until its build sweeps it.
pub fn pause_lease_checks() -> std::sync::RwLockWriteGuard<'static, ()> {
    LEASE_CHECKS.write().unwrap_or_else(|e| e.into_inner())
}

/// The container id a lease file (`<ip>_<id>`) or a write's temporary of one
/// (`.<ip>_<id>.tmp`) names, as berth-net's `leases::entries` reads them.
fn lease_holder(lease: &Path) -> Option<String> {
    let name = lease.file_name()?.to_str()?;
    let name = match name.strip_prefix('.') {
        Some(tmp) => tmp.strip_suffix(".tmp")?,
        None => name,
    };
    Some(name.split_once('_')?.1.to_string())
}

/// The runtime's state directory of the data root `root`, as berth-engine names it
/// (engine.rs: the first 8 bytes of the path's SHA-256, in hex, under /run/berth/runtime).
pub fn runtime_dir(root: &Path) -> PathBuf {
    run_dir(root, "runtime")
}

/// The exec records' directory of the data root `root`, beside the runtime's state
/// (/run/berth/execs/<the same hash>).
pub fn execs_dir(root: &Path) -> PathBuf {
    run_dir(root, "execs")
}

fn run_dir(root: &Path, what: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(root.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    PathBuf::from(format!("/run/berth/{what}/{hex}"))
}

/// Existing cgroup directories `berth/<id>` in every hierarchy (v1 controllers, unified, v2).
pub fn cgroup_dirs(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
        roots.extend(entries.flatten().map(|e| e.path()));
    }
    for root in roots {
        let dir = root.join("berth").join(id);
        if dir.is_dir() {
            found.push(dir.display().to_string());
        }
    }
    found
}

/// Imports a one-file tarball without a name: a dangling image, as `berth import` leaves one.
/// Returns its ID.
pub fn dangling_image(berth: &Berth) -> String {
    let dir = tempfile::tempdir().expect("tar staging dir");
    fs::write(dir.path().join("hello"), crate::unique("content")).expect("file for the tar");
    let tar = dir.path().join("layer.tar");
    crate::pack(dir.path(), &tar, &["hello"]);
    let id = berth.ok(&["import", tar.to_str().expect("utf-8 path")]);
    assert!(id.starts_with("sha256:"), "import prints the ID: {id}");
    id
}
