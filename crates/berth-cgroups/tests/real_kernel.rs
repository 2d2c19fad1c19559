//! Real-kernel tests: the managers on this host's /sys/fs/cgroup, driven through the public
//! API as the runtime drives them. They need root; each cgroup is named after its test and our
//! pid, and a guard thaws, kills and removes it even when the test fails. Anything missing
//! prints `skipped: needs X`, or fails the test where a skip would hide a gap (CI).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use berth_cgroups::{detect, fs_kind, v2, CgroupManager, FreezerState, FsKind, Manager, Setup};
use berth_sys::test_support::{scaled, skipping};
use nix::sys::signal::Signal;
use oci_spec::runtime::{
    LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxMemoryBuilder,
    LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder,
};

const ROOT: &str = "/sys/fs/cgroup";

/// Owns a test cgroup and the processes put in it; cleans both up whatever happened.
struct TestCgroup {
    manager: Manager,
    children: Vec<Child>,
}

impl TestCgroup {
    fn new(setup: Setup, root: &Path, test: &str) -> Self {
        let path = Path::new(&test_name(test)).into();
        let manager = Manager::new(setup, root, &path).expect("manager");
        Self::with(manager)
    }

    /// A v2 cgroup on the host's cgroup2 mount. On a hybrid host that mount must stay free of
    /// controllers (enabling one pins it to v2 for good), so the manager only makes the
    /// directory: membership, freezing, killing and device programs need nothing more.
    fn v2(test: &str) -> Option<Self> {
        let (root, hybrid) = cgroup2_root()?;
        let name = test_name(test);
        let manager = if hybrid {
            v2::Manager::membership_only(&root, Path::new(&name))
        } else {
            v2::Manager::new(&root, Path::new(&name))
        };
        Some(Self::with(Manager::V2(manager)))
    }

    fn with(manager: Manager) -> Self {
        // A leftover of an earlier crashed run with a recycled pid must not fail this one.
        let _ = manager.destroy();
        manager.create().expect("create");
        Self {
            manager,
            children: Vec::new(),
        }
    }

    /// Starts `sh -c "read _; script"` and puts it in the cgroup: the script runs only once
    /// `release` is called, so everything it does happens inside.
    fn spawn_waiting(&mut self, script: &str) -> usize {
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("read _; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh");
        self.manager.add_task(child.id() as i32).expect("add_task");
        self.children.push(child);
        self.children.len() - 1
    }

    /// Lets a waiting child run and returns what it printed.
    fn release(&mut self, index: usize) -> String {
        let child = &mut self.children[index];
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"go\n").expect("release child");
        drop(stdin);
        let mut out = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read");
        child.wait().expect("wait");
        out
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // A v1-frozen process cannot die, so thaw before killing.
        let _ = self.manager.thaw();
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Err(err) = self.manager.destroy() {
            eprintln!("cleanup: {err}");
        }
    }
}

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        skipping(format_args!("needs root"));
        false
    }
}

fn test_name(test: &str) -> String {
    format!("berth-test-{test}-{}", std::process::id())
}

/// The cgroup2 mount to test the v2 manager on, and whether it is a hybrid host's: the root on
/// unified hosts, `unified` on hybrid ones.
fn cgroup2_root() -> Option<(PathBuf, bool)> {
    if !is_root() {
        return None;
    }
    match detect(Path::new(ROOT)) {
        Ok(Setup::Unified) => Some((PathBuf::from(ROOT), false)),
        Ok(Setup::Hybrid) => Some((Path::new(ROOT).join("unified"), true)),
        _ => {
            skipping(format_args!(
                "needs a cgroup2 mount at {ROOT} or {ROOT}/unified"
            ));
            None
        }
    }
}

/// True when the v1 controllers `names` are mounted under /sys/fs/cgroup.
fn v1_controllers(names: &[&str]) -> bool {
    if !is_root() {
        return false;
    }
    for name in names {
        if fs_kind(&Path::new(ROOT).join(name)).ok() != Some(FsKind::Cgroup1) {
            skipping(format_args!(
                "needs the cgroup v1 {name} controller at {ROOT}/{name}"
            ));
            return false;
        }
    }
    true
}

