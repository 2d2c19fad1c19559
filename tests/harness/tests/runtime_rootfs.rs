//! Black-box tests of berth-runc's known-escape defences, its errors and its root filesystem
//! options, on the real kernel: each runs containers from a busybox bundle and asserts from
//! inside with berth-probe, or on what the runtime leaves behind.

use berth_harness::need_root;
use std::collections::HashMap;
use std::path::Path;

use berth_harness::{unique, Bundle, Runtime};
use serde_json::Value;

/// Runs `args` in a fresh container of `bundle` and returns the probe's JSON.
fn probe(rt: &Runtime, bundle: &Bundle) -> Value {
    let out = rt.run_container(&unique("probe"), bundle).ok();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("probe output is not JSON ({e}): {out}"))
}

#[test]
fn no_host_descriptor_reaches_the_container() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["berth-probe"]);
    let v = probe(&rt, &bundle);
    let fds = v["fds"].as_object().unwrap();
    for (fd, target) in fds {
        let n: u32 = fd.parse().unwrap();
        // 0-2 are stdio; the probe itself holds one fd open to read /proc/self/fd.
        assert!(
            n <= 2 || target.as_str().unwrap().contains("/proc/"),
            "fd {fd} -> {target} leaked"
        );
    }
}

#[test]
fn symlinked_proc_and_mount_escapes_are_refused() {
    need_root!();
    let rt = Runtime::new();
    // /proc as a symlink to / in the rootfs: refused.
    let bundle = Bundle::new(&["true"]);
    std::fs::remove_dir(bundle.rootfs().join("proc")).unwrap();
    std::os::unix::fs::symlink("/", bundle.rootfs().join("proc")).unwrap();
    let id = unique("symproc");
    let ran = rt.run_container(&id, &bundle);
    assert!(!ran.success());
    assert!(
        ran.stderr.contains("/proc is a symbolic link"),
        "{}",
        ran.stderr
    );
    assert!(!rt.root().join(&id).exists());

    // A mount destination through a symlink pointing out of the rootfs lands inside it.
    let outside = tempfile::tempdir().unwrap();
    let mut bundle = Bundle::new(&["true"]);
    std::os::unix::fs::symlink(outside.path(), bundle.rootfs().join("escape")).unwrap();
    let m: oci_spec::runtime::Mount = serde_json::from_value(
        serde_json::json!({"destination": "/escape/x", "type": "tmpfs", "source": "tmpfs"}),
    )
    .unwrap();
    let mut mounts = bundle.spec().mounts().clone().unwrap();
    mounts.push(m);
    bundle.spec_mut().set_mounts(Some(mounts));
    bundle.write();
    rt.run_container(&unique("escape"), &bundle).ok();
    assert!(
        !outside.path().join("x").exists(),
        "mount destination escaped the rootfs"
    );
}

#[test]
fn a_fake_dev_null_is_refused_before_masking() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["true"]);
    // A /dev bind-mounted from the rootfs (no tmpfs /dev), whose null is a regular file.
    std::fs::create_dir_all(bundle.rootfs().join("dev")).unwrap();
    std::fs::write(bundle.rootfs().join("dev/null"), "").unwrap();
    let mounts: Vec<_> = bundle
        .spec()
        .mounts()
        .clone()
        .unwrap()
        .into_iter()
        .filter(|m| !m.destination().starts_with("/dev"))
        .collect();
    bundle.spec_mut().set_mounts(Some(mounts));
    bundle.write();
    let ran = rt.run_container(&unique("devnull"), &bundle);
    assert!(!ran.success());
    assert!(
        ran.stderr.contains("/dev/null is not the null device"),
        "{}",
        ran.stderr
    );
}

#[test]
fn bad_configs_fail_with_one_clear_line_and_leave_nothing() {
    need_root!();
    let rt = Runtime::new();
    type Case = (&'static str, Box<dyn Fn(&mut Bundle)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "bad json",
            Box::new(|b: &mut Bundle| {
                std::fs::write(b.path().join("config.json"), "{not json").unwrap()
            }),
            "config.json",
        ),
        (
            "unknown namespace",
            Box::new(|b: &mut Bundle| {
                let text = std::fs::read_to_string(b.path().join("config.json"))
                    .unwrap()
                    .replace("\"uts\"", "\"bogus\"");
                std::fs::write(b.path().join("config.json"), text).unwrap();
            }),
            "bogus",
        ),
        (
            "rootfs outside",
            Box::new(|b: &mut Bundle| {
                b.spec_mut()
                    .root_mut()
                    .as_mut()
                    .unwrap()
                    .set_path("../../etc".into());
                b.write();
            }),
            "leaves the bundle",
        ),
        (
            "missing binary",
            Box::new(|b: &mut Bundle| {
                b.spec_mut()
                    .process_mut()
                    .as_mut()
                    .unwrap()
                    .set_args(Some(vec!["no-such-binary".into()]));
                b.write();
            }),
            "executable file not found",
        ),
    ];
    for (name, break_it, expect) in cases {
        let mut bundle = Bundle::new(&["true"]);
        let cg = bundle
            .spec()
            .linux()
            .as_ref()
            .unwrap()
            .cgroups_path()
            .clone()
            .unwrap();
        break_it(&mut bundle);
        let id = unique("bad");
        let ran = rt.run(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
        assert!(!ran.success(), "{name}: create succeeded");
        assert_eq!(
            ran.stderr.trim().lines().count(),
            1,
            "{name}: not one line: {}",
            ran.stderr
        );
        assert!(
            ran.stderr.contains(expect),
            "{name}: {:?} lacks {expect:?}",
            ran.stderr
        );
        assert!(
            !rt.root().join(&id).exists(),
            "{name}: state directory left behind"
        );
        let cg_dir = Path::new("/sys/fs/cgroup/pids").join(cg.strip_prefix("/").unwrap());
        assert!(
            !cg_dir.exists(),
            "{name}: cgroup {} left behind",
            cg_dir.display()
        );
    }
}

