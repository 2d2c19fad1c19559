//! The Engine API's service under test and its real clients: `berth system service` on a
//! private socket over a [`Berth`] root, driven by the docker CLI, docker-compose and docker-py
//! (Debian's), and by curl for what no client sends (malformed bodies, raw routes).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;

use crate::image::Berth;
use crate::{eventually, have, run_with_input, run_with_timeout, skipping, Ran, COMMAND_TIMEOUT};

/// A running `berth system service` over its own data root. Dropped, it is stopped, and the
/// root is checked for leftovers as every [`Berth`] is.
pub struct Service {
    pub berth: Berth,
    child: Option<Child>,
    dir: TempDir,
}

impl Service {
    /// Starts the service on `<tmp>/docker.sock` and waits until it answers `_ping`; `None`
    /// (the test skipped, or failed under CI) without the docker CLI.
    pub fn start() -> Option<Service> {
        if !have("docker") || !have("curl") {
            skipping(format_args!("needs the docker CLI and curl"));
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-api-")
            .tempdir()
            .expect("service dir");
        let mut service = Service {
            berth: Berth::new(),
            child: None,
            dir,
        };
        service.spawn();
        Some(service)
    }

    /// Starts (or starts again, after [`Service::kill`]) the service process.
    pub fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("service.log")).expect("log");
        let mut command = self.berth.command();
        command
            .args(["system", "service", "--time", "0"])
            .arg(format!("unix://{}", self.socket().display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        self.child = Some(command.spawn().expect("spawn berth system service"));
        eventually("the service answers _ping", || {
            self.curl(&["-sf", "http://d/_ping"])
                .success()
                .then_some(())
        });
    }

    /// SIGKILLs the service, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The service's pid (to count its descriptors).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("docker.sock")
    }

    /// What the service printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("service.log")).unwrap_or_default()
    }

    /// The client environment: DOCKER_HOST at the service, a private client config.
    pub fn client(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("client-config"))
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .stdin(Stdio::null());
        command
    }

    /// `docker <args>` against the service.
    pub fn docker(&self, args: &[&str]) -> Ran {
        let mut command = self.client("docker");
        command.args(args);
        run_with_timeout(command, COMMAND_TIMEOUT)
    }

    /// `docker <args>` with `input` on stdin.
    pub fn docker_input(&self, args: &[&str], input: &[u8]) -> Ran {
        let mut command = self.client("docker");
        command.args(args);
        run_with_input(command, input)
    }

    /// `docker <args>`, which must succeed: its stdout, trimmed.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let ran = self.docker(args);
        assert!(
            ran.success(),
            "docker {args:?} failed ({}):\n{}\n{}\nservice log:\n{}",
            ran.status,
            ran.stdout,
            ran.stderr,
            self.log()
        );
        ran.stdout.trim().to_string()
    }

    /// `curl --unix-socket <socket> <args>` (URLs as `http://d/...`).
    pub fn curl(&self, args: &[&str]) -> Ran {
        let mut command = Command::new("curl");
        command
            .arg("--unix-socket")
            .arg(self.socket())
            .args(args)
            .stdin(Stdio::null());
        run_with_timeout(command, Duration::from_secs(30))
    }

    /// A Python script run by Debian's python3 with docker-py, `DOCKER_HOST` set.
    pub fn python(&self, script: &str) -> Ran {
        let mut command = self.client("/usr/bin/python3");
        command.arg("-c").arg(script);
        run_with_timeout(command, COMMAND_TIMEOUT)
    }

    /// `docker-compose -p <project>` in `dir` (where its docker-compose.yml is), for
    /// [`Service::compose`] or a caller that sets more of its environment.
    pub fn compose_command(&self, dir: &Path, project: &str) -> Command {
        let mut command = self.client("docker-compose");
        command
            .current_dir(dir)
            .args(["--ansi", "never", "-p", project]);
        command
    }

    /// `docker-compose -p <project> <args>` in `dir`, within twice the default timeout: `up`
    /// and `down` start and stop a project's containers.
    pub fn compose(&self, dir: &Path, project: &str, args: &[&str]) -> Ran {
        let mut command = self.compose_command(dir, project);
        command.args(args);
        run_with_timeout(command, 2 * COMMAND_TIMEOUT)
    }

    /// The service's directory, for compose files and the like.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
        }
    }
}

/// A client left running while what it prints is collected (a follow, an attach).
pub struct Streaming {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
}

impl Streaming {
    /// Spawns `command` with its stdout and stderr collected together.
    pub fn spawn(mut command: Command) -> Streaming {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn a streaming client");
        let out = Arc::new(Mutex::new(Vec::new()));
        let pipes: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for mut pipe in pipes {
            let sink = Arc::clone(&out);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = pipe.read(&mut buf) {
                    sink.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Streaming { child, out }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    pub fn wait_for(&self, want: &str) {
        eventually(&format!("{want:?} from the client"), || {
            self.text().contains(want).then_some(())
        });
    }

    pub fn exit(&mut self) -> ExitStatus {
        eventually("the client to exit", || {
            self.child.try_wait().expect("wait")
        })
    }

    /// SIGKILL, as a crash or a closed laptop would end it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        self.kill();
    }
}