/// The v1 directory of the cgroup `TestCgroup::new` made for `test`.
fn v1_dir(controller: &str, test: &str) -> PathBuf {
    let name = format!("berth-test-{test}-{}", std::process::id());
    Path::new(ROOT).join(controller).join(name)
}

fn read(dir: &Path, file: &str) -> String {
    let content = fs::read_to_string(dir.join(file));
    content
        .unwrap_or_else(|e| panic!("read {file}: {e}"))
        .trim()
        .to_owned()
}

fn frozen_field(dir: &Path) -> String {
    let events = read(dir, "cgroup.events");
    let line = events.lines().find(|l| l.starts_with("frozen "));
    line.unwrap_or("frozen ?").to_owned()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + scaled(Duration::from_secs(5));
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        sleep(Duration::from_millis(10));
    }
}

fn device(allow: bool, typ: LinuxDeviceType, major: i64, minor: i64) -> LinuxDeviceCgroup {
    LinuxDeviceCgroupBuilder::default()
        .allow(allow)
        .typ(typ)
        .major(major)
        .minor(minor)
        .access("rwm")
        .build()
        .unwrap()
}

fn devices(rules: Vec<LinuxDeviceCgroup>) -> LinuxResources {
    LinuxResourcesBuilder::default()
        .devices(rules)
        .build()
        .unwrap()
}

const NULL_AND_ZERO: &str = "if head -c1 /dev/null; then echo null-ok; else echo null-denied; fi; \
     if head -c1 /dev/zero >/dev/null; then echo zero-ok; else echo zero-denied; fi";

#[test]
fn v2_lifecycle_freeze_kill_destroy() {
    let Some(mut cg) = TestCgroup::v2("v2-lifecycle") else {
        return;
    };
    let dir = cg.manager.unified_dir().unwrap().to_owned();
    let child = Command::new("sleep")
        .arg("100")
        .spawn()
        .expect("spawn sleep");
    let pid = child.id() as i32;
    cg.children.push(child);
    cg.manager.add_task(pid).unwrap();
    assert_eq!(cg.manager.pids().unwrap(), [pid]);

    cg.manager.freeze().unwrap();
    assert_eq!(frozen_field(&dir), "frozen 1");
    assert_eq!(cg.manager.state().unwrap(), FreezerState::Frozen);
    cg.manager.thaw().unwrap();
    assert_eq!(frozen_field(&dir), "frozen 0");
    assert_eq!(cg.manager.state().unwrap(), FreezerState::Thawed);

    cg.manager
        .kill_all(berth_sys::signal::SignalNumber::KILL)
        .unwrap();
    let status = cg.children[0].wait().unwrap();
    assert_eq!(status.signal(), Some(Signal::SIGKILL as i32));
    wait_until("an empty cgroup", || cg.manager.pids().unwrap().is_empty());

    fs::create_dir(dir.join("nested")).unwrap();
    cg.manager.destroy().unwrap();
    assert!(!dir.exists(), "{} survived destroy", dir.display());
}

#[test]
fn v2_stats_read_without_error() {
    let Some(cg) = TestCgroup::v2("v2-stats") else {
        return;
    };
    let stats = cg.manager.stats().unwrap();
    assert_eq!(stats.pids.current, 0);
}

#[test]
fn v2_a_limit_the_host_cannot_take_names_the_file() {
    let Some(cg) = TestCgroup::v2("v2-missing") else {
        return;
    };
    let dir = cg.manager.unified_dir().unwrap().to_owned();
    let pids = LinuxPidsBuilder::default().limit(10).build().unwrap();
    let resources = LinuxResourcesBuilder::default().pids(pids).build().unwrap();
    let result = cg.manager.apply(&resources);
    if dir.join("pids.max").exists() {
        result.unwrap();
        assert_eq!(read(&dir, "pids.max"), "10");
    } else {
        // Hybrid hosts offer no pids controller on the unified side.
        let err = result.unwrap_err().to_string();
        assert!(err.contains("pids.max") && err.contains("\"10\""), "{err}");
    }
}

