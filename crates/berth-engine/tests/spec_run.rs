//! Real kernel: a spec from `spec::build` run by `berth-runc` over a busybox root, checked
//! from inside (user, groups, hostname, environment, capabilities, sysctls, /dev/shm,
//! read-only /proc paths).

mod spec_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use berth_engine::request::MountRequest;
use spec_support::*;

/// The workspace's debug berth-runc, built by `cargo build` (not by this test).
fn runc_bin() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/berth-runc")
}

/// Deletes the container (and with it its cgroup) even when an assertion failed.
struct Container<'a> {
    root: &'a Path,
    id: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = Command::new(runc_bin())
            .arg("--root")
            .arg(self.root)
            .args(["delete", "--force", &self.id])
            .output();
    }
}

fn busybox_root(rootfs: &Path) {
    for dir in ["bin", "dev", "proc", "sys", "tmp", "home/app"] {
        fs::create_dir_all(rootfs.join(dir)).unwrap();
    }
    fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "id", "hostname", "cat", "grep", "ls", "env", "touch", "test",
    ] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
}

/// Runs `spec` in `f`'s bundle with berth-runc, deleting it afterwards; returns its stdout.
fn run(f: &Fixture, name: &str, mut spec: oci_spec::runtime::Spec) -> String {
    let cgroup = format!("/berth-spec-test-{name}-{}", std::process::id());
    spec.linux_mut()
        .as_mut()
        .unwrap()
        .set_cgroups_path(Some(cgroup.into()));
    fs::write(
        f.dir.path().join("config.json"),
        serde_json::to_vec(&spec).unwrap(),
    )
    .unwrap();
    let state = tempfile::tempdir().unwrap();
    let guard = Container {
        root: state.path(),
        id: format!("spec-{name}-{}", std::process::id()),
    };
    let out = Command::new(runc_bin())
        .arg("--root")
        .arg(state.path())
        .args(["run", "--bundle"])
        .arg(f.dir.path())
        .arg(&guard.id)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "berth-runc run failed: {stderr}\n{stdout}"
    );
    stdout
}

/// Whether this test can run here; prints why not (or fails where a skip would hide a gap).
fn can_run() -> bool {
    use berth_sys::test_support::skipping;
    if !nix::unistd::geteuid().is_root() || !Path::new("/bin/busybox").exists() {
        skipping(format_args!("needs root and busybox-static"));
        return false;
    }
    if !runc_bin().exists() {
        skipping(format_args!(
            "needs target/debug/berth-runc (cargo build -p berth-runc)"
        ));
        return false;
    }
    true
}

/// A fixture whose root holds busybox and whose /etc files are written.
fn fixture() -> Fixture {
    let f = Fixture::new();
    busybox_root(&f.rootfs());
    fs::write(&f.etc.hostname, "0123456789ab\n").unwrap();
    let hosts = berth_engine::spec::hosts_file("0123456789ab", None, &["db:10.1.2.3".into()]);
    fs::write(&f.etc.hosts, hosts.unwrap()).unwrap();
    fs::write(&f.etc.resolv_conf, "nameserver 10.0.0.1\n").unwrap();
    f
}

const SCRIPT: &str = "id; hostname; echo HOME=$HOME; grep -E '^Cap(Eff|Bnd)' /proc/self/status; \
    cat /proc/sys/net/ipv4/ip_unprivileged_port_start; grep ' /dev/shm ' /proc/mounts; \
    cat /etc/hostname; grep ' /proc/sys ' /proc/mounts; echo done";

