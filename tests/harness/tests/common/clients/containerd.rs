//! A private containerd for one test: its own config, root, state and socket in a temp dir, no
//! CRI plugin, killed and cleaned (tasks, shims, mounts, runtime state) on drop, failing or not.
//!
//! How the runtime is chosen: `ctr run --runc-binary <path>` sets `BinaryName` in the
//! io.containerd.runc.v2 runtime options; the shim (containerd-shim-runc-v2) then calls
//! `<path> --root <runc-root>/<namespace> --log <bundle>/log.json --log-format json create
//! --bundle ... --pid-file ... [--console-socket ...] <id>`, then `start`, `kill`, `delete`
//! and a final `delete --force`. `--runc-root` keeps that state in our temp dir, not /run.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tempfile::TempDir;

use super::{image, run, run_ok, wait_until, Teardown};

pub const NAMESPACE: &str = "berth-test";

pub struct Containerd {
    dir: TempDir,
    daemon: Child,
    runtime: PathBuf,
}

impl Containerd {
    /// Starts containerd, waits until it answers, and imports the busybox image.
    pub fn start(runtime: &Path) -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("berth-ctrd-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path().to_owned();
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
# No CRI: the tests talk to containerd through ctr only.
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = "{d}/debug.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
"#,
            d = d.display()
        );
        fs::write(d.join("config.toml"), config).expect("write containerd config");
        let log = File::create(d.join("containerd.log")).expect("containerd log");
        let mut cmd = Command::new("containerd");
        cmd.arg("--config").arg(d.join("config.toml"));
        println!(
            "+ {} &  (log: {})",
            super::shown(&cmd),
            d.join("containerd.log").display()
        );
        let daemon = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let containerd = Containerd {
            dir,
            daemon,
            runtime: runtime.to_owned(),
        };
        // A readiness wait, not a timing: the socket answers once every plugin is loaded.
        wait_until("containerd answering on its socket", || {
            let mut version = containerd.ctr();
            version
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            matches!(version.status(), Ok(s) if s.success())
        });
        let tar = image::busybox_archive(&d);
        run_ok(containerd.ctr().args(["images", "import"]).arg(&tar));
        containerd
    }

    /// `ctr` bound to this containerd and the test namespace.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.socket())
            .args(["--namespace", NAMESPACE]);
        cmd
    }

    /// `ctr run <flags> --runc-binary <runtime> ...`, ready for the image, id and args.
    pub fn ctr_run(&self, flags: &[&str]) -> Command {
        let mut cmd = self.ctr();
        cmd.arg("run").args(flags);
        cmd.arg("--runc-binary").arg(&self.runtime);
        cmd.arg("--runc-root").arg(self.runc_root());
        // ctr's stdio fifos default to /run/containerd/fifo; keep them ours.
        cmd.arg("--fifo-dir").arg(self.dir.path().join("fifo"));
        cmd
    }

    /// The `--root` the shim passes to the runtime for our namespace.
    pub fn runtime_state_root(&self) -> PathBuf {
        self.runc_root().join(NAMESPACE)
    }

    /// The task's status as `ctr task ls` prints it (RUNNING, STOPPED, ...), if listed.
    pub fn task_status(&self, id: &str) -> Option<String> {
        let listing = run(self.ctr().args(["task", "ls"])).stdout;
        listing.lines().skip(1).find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.first() == Some(&id)).then(|| fields.last().unwrap_or(&"").to_string())
        })
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("containerd.sock")
    }

    fn runc_root(&self) -> PathBuf {
        self.dir.path().join("runc")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let mut teardown = Teardown::default();
        let d = self.dir.path().to_owned();
        if std::thread::panicking() {
            // The daemon's own account is often the quickest explanation of a failure.
            let log = fs::read_to_string(d.join("containerd.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "containerd.log (last lines):\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        // Through containerd first: it knows the tasks and removes its snapshots' mounts.
        let mut list = self.ctr();
        list.args(["containers", "ls", "-q"])
            .stderr(Stdio::null())
            .stdin(Stdio::null());
        let ids = list
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        for id in ids.split_whitespace() {
            println!("teardown: removing container {id}");
            teardown.quiet(self.ctr().args(["task", "kill", "--signal", "SIGKILL", id]));
            teardown.quiet(self.ctr().args(["task", "delete", "--force", id]));
            if !teardown.quiet(self.ctr().args(["containers", "rm", id])) {
                teardown.note(format!("ctr containers rm {id} failed"));
            }
        }
        // Then anything the runtime still has, in case containerd lost track of it.
        if let Ok(entries) = fs::read_dir(self.runtime_state_root()) {
            for entry in entries.flatten() {
                let id = entry.file_name();
                println!(
                    "teardown: {} delete --force {}",
                    self.runtime.display(),
                    id.to_string_lossy()
                );
                let mut delete = Command::new(&self.runtime);
                delete
                    .arg("--root")
                    .arg(self.runtime_state_root())
                    .args(["delete", "--force"])
                    .arg(&id);
                if !teardown.quiet(&mut delete) {
                    teardown.note(format!(
                        "runtime delete --force {} failed",
                        id.to_string_lossy()
                    ));
                }
            }
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        // Shims outlive containerd by design; theirs carry our socket path on the command line.
        teardown.kill_processes_mentioning(&d);
        teardown.unmount_under(&d);
        if let Err(e) = fs::remove_dir_all(&d) {
            teardown.note(format!("rm -r {}: {e}", d.display()));
        }
        teardown.finish("containerd");
    }
}
