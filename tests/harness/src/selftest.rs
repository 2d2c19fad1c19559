//! Tests of the harness itself: the static probe runs in a bare chroot of a bundle's rootfs,
//! bundles carry the config they claim, and `Runtime` cleans up after itself.

use super::*;
use serde_json::Value;
use std::io::{BufRead, BufReader};

/// Runs `args` inside `chroot <rootfs>`.
fn chroot(bundle: &Bundle, args: &[&str]) -> Ran {
    let mut command = Command::new("chroot");
    command.arg(bundle.rootfs()).args(args).stdin(Stdio::null());
    run_with_timeout(command, COMMAND_TIMEOUT)
}

/// Root, busybox-static and chroot(8), or the reason the test is skipped.
fn missing() -> Option<&'static str> {
    if !is_root() {
        return Some("needs root");
    }
    if !Path::new(BUSYBOX).exists() {
        return Some("needs busybox-static (/bin/busybox)");
    }
    (!have("chroot")).then_some("needs chroot(8)")
}

/// True if the ELF64 executable has a PT_INTERP program header, i.e. needs a dynamic loader.
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().unwrap()) as usize;
    assert_eq!(&elf[..5], b"\x7fELF\x02", "not an ELF64 file");
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == PT_INTERP
    })
}

#[test]
fn probe_is_static() {
    let probe = fs::read(probe_bin()).unwrap();
    assert!(
        !has_interpreter(&probe),
        "{} is dynamically linked",
        probe_bin().display()
    );
    assert!(
        has_interpreter(&fs::read("/bin/sh").unwrap()),
        "the check itself works"
    );
}