#[test]
fn built_spec_runs_under_berth_runc() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let mut req = request();
    req.user = Some("app".into());
    req.cap_add = vec!["NET_ADMIN".into()];
    req.cmd = vec!["sh".into(), "-c".into(), SCRIPT.into()];
    let built = f.build_ok(&req);
    let stdout = run(&f, "user", built.spec);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        "uid=1000(app) gid=1000(app) groups=10(wheel),50(staff)"
    );
    assert_eq!(lines[1], "0123456789ab");
    assert_eq!(lines[2], "HOME=/home/app");
    // A non-root user keeps no effective capability; the bounding set is Docker's + NET_ADMIN.
    assert_eq!(lines[3], "CapEff:\t0000000000000000");
    assert_eq!(lines[4], "CapBnd:\t00000000a80435fb");
    assert_eq!(lines[5], "0");
    assert!(
        lines[6].starts_with("shm /dev/shm tmpfs rw,nosuid,nodev,noexec"),
        "{stdout}"
    );
    assert!(lines[6].contains("size=65536k"), "64 MiB: {stdout}");
    assert_eq!(lines[7], "0123456789ab");
    assert!(
        lines[8].contains(" ro,"),
        "/proc/sys is read-only: {stdout}"
    );
    assert_eq!(lines[9], "done");
}

#[test]
fn read_only_root_with_mounts_and_seccomp() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let host_dir = f.dir.path().join("shared");
    fs::create_dir(&host_dir).unwrap();
    fs::write(host_dir.join("file"), "from the host\n").unwrap();
    let mut req = request();
    req.read_only = true;
    req.mounts = vec![
        MountRequest {
            kind: "tmpfs".into(),
            source: String::new(),
            target: "/scratch".into(),
            read_only: false,
            options: vec!["size=1m".into()],
        },
        MountRequest {
            kind: "bind".into(),
            source: host_dir.to_string_lossy().into(),
            target: "/data".into(),
            read_only: true,
            options: vec![],
        },
    ];
    req.cmd = vec!["sh".into(), "-c".into(), READ_ONLY_SCRIPT.into()];
    let stdout = run(&f, "ro", f.build_ok(&req).spec);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "root: no", "{stdout}");
    assert_eq!(lines[1], "scratch: yes", "{stdout}");
    assert_eq!(lines[2], "from the host");
    assert_eq!(lines[3], "data: no", "{stdout}");
    assert_eq!(lines[4], "10.1.2.3\tdb");
    assert_eq!(lines[5], "Seccomp:\t2", "Docker's default profile is on");
    assert_eq!(
        lines[6], "CapEff:\t00000000a80425fb",
        "root keeps Docker's 14"
    );
}

const READ_ONLY_SCRIPT: &str = "touch /x 2>/dev/null && echo 'root: yes' || echo 'root: no'; \
    touch /scratch/x && echo 'scratch: yes' || echo 'scratch: no'; cat /data/file; \
    touch /data/y 2>/dev/null && echo 'data: yes' || echo 'data: no'; grep db /etc/hosts; \
    grep -E '^Seccomp:' /proc/self/status; grep -E '^CapEff' /proc/self/status";

#[test]
fn privileged_sees_the_hosts_capabilities_and_devices() {
    if !can_run() {
        return;
    }
    let f = fixture();
    let mut req = request();
    req.privileged = true;
    req.cmd = vec!["sh".into(), "-c".into(), PRIVILEGED_SCRIPT.into()];
    let stdout = run(&f, "priv", f.build_ok(&req).spec);
    let lines: Vec<&str> = stdout.lines().collect();
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let host_bnd = status.lines().find(|l| l.starts_with("CapBnd:")).unwrap();
    assert_eq!(lines[0], host_bnd.replace("CapBnd", "CapEff"), "{stdout}");
    assert_eq!(lines[1], "Seccomp:\t0");
    assert!(lines[2].starts_with("sysfs /sys sysfs rw,"), "{stdout}");
    assert_eq!(lines[3], "null: yes", "{stdout}");
    let loops = std::fs::read_dir("/dev")
        .unwrap()
        .flatten()
        .any(|e| e.file_name() == "loop-control");
    assert_eq!(
        lines[4],
        if loops {
            "loop-control: yes"
        } else {
            "loop-control: no"
        }
    );
}

const PRIVILEGED_SCRIPT: &str = "grep -E '^CapEff' /proc/self/status; \
    grep -E '^Seccomp:' /proc/self/status; grep ' /sys ' /proc/mounts; \
    test -c /dev/null && echo 'null: yes' || echo 'null: no'; \
    test -c /dev/loop-control && echo 'loop-control: yes' || echo 'loop-control: no'";