#[test]
fn v2_device_program_allows_only_the_listed_devices() {
    let Some(mut cg) = TestCgroup::v2("v2-devices") else {
        return;
    };
    let only_null = cg.spawn_waiting(NULL_AND_ZERO);
    cg.manager
        .apply(&devices(vec![device(true, LinuxDeviceType::C, 1, 3)]))
        .unwrap();
    assert_eq!(cg.release(only_null), "null-ok\nzero-denied\n");

    // A second apply replaces the program instead of stacking a stricter one on it.
    let both = cg.spawn_waiting(NULL_AND_ZERO);
    let rules = vec![
        device(true, LinuxDeviceType::C, 1, 3),
        device(true, LinuxDeviceType::C, 1, 5),
    ];
    cg.manager.apply(&devices(rules)).unwrap();
    assert_eq!(cg.release(both), "null-ok\nzero-ok\n");

    // Last match wins: a later deny of /dev/null overrides the earlier allow.
    let denied = cg.spawn_waiting(NULL_AND_ZERO);
    let rules = vec![
        device(true, LinuxDeviceType::C, 1, 3),
        device(true, LinuxDeviceType::C, 1, 5),
        device(false, LinuxDeviceType::C, 1, 3),
    ];
    cg.manager.apply(&devices(rules)).unwrap();
    // `>/dev/null` fails too, so the zero line reports denied as well.
    assert_eq!(cg.release(denied), "null-denied\nzero-denied\n");
}

#[test]
fn hybrid_joins_freezes_and_kills_through_unified() {
    if !is_root() {
        return;
    }
    if detect(Path::new(ROOT)).ok() != Some(Setup::Hybrid) {
        berth_sys::skip!("needs a hybrid cgroup host");
    }
    let unified_root = Path::new(ROOT).join("unified");
    let enabled_before = read(&unified_root, "cgroup.subtree_control");
    let mut cg = TestCgroup::new(Setup::Hybrid, Path::new(ROOT), "hybrid");
    let unified = cg.manager.unified_dir().unwrap().to_owned();
    // Controllers enabled on the unified side could never be mounted as v1 again.
    assert_eq!(
        read(&unified_root, "cgroup.subtree_control"),
        enabled_before
    );
    let child = Command::new("sleep")
        .arg("100")
        .spawn()
        .expect("spawn sleep");
    let pid = child.id() as i32;
    cg.children.push(child);
    cg.manager.add_task(pid).unwrap();
    let memory = Path::new(ROOT)
        .join("memory")
        .join(unified.file_name().unwrap());
    assert_eq!(read(&memory, "cgroup.procs"), pid.to_string());
    assert_eq!(read(&unified, "cgroup.procs"), pid.to_string());

    let stats = cg.manager.stats().unwrap();
    assert_eq!(stats.pids.current, 1);

    cg.manager.freeze().unwrap();
    assert_eq!(frozen_field(&unified), "frozen 1");
    cg.manager.thaw().unwrap();
    cg.manager
        .kill_all(berth_sys::signal::SignalNumber::KILL)
        .unwrap();
    cg.children[0].wait().unwrap();
    wait_until("an empty cgroup", || cg.manager.pids().unwrap().is_empty());
    cg.manager.destroy().unwrap();
    assert!(!unified.exists() && !memory.exists());
}

