//! Podman for one test: its own storage root, run root, tmpdir and containers.conf in a temp
//! dir, cgroupfs and file events (no systemd, no journald), the runtime under test as
//! `--runtime`; containers, conmon and mounts cleaned on drop, failing or not.
//!
//! Found on Debian 12's podman 4.3.1 (rootful), and why the setup looks as it does:
//! - With no `--ulimit`, podman asks for nofile and nproc 1048576, above this host's hard
//!   limits; root lacks CAP_SYS_RESOURCE, so every runtime fails setrlimit (runc: "error setting
//!   rlimit type 7"). `--ulimit host` is ignored by 4.3.1 and `-1` means unlimited, so
//!   containers.conf's `default_ulimits` sets values that only ever lower: 1024 open files, as
//!   `runc spec` does, and nproc 4096 (the kernel does not count processes against uid 0).
//! - Podman passes the runtime no `--root` when rootful, and `--runtime-flag root=...` reaches
//!   create/start/exec/kill but not the `delete --force` of `podman container cleanup` (run by
//!   conmon at exit), which would leave state behind. So the runtime keeps its default root.
//! - `lock_type = "file"` keeps podman's locks in our tmpdir rather than the host-wide
//!   /dev/shm/libpod_lock segment that other podman roots would share.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use super::{image, run_ok, Teardown};

pub struct Podman {
    dir: TempDir,
    runtime: PathBuf,
}

impl Podman {
    /// Sets up the directories and config, and loads the busybox image.
    pub fn new(runtime: &Path) -> Podman {
        let dir = tempfile::Builder::new()
            .prefix("berth-podman-")
            .tempdir()
            .expect("temp dir");
        let conf = r#"[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
lock_type = "file"
"#;
        fs::write(dir.path().join("containers.conf"), conf).expect("write containers.conf");
        let podman = Podman {
            dir,
            runtime: runtime.to_owned(),
        };
        let tar = image::busybox_archive(podman.dir.path());
        run_ok(podman.podman().args(["load", "--input"]).arg(&tar));
        podman
    }

    /// `podman` with this test's roots, config and runtime.
    pub fn podman(&self) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", d.join("containers.conf"));
        cmd.arg("--root").arg(d.join("root"));
        cmd.arg("--runroot").arg(d.join("runroot"));
        cmd.arg("--tmpdir").arg(d.join("tmp"));
        cmd.args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
        cmd.arg("--runtime").arg(&self.runtime);
        cmd
    }

    /// `podman run <flags>` without a network (this machine has none) and never pulling.
    pub fn podman_run(&self, flags: &[&str]) -> Command {
        let mut cmd = self.podman();
        cmd.args(["run", "--network", "none", "--pull", "never"])
            .args(flags);
        cmd
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let mut teardown = Teardown::default();
        let d = self.dir.path().to_owned();
        let mut list = self.podman();
        list.args(["ps", "--all", "--quiet", "--no-trunc"])
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        let ids = list
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if !ids.trim().is_empty() {
            println!("teardown: podman rm --all --force");
            if !teardown.quiet(
                self.podman()
                    .args(["rm", "--all", "--force", "--time", "0"]),
            ) {
                teardown.note("podman rm --all --force failed");
            }
        }
        // The runtime's state lives in its default root (see the module note); make sure none
        // of our containers is left there if podman lost track of one.
        for id in ids.split_whitespace() {
            teardown.quiet(Command::new(&self.runtime).args(["delete", "--force", id]));
        }
        // conmon carries our paths (bundle, exit dir) on its command line.
        teardown.kill_processes_mentioning(&d);
        teardown.unmount_under(&d);
        if let Err(e) = fs::remove_dir_all(&d) {
            teardown.note(format!("rm -r {}: {e}", d.display()));
        }
        teardown.finish("podman");
    }
}
