//! Real kernel: a spec from `spec::build` run by `berth-runc` over a busybox root, checked
//! from inside (user, groups, hostname, environment, capabilities, sysctls, /dev/shm,
//! read-only /proc paths).

mod spec_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

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
    for applet in ["sh", "id", "hostname", "cat", "grep", "ls", "env"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
}

const SCRIPT: &str = "id; hostname; echo HOME=$HOME; grep -E '^Cap(Eff|Bnd)' /proc/self/status; \
    cat /proc/sys/net/ipv4/ip_unprivileged_port_start; grep ' /dev/shm ' /proc/mounts; \
    cat /etc/hostname; grep ' /proc/sys ' /proc/mounts; echo done";

#[test]
fn built_spec_runs_under_berth_runc() {
    if !nix::unistd::geteuid().is_root() || !Path::new("/bin/busybox").exists() {
        println!("skipped: needs root and busybox-static");
        return;
    }
    if !runc_bin().exists() {
        println!("skipped: needs target/debug/berth-runc (cargo build -p berth-runc)");
        return;
    }
    let f = Fixture::new();
    busybox_root(&f.rootfs());
    fs::write(&f.etc.hostname, "0123456789ab\n").unwrap();
    fs::write(
        &f.etc.hosts,
        berth_engine::spec::hosts_file("0123456789ab", None, &[]).unwrap(),
    )
    .unwrap();
    fs::write(&f.etc.resolv_conf, "nameserver 10.0.0.1\n").unwrap();
    let mut req = request();
    req.user = Some("app".into());
    req.cap_add = vec!["NET_ADMIN".into()];
    req.cmd = vec!["sh".into(), "-c".into(), SCRIPT.into()];
    let built = f.build_ok(&req);
    let mut spec = built.spec;
    let cgroup = format!("/berth-spec-test-{}", std::process::id());
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
        id: format!("spec-run-{}", std::process::id()),
    };
    let out = Command::new(runc_bin())
        .arg("--root")
        .arg(state.path())
        .args(["run", "--bundle"])
        .arg(f.dir.path())
        .arg(&guard.id)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "berth-runc run failed: {stderr}\n{stdout}"
    );
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