#[test]
fn sysctl_oom_score_rlimits_umask_and_readonly_root() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["berth-probe"]);
    let spec = bundle.spec_mut();
    spec.root_mut().as_mut().unwrap().set_readonly(Some(true));
    let linux = spec.linux_mut().as_mut().unwrap();
    linux.set_sysctl(Some(HashMap::from([(
        "net.ipv4.ip_forward".to_string(),
        "1".to_string(),
    )])));
    let process = spec.process_mut().as_mut().unwrap();
    process.set_oom_score_adj(Some(123));
    let mut user = process.user().clone();
    user.set_umask(Some(0o027));
    process.set_user(user);
    let rl: oci_spec::runtime::PosixRlimit = serde_json::from_value(
        serde_json::json!({"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}),
    )
    .unwrap();
    process.set_rlimits(Some(vec![rl]));
    bundle.write();
    let v = probe(&rt, &bundle);
    assert_eq!(v["oom_score_adj"], 123);
    assert_eq!(v["umask"], "0027");
    let nofile = &v["rlimits"]["RLIMIT_NOFILE"];
    assert_eq!(
        (nofile["soft"].as_u64(), nofile["hard"].as_u64()),
        (Some(256), Some(512)),
        "{}",
        v["rlimits"]
    );
    let root_mount = v["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["mount_point"] == "/")
        .unwrap()
        .clone();
    assert!(
        root_mount["options"]
            .as_str()
            .unwrap()
            .split(',')
            .any(|o| o == "ro"),
        "{root_mount}"
    );

    let mut bundle = Bundle::new(&["berth-probe", "cat", "/proc/sys/net/ipv4/ip_forward"]);
    let linux = bundle.spec_mut().linux_mut().as_mut().unwrap();
    linux.set_sysctl(Some(HashMap::from([(
        "net.ipv4.ip_forward".to_string(),
        "1".to_string(),
    )])));
    bundle.write();
    assert_eq!(
        rt.run_container(&unique("sysctl"), &bundle).ok().trim(),
        "1"
    );
}

#[test]
fn no_pivot_runs_with_a_moved_root() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&["sh", "-c", "cat /proc/self/mountinfo | head -1; exit 4"]);
    let id = unique("nopivot");
    let ran = rt.run(&[
        "run",
        "--no-pivot",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    assert_eq!(ran.code(), Some(4), "{ran:?}");
}

#[test]
fn a_hook_that_times_out_fails_create_and_the_log_says_why_in_json() {
    need_root!();
    let rt = Runtime::new();
    let mut bundle = Bundle::new(&["true"]);
    let hooks: oci_spec::runtime::Hooks = serde_json::from_value(serde_json::json!({
        "createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]
    }))
    .unwrap();
    bundle.spec_mut().set_hooks(Some(hooks));
    bundle.write();
    let log = tempfile::NamedTempFile::new().unwrap();
    let id = unique("hooktimeout");
    let ran = rt.run(&[
        "--log",
        log.path().to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    assert!(!ran.success());
    let text = std::fs::read_to_string(log.path()).unwrap();
    let line: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(line["level"], "error");
    assert!(
        line["msg"].as_str().unwrap().contains("timed out after 1s"),
        "{line}"
    );
    assert!(!rt.root().join(&id).exists());
}

/// A read-only cgroup mount (oci-spec's default, as Docker's): on this hybrid host a tmpfs with
/// one bind per hierarchy of the container's own cgroups, every one of them read-only, nosuid,
/// nodev and noexec, and showing the container's cgroup, not the host's root.
#[test]
fn the_cgroup_mount_is_read_only_and_shows_the_containers_own_cgroups() {
    need_root!();
    let rt = Runtime::new();
    let bundle = Bundle::new(&[
        "sh",
        "-c",
        "grep ' /sys/fs/cgroup' /proc/self/mountinfo; echo ---; cat /sys/fs/cgroup/pids/cgroup.procs; \
         mkdir /sys/fs/cgroup/pids/x 2>/dev/null && echo wrote; true",
    ]);
    let id = unique("cgmount");
    let ran = rt.run_container(&id, &bundle);
    rt.run(&["delete", "--force", &id]);
    assert!(ran.success(), "{}", ran.stderr);
    let (mounts, rest) = ran.stdout.split_once("---\n").expect("two parts");
    let lines: Vec<&str> = mounts.lines().collect();
    assert!(lines.len() > 2, "too few cgroup mounts: {mounts}");
    for line in &lines {
        // Field 6 holds the per-mount options.
        let opts: Vec<&str> = line.split(' ').nth(5).unwrap_or("").split(',').collect();
        for want in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(opts.contains(&want), "{want} missing: {line}");
        }
    }
    assert!(
        lines.iter().any(|l| l.contains(" /sys/fs/cgroup/pids ")),
        "{mounts}"
    );
    // Only the container's own processes (its shell is PID 1): its cgroup, not the host's root.
    let pids: Vec<&str> = rest.lines().filter(|l| *l != "wrote").collect();
    assert!(pids.contains(&"1") && pids.len() <= 3, "{rest}");
    assert!(!rest.contains("wrote"), "the cgroup mount is writable");
}