#[test]
fn v1_memory_limits_raise_and_lower_in_kernel_order() {
    if !v1_controllers(&["memory"]) {
        return;
    }
    let cg = TestCgroup::new(Setup::Legacy, Path::new(ROOT), "v1-memory");
    let dir = v1_dir("memory", "v1-memory");
    let swap = dir.join("memory.memsw.limit_in_bytes").exists();
    if !swap {
        println!("note: no swap accounting, checking memory limits only");
    }
    // 64M/128M, then both lower, then both higher: a wrong order is refused by the kernel.
    for (limit, total) in [
        (64i64 << 20, 128i64 << 20),
        (32 << 20, 48 << 20),
        (256 << 20, 512 << 20),
    ] {
        let mut memory = LinuxMemoryBuilder::default().limit(limit);
        if swap {
            memory = memory.swap(total);
        }
        let resources = LinuxResourcesBuilder::default()
            .memory(memory.build().unwrap())
            .build()
            .unwrap();
        cg.manager.apply(&resources).unwrap();
        assert_eq!(read(&dir, "memory.limit_in_bytes"), limit.to_string());
        if swap {
            assert_eq!(read(&dir, "memory.memsw.limit_in_bytes"), total.to_string());
        }
    }
}

#[test]
fn v1_pids_max() {
    if !v1_controllers(&["pids"]) {
        return;
    }
    let cg = TestCgroup::new(Setup::Legacy, Path::new(ROOT), "v1-pids");
    let pids = LinuxPidsBuilder::default().limit(10).build().unwrap();
    let resources = LinuxResourcesBuilder::default().pids(pids).build().unwrap();
    cg.manager.apply(&resources).unwrap();
    let dir = v1_dir("pids", "v1-pids");
    assert_eq!(read(&dir, "pids.max"), "10");
}

#[test]
fn v1_a_value_the_kernel_refuses_names_the_file() {
    if !v1_controllers(&["cpuset"]) {
        return;
    }
    let cg = TestCgroup::new(Setup::Legacy, Path::new(ROOT), "v1-refused");
    let cpu = oci_spec::runtime::LinuxCpuBuilder::default()
        .cpus("4095")
        .build()
        .unwrap();
    let resources = LinuxResourcesBuilder::default().cpu(cpu).build().unwrap();
    let err = cg.manager.apply(&resources).unwrap_err().to_string();
    assert!(
        err.starts_with("write \"4095\" to /sys/fs/cgroup/cpuset/"),
        "{err}"
    );
    assert!(err.contains("cpuset.cpus: "), "{err}");
}

#[test]
fn v1_freezer_and_kill() {
    if !v1_controllers(&["freezer"]) {
        return;
    }
    let mut cg = TestCgroup::new(Setup::Legacy, Path::new(ROOT), "v1-freezer");
    let child = Command::new("sleep")
        .arg("100")
        .spawn()
        .expect("spawn sleep");
    let pid = child.id() as i32;
    cg.children.push(child);
    // Joining every hierarchy includes cpuset, which works only once cpus/mems were copied.
    cg.manager.add_task(pid).unwrap();
    let dir = v1_dir("freezer", "v1-freezer");
    cg.manager.freeze().unwrap();
    assert_eq!(read(&dir, "freezer.state"), "FROZEN");
    assert_eq!(cg.manager.state().unwrap(), FreezerState::Frozen);
    cg.manager.thaw().unwrap();
    assert_eq!(read(&dir, "freezer.state"), "THAWED");

    // No cgroup.kill on v1: freeze, signal each, thaw.
    cg.manager
        .kill_all(berth_sys::signal::SignalNumber::KILL)
        .unwrap();
    cg.children[0].wait().unwrap();
    wait_until("an empty cgroup", || cg.manager.pids().unwrap().is_empty());
    cg.manager.destroy().unwrap();
    assert!(!dir.exists());
}

#[test]
fn v1_devices_allow_only_the_listed_devices() {
    if !v1_controllers(&["devices"]) {
        return;
    }
    let mut cg = TestCgroup::new(Setup::Legacy, Path::new(ROOT), "v1-devices");
    let waiting = cg.spawn_waiting(NULL_AND_ZERO);
    let rules = vec![device(true, LinuxDeviceType::C, 1, 3)];
    cg.manager.apply(&devices(rules)).unwrap();
    let dir = v1_dir("devices", "v1-devices");
    assert_eq!(read(&dir, "devices.list"), "c 1:3 rwm");
    assert_eq!(cg.release(waiting), "null-ok\nzero-denied\n");
}