#[test]
fn probe_reports_json_inside_an_empty_chroot() {
    if let Some(why) = missing() {
        skip!("{why}");
    }
    let bundle = Bundle::new(&["/bin/berth-probe"]);
    let ran = chroot(&bundle, &["/bin/berth-probe"]);
    let stdout = ran.ok();
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["cwd"], "/");
    assert!(report["pid"].as_u64().unwrap() > 1);
    // No /proc in the chroot: the fields that need it are null or empty, not an error.
    assert!(report["uid"].is_null());
    assert!(report["mounts"].as_array().unwrap().is_empty());
    assert!(report["ns"].as_object().unwrap().is_empty());
    assert!(report["caps"]["CapEff"].is_null());
    assert!(report["env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().starts_with("PATH=")));
}

#[test]
fn probe_reports_proc_when_mounted() {
    let probe = probe_bin();
    let ran = run_with_timeout(Command::new(&probe), COMMAND_TIMEOUT);
    let report: Value = serde_json::from_str(&ran.ok()).unwrap();
    for kind in ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"] {
        assert!(report["ns"][kind].as_u64().is_some(), "ns {kind}: {report}");
    }
    assert_eq!(report["caps"]["CapEff"].as_str().unwrap().len(), 16);
    assert!(report["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["mount_point"] == "/"));
    let nofile = &report["rlimits"]["RLIMIT_NOFILE"];
    assert!(nofile["soft"].as_u64().unwrap() <= nofile["hard"].as_u64().unwrap());
    assert!(report["fds"]["0"].is_string(), "{report}");
    assert!(report["clock"]["boottime_secs"].as_f64().unwrap() > 0.0);
    assert!(report["clock"]["monotonic_secs"].as_f64().unwrap() > 0.0);
    assert!(report["umask"].as_str().unwrap().starts_with('0'));
}

#[test]
fn probe_subcommands_in_a_chroot() {
    if let Some(why) = missing() {
        skip!("{why}");
    }
    let bundle = Bundle::new(&["/bin/berth-probe"]);
    assert_eq!(
        chroot(&bundle, &["/bin/berth-probe", "mkdir", "/tmp/d"])
            .ok()
            .trim(),
        "ok"
    );
    let again = chroot(&bundle, &["/bin/berth-probe", "mkdir", "/tmp/d"]);
    assert_eq!(again.code(), Some(1));
    let error: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(
        (error["errno"].as_i64(), error["errno_name"].as_str()),
        (Some(17), Some("EEXIST"))
    );
    chroot(&bundle, &["/bin/berth-probe", "write", "/tmp/f", "hello"]).ok();
    assert_eq!(
        chroot(&bundle, &["/bin/berth-probe", "cat", "/tmp/f"]).ok(),
        "hello"
    );
    assert_eq!(
        chroot(&bundle, &["/bin/berth-probe", "exit", "3"]).code(),
        Some(3)
    );
    let unknown = chroot(&bundle, &["/bin/berth-probe", "frobnicate"]);
    assert_eq!(unknown.code(), Some(2));
    assert!(unknown.stderr.starts_with("usage: berth-probe"));
    let forks: Value =
        serde_json::from_str(&chroot(&bundle, &["/bin/berth-probe", "forkbomb", "3"]).ok())
            .unwrap();
    assert_eq!(forks["spawned"], 3, "{forks}");
    let alloc: Value =
        serde_json::from_str(&chroot(&bundle, &["/bin/berth-probe", "alloc", "8"]).ok()).unwrap();
    assert_eq!(alloc["allocated_mb"], 8);
    // busybox applets work in the same rootfs.
    assert_eq!(
        chroot(&bundle, &["/bin/sh", "-c", "echo hi | wc -l"])
            .ok()
            .trim(),
        "1"
    );
}

#[test]
fn probe_signal_wait_exits_zero_on_sigterm() {
    if let Some(why) = missing() {
        skip!("{why}");
    }
    let bundle = Bundle::new(&["/bin/berth-probe"]);
    let mut child = Command::new("chroot")
        .arg(bundle.rootfs())
        .args(["/bin/berth-probe", "signal-wait"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    // chroot and the probe exec in place: the child's pid is the waiting shell's.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status}");
    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "got SIGTERM\n");
}

#[test]
fn bundle_writes_the_adjusted_spec() {
    if !Path::new(BUSYBOX).exists() {
        skip!("needs busybox-static (/bin/busybox)");
    }
    let mut bundle = Bundle::new(&["/bin/berth-probe", "exit", "0"]);
    let spec = Spec::load(bundle.path().join("config.json")).unwrap();
    let process = spec.process().as_ref().unwrap();
    assert_eq!(
        process.args().as_ref().unwrap(),
        &["/bin/berth-probe", "exit", "0"]
    );
    assert_eq!(process.terminal(), Some(false));
    assert_eq!(spec.root().as_ref().unwrap().path(), Path::new("rootfs"));
    let cgroups = spec
        .linux()
        .as_ref()
        .unwrap()
        .cgroups_path()
        .clone()
        .unwrap();
    let other = Bundle::new(&["true"]);
    assert_ne!(
        Some(cgroups),
        other
            .spec()
            .linux()
            .as_ref()
            .unwrap()
            .cgroups_path()
            .clone()
    );

    bundle.spec_mut().set_hostname(Some("changed".into()));
    bundle.write();
    let spec = Spec::load(bundle.path().join("config.json")).unwrap();
    assert_eq!(spec.hostname().as_deref(), Some("changed"));
    for applet in APPLETS {
        assert!(
            bundle.rootfs().join("bin").join(applet).exists(),
            "{applet}"
        );
    }
}

#[test]
fn runtime_force_deletes_what_it_created_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let fake = dir.path().join("fake-runc");
    fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let root = {
        let runtime = Runtime::with_binary(&fake);
        assert!(runtime.run(&["create", "--bundle", "/b", "one"]).success());
        assert!(runtime.run(&["run", "two"]).success());
        assert!(runtime.start("one").success());
        runtime.root().display().to_string()
    };
    let calls = fs::read_to_string(&log).unwrap();
    let expected = format!(
        "--root {root} create --bundle /b one\n--root {root} run two\n--root {root} start one\n\
         --root {root} delete --force one\n--root {root} delete --force two\n"
    );
    assert_eq!(calls, expected);
    assert!(
        !Path::new(&root).exists(),
        "the state directory is removed too"
    );
}
